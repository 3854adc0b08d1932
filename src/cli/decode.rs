//! `moqlink decode`: hex in, JSON out, for interop debugging.

use clap::Args;
use moqlink_model::json::{self, Failure, Kind};
use moqlink_model::Version;
use serde_json::Value;
use std::io::{Read, Write};
use std::process::ExitCode;

/// Arguments of `moqlink decode`.
#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// What the bytes are: control, subgroup, fetch, datagram or varint.
    #[arg(long, value_parser = parse_kind)]
    kind: Kind,
    /// Re-encode what was decoded and fail if the bytes differ.
    #[arg(long)]
    roundtrip: bool,
    /// Hex bytes (spaces, colons and a 0x prefix allowed), or `-` to read them from stdin.
    input: String,
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse()
}

fn read_hex(input: &str) -> Result<Vec<u8>, String> {
    let text = if input == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("reading stdin: {e}"))?;
        s
    } else {
        input.to_string()
    };
    let cleaned: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    hex::decode(&cleaned).map_err(|e| format!("input is not hex: {e}"))
}

fn report(f: &Failure) -> ExitCode {
    let err = serde_json::json!({
        "error": f.rule,
        "error_code": f.code,
        "offset": f.offset,
        "message": f.message,
    });
    let _ = writeln!(std::io::stdout(), "{err}");
    eprintln!("error: {f}");
    ExitCode::from(1)
}

/// Runs `moqlink decode`.
pub fn run(args: DecodeArgs) -> ExitCode {
    let bytes = match read_hex(&args.input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let values: Vec<Value> = match args.kind {
        Kind::Control => match json::decode_control_all(&bytes, Version::DRAFT_14) {
            Ok(msgs) => msgs
                .iter()
                .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
                .collect(),
            Err(f) => return report(&f),
        },
        kind => match json::decode(kind, &bytes) {
            Ok(v) => vec![v],
            Err(f) => return report(&f),
        },
    };
    let mut out = std::io::stdout().lock();
    for v in &values {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_default()
        );
    }
    if args.roundtrip {
        let mut again = Vec::new();
        for v in &values {
            match json::encode(args.kind, v) {
                Ok(b) => again.extend(b),
                Err(f) => {
                    eprintln!("roundtrip: re-encoding failed: {f}");
                    return ExitCode::from(1);
                }
            }
        }
        if again != bytes {
            eprintln!(
                "roundtrip: bytes differ\n  input:      {}\n  re-encoded: {}",
                hex::encode(&bytes),
                hex::encode(&again)
            );
            return ExitCode::from(1);
        }
        eprintln!("roundtrip: re-encoded bytes are identical");
    }
    ExitCode::SUCCESS
}
