//! `moqlink-interop`: the interop runner's test client (TAP 14 on stdout, logs on stderr).

use clap::Parser;
use moqlink_interop::cases::{self, Ctx, CASES};
use moqlink_interop::tap;
use moqlink_transport::endpoint::{Client, ClientConfig};
use moqlink_transport::session::SessionConfig;
use moqlink_transport::tls::ClientTls;
use std::process::ExitCode;

/// MoQ interop runner test client (draft-14).
#[derive(Parser, Debug)]
#[command(name = "moqlink-interop", version, about)]
struct Args {
    /// Relay URL: https:// for WebTransport, moqt:// for raw QUIC.
    #[arg(
        short,
        long,
        env = "RELAY_URL",
        default_value = "https://localhost:4443"
    )]
    relay: String,
    /// Test case to run (default: all).
    #[arg(short, long, env = "TESTCASE")]
    test: Option<String>,
    /// List the test cases, one per line.
    #[arg(short, long)]
    list: bool,
    /// Log at debug level on stderr.
    #[arg(short, long, env = "VERBOSE", value_parser = truthy, default_value = "false", num_args = 0..=1, default_missing_value = "true")]
    verbose: bool,
    /// Accept any server certificate.
    #[arg(long, env = "TLS_DISABLE_VERIFY", value_parser = truthy, default_value = "false", num_args = 0..=1, default_missing_value = "true")]
    tls_disable_verify: bool,
}

fn truthy(s: &str) -> Result<bool, String> {
    Ok(matches!(s, "1" | "true" | "yes" | "on"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for c in CASES {
            println!("{}", c.id);
        }
        return ExitCode::SUCCESS;
    }
    if let Ok(role) = std::env::var("MOQT_ROLE") {
        if role != "client" {
            eprintln!("error: MOQT_ROLE={role} is not supported by moqlink-interop");
            return ExitCode::from(127);
        }
    }
    let filter = if args.verbose { "debug" } else { "info" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let selected: Vec<_> = match &args.test {
        Some(t) => match cases::find(t) {
            Some(c) if c.implemented => vec![c],
            _ => {
                eprintln!("error: test case {t:?} is not supported");
                return ExitCode::from(127);
            }
        },
        None => CASES.iter().collect(),
    };
    let tls = if args.tls_disable_verify {
        ClientTls::DisableVerify
    } else {
        ClientTls::default()
    };
    let client = match Client::new(ClientConfig {
        tls,
        ..Default::default()
    }) {
        Ok(c) => c,
        Err(e) => {
            println!("TAP version 14\nBail out! {e}");
            return ExitCode::from(1);
        }
    };
    let ctx = Ctx {
        relay: args.relay.clone(),
        client,
        session: SessionConfig::default(),
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            println!("TAP version 14\nBail out! {e}");
            return ExitCode::from(1);
        }
    };
    let results = rt.block_on(async {
        let mut out = Vec::new();
        for c in &selected {
            out.push(cases::run(c, &ctx).await);
        }
        // Let the last CONNECTION_CLOSE frames leave before the runtime stops; a relay that
        // never hears them keeps the namespaces of those sessions until its idle timeout.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        out
    });
    let comments = vec![
        format!("moqlink-interop v{}", env!("CARGO_PKG_VERSION")),
        format!("Relay: {}", args.relay),
        "Draft: draft-ietf-moq-transport-14".to_string(),
    ];
    print!("{}", tap::render(&comments, &results));
    if results.iter().any(|r| r.failed()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
