//! Every vector in testvectors/draft14: decode equals `decoded`, encode reproduces `hex`, the
//! 8-byte-varint form decodes the same, streams fed one byte at a time decode the same, and every
//! error vector fails with its stated rule and code.

mod common;

use bytes::Bytes;
use common::{load, Vector, KINDS};
use moqlink_model::control::ControlReader;
use moqlink_model::data::{StreamEvent, StreamReader};
use moqlink_model::json::{self, Kind};
use moqlink_model::{Encoding, Rule, Version};
use serde_json::{json, Value};

fn check_valid(kind: Kind, v: &Vector, expected: &Value) -> Result<(), String> {
    let got = json::decode(kind, &v.bytes).map_err(|e| format!("decode failed: {e}"))?;
    if &got != expected {
        return Err(format!(
            "decoded differs\n  expected: {expected}\n  got:      {got}"
        ));
    }
    let canonical = v.canonical_hex.as_deref().unwrap_or(&v.hex);
    let enc = json::encode(kind, expected).map_err(|e| format!("encode failed: {e}"))?;
    if hex::encode(&enc) != canonical {
        return Err(format!(
            "encode differs\n  expected: {canonical}\n  got:      {}",
            hex::encode(&enc)
        ));
    }
    let wide = json::encode_with(kind, expected, Encoding::wide(Version::DRAFT_14))
        .map_err(|e| format!("wide encode failed: {e}"))?;
    if kind != Kind::Varint && wide.len() < enc.len() {
        return Err("wide encoding is shorter than the minimal one".into());
    }
    let wide_decoded = json::decode(kind, &wide).map_err(|e| format!("wide decode failed: {e}"))?;
    if &wide_decoded != expected {
        return Err(format!(
            "8-byte-varint form decodes differently: {wide_decoded}"
        ));
    }
    for (label, bytes) in [("minimal", &v.bytes[..]), ("wide", &wide[..])] {
        let streamed = bytewise(kind, bytes).map_err(|e| format!("{label} bytewise: {e}"))?;
        if let Some(s) = streamed {
            if &s != expected {
                return Err(format!("{label} bytewise decode differs: {s}"));
            }
        }
    }
    Ok(())
}

/// Feeds `bytes` one at a time to the incremental readers; `None` for kinds without one.
fn bytewise(kind: Kind, bytes: &[u8]) -> Result<Option<Value>, String> {
    match kind {
        Kind::Control => {
            let mut r = ControlReader::new(Version::DRAFT_14);
            let mut msgs = Vec::new();
            for b in bytes {
                r.push(Bytes::copy_from_slice(&[*b]));
                while let Some(m) = r.next_message().map_err(|e| e.to_string())? {
                    msgs.push(m);
                }
            }
            r.finish().map_err(|e| e.to_string())?;
            if msgs.len() != 1 {
                return Err(format!("{} messages", msgs.len()));
            }
            Ok(Some(serde_json::to_value(&msgs[0]).unwrap()))
        }
        Kind::Subgroup | Kind::Fetch => {
            let mut r = StreamReader::default();
            let mut header = Value::Null;
            let mut objects = Vec::new();
            for b in bytes {
                r.push(Bytes::copy_from_slice(&[*b]));
                while let Some(ev) = r.next_event().map_err(|e| e.to_string())? {
                    match ev {
                        StreamEvent::SubgroupHeader(h) => header = serde_json::to_value(h).unwrap(),
                        StreamEvent::FetchHeader(h) => header = serde_json::to_value(h).unwrap(),
                        StreamEvent::SubgroupObject(o) => {
                            objects.push(serde_json::to_value(o).unwrap())
                        }
                        StreamEvent::FetchObject(o) => {
                            objects.push(serde_json::to_value(o).unwrap())
                        }
                    }
                }
            }
            r.finish().map_err(|e| e.to_string())?;
            Ok(Some(json!({"header": header, "objects": objects})))
        }
        Kind::Datagram | Kind::Varint => Ok(None),
    }
}

fn check_error(kind: Kind, v: &Vector, rule: &str) -> Result<(), String> {
    let expected_code = v
        .error_code
        .as_deref()
        .ok_or("error vector without error_code")?;
    let known = Rule::from_name(rule).ok_or_else(|| format!("unknown rule name {rule}"))?;
    if known.code().name() != expected_code {
        return Err(format!(
            "vector says {rule} closes with {expected_code}, the model says {}",
            known.code().name()
        ));
    }
    match json::decode(kind, &v.bytes) {
        Ok(val) => Err(format!("decoded without error: {val}")),
        Err(f) if f.rule == rule && f.code == expected_code => Ok(()),
        Err(f) => Err(format!(
            "failed with {} ({}), expected {rule}: {}",
            f.rule, f.code, f.message
        )),
    }
}

#[test]
fn all_vectors() {
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for (dir, kind) in KINDS {
        let vectors = load(dir);
        let (mut ok, mut err) = (0, 0);
        for v in &vectors {
            let res = match (&v.decoded, &v.error) {
                (Some(d), None) => {
                    ok += 1;
                    check_valid(kind, v, d)
                }
                (None, Some(r)) => {
                    err += 1;
                    check_error(kind, v, r)
                }
                _ => Err("a vector needs exactly one of decoded / error".into()),
            };
            if let Err(e) = res {
                failures.push(format!("{dir}/{} {} ({}): {e}", v.file, v.id, v.section));
            }
        }
        counts.push(format!("{dir}: {ok} valid, {err} error"));
    }
    println!("{}", counts.join("\n"));
    assert!(
        failures.is_empty(),
        "{} vector failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn ids_are_unique_and_sections_cited() {
    let mut seen = std::collections::HashSet::new();
    for (dir, _) in KINDS {
        for v in load(dir) {
            assert!(
                seen.insert(format!("{dir}/{}", v.id)),
                "duplicate id {dir}/{}",
                v.id
            );
            assert!(
                v.section.starts_with('§'),
                "{}: spec_section {:?}",
                v.id,
                v.section
            );
        }
    }
}

#[test]
fn coverage_of_every_wire_type() {
    let control = load("control");
    let mut types = std::collections::HashSet::new();
    let mut params = std::collections::HashSet::new();
    for v in control.iter().filter(|v| v.decoded.is_some()) {
        let d = v.decoded.as_ref().unwrap();
        types.insert(d["type"].as_str().unwrap().to_string());
        let setup = matches!(d["type"].as_str(), Some("CLIENT_SETUP" | "SERVER_SETUP"));
        for p in d["parameters"].as_array().into_iter().flatten() {
            let name = p["type"].as_str().unwrap();
            params.insert(format!(
                "{}:{name}",
                if setup { "setup" } else { "version" }
            ));
            if let Some(at) = p["value"]["alias_type"].as_str() {
                params.insert(format!("token:{at}"));
            }
        }
    }
    for t in moqlink_model::MessageType::ALL {
        assert!(types.contains(t.name()), "no valid vector for {}", t.name());
    }
    for p in [
        "setup:PATH",
        "setup:MAX_REQUEST_ID",
        "setup:AUTHORIZATION_TOKEN",
        "setup:MAX_AUTH_TOKEN_CACHE_SIZE",
        "setup:AUTHORITY",
        "setup:IMPLEMENTATION",
        "setup:UNKNOWN",
        "version:DELIVERY_TIMEOUT",
        "version:AUTHORIZATION_TOKEN",
        "version:MAX_CACHE_DURATION",
        "version:UNKNOWN",
        "token:DELETE",
        "token:REGISTER",
        "token:USE_ALIAS",
        "token:USE_VALUE",
    ] {
        assert!(params.contains(p), "no valid vector with parameter {p}");
    }
    let first_byte = |v: &Vector| v.bytes.first().copied().unwrap_or(0xff);
    let subgroup: std::collections::HashSet<u8> = load("subgroup")
        .iter()
        .filter(|v| v.decoded.is_some())
        .map(first_byte)
        .collect();
    for t in (0x10..=0x15).chain(0x18..=0x1d) {
        assert!(subgroup.contains(&t), "no subgroup vector of type 0x{t:x}");
    }
    let datagram: std::collections::HashSet<u8> = load("datagram")
        .iter()
        .filter(|v| v.decoded.is_some())
        .map(first_byte)
        .collect();
    for t in (0x00..=0x07).chain([0x20, 0x21]) {
        assert!(datagram.contains(&t), "no datagram vector of type 0x{t:x}");
    }
    assert!(load("fetch").iter().any(|v| v.decoded.is_some()));
    let errors: usize = KINDS
        .iter()
        .map(|(d, _)| load(d).iter().filter(|v| v.error.is_some()).count())
        .sum();
    assert!(errors >= 60, "only {errors} error vectors");
    let rules: std::collections::HashSet<String> = KINDS
        .iter()
        .flat_map(|(d, _)| load(d).into_iter().filter_map(|v| v.error))
        .collect();
    for r in Rule::ALL {
        if *r != Rule::ObjectTooLarge {
            assert!(
                rules.contains(r.name()),
                "no error vector for rule {}",
                r.name()
            );
        }
    }
}

/// The registry's kinds agree with the payloads: a message carries a Request ID exactly when its
/// kind is a request, a reply or a follow-up (§9.1), checked on a valid vector of every type.
#[test]
fn request_ids_follow_the_registry() {
    use moqlink_model::ControlMessage;
    let mut seen = std::collections::HashSet::new();
    for v in load("control").iter().filter(|v| v.decoded.is_some()) {
        let Ok(m) = ControlMessage::decode(&mut &v.bytes[..], Version::DRAFT_14) else {
            continue;
        };
        let ty = m.message_type();
        seen.insert(ty);
        assert_eq!(
            m.request_id().is_some(),
            ty.has_request_id(),
            "{} ({})",
            ty.name(),
            v.id
        );
    }
    assert_eq!(seen.len(), moqlink_model::MessageType::ALL.len());
}
