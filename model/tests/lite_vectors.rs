//! Every vector in testvectors/lite01 and testvectors/lite02: decode equals `decoded`, encode
//! reproduces `hex`, the 8-byte-varint form decodes the same, streams fed one byte at a time
//! decode the same, and every error vector fails with its rule and code (whole and bytewise).

use bytes::Bytes;
use moqlink_model::lite::json::{self, Input};
use moqlink_model::lite::{
    self, BiStreamType, ControlReader, GroupReader, LiteMessage, MessageKind, SetupReply,
};
use moqlink_model::{DecodeError, Encode, Encoding, Rule, Version};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;

struct Vector {
    file: String,
    id: String,
    section: String,
    input: Input,
    hex: String,
    bytes: Vec<u8>,
    decoded: Option<Value>,
    error: Option<String>,
    error_code: Option<String>,
}

const DIRS: [(&str, Version); 2] = [("lite01", Version::LITE_01), ("lite02", Version::LITE_02)];

fn load(dir: &str) -> Vec<Vector> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testvectors")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("testvectors/{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        for v in doc["vectors"].as_array().expect("vectors array") {
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            let hex = s("hex").unwrap_or_else(|| panic!("{file}: vector without hex"));
            out.push(Vector {
                file: file.clone(),
                id: s("id").expect("id"),
                section: s("spec_section").expect("spec_section"),
                input: s("stream")
                    .expect("stream")
                    .parse()
                    .unwrap_or_else(|e| panic!("{file}: {e}")),
                bytes: hex::decode(&hex).unwrap_or_else(|e| panic!("{file}: bad hex: {e}")),
                hex,
                decoded: v.get("decoded").cloned(),
                error: s("error"),
                error_code: s("error_code"),
            });
        }
    }
    out
}

/// Feeds `bytes` one at a time to the incremental reader for `input`.
fn bytewise(input: Input, v: Version, bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut messages = Vec::new();
    if input == Input::Group {
        let mut r = GroupReader::new(v);
        for b in bytes {
            r.push(Bytes::copy_from_slice(&[*b]));
            while let Some(ev) = r.next_event()? {
                messages.push(serde_json::to_value(LiteMessage::from(ev)).unwrap());
            }
        }
        r.finish()?;
        return Ok(json!({"stream_type": "GROUP", "messages": messages}));
    }
    let mut r = match input.response_to() {
        Some(ty) => ControlReader::response(v, ty),
        None => ControlReader::accept(v),
    };
    for b in bytes {
        r.push(Bytes::copy_from_slice(&[*b]));
        while let Some(m) = r.next_message()? {
            messages.push(serde_json::to_value(&m).unwrap());
        }
    }
    r.finish()?;
    Ok(match input {
        Input::Request => json!({"stream_type": r.stream_type(), "messages": messages}),
        _ => json!({ "messages": messages }),
    })
}

fn check_valid(v: &Vector, ver: Version, expected: &Value) -> Result<(), String> {
    let got = json::decode(v.input, ver, &v.bytes).map_err(|e| format!("decode failed: {e}"))?;
    if &got != expected {
        return Err(format!(
            "decoded differs\n  expected: {expected}\n  got:      {got}"
        ));
    }
    let enc = json::encode(v.input, ver, expected).map_err(|e| format!("encode failed: {e}"))?;
    if hex::encode(&enc) != v.hex {
        return Err(format!(
            "encode differs\n  expected: {}\n  got:      {}",
            v.hex,
            hex::encode(&enc)
        ));
    }
    let wide = json::encode_with(v.input, expected, Encoding::wide(ver))
        .map_err(|e| format!("wide encode failed: {e}"))?;
    if wide.len() < enc.len() {
        return Err("wide encoding is shorter than the minimal one".into());
    }
    let wide_decoded =
        json::decode(v.input, ver, &wide).map_err(|e| format!("wide decode failed: {e}"))?;
    if &wide_decoded != expected {
        return Err(format!(
            "8-byte-varint form decodes differently: {wide_decoded}"
        ));
    }
    for (label, bytes) in [("minimal", &v.bytes[..]), ("wide", &wide[..])] {
        let s = bytewise(v.input, ver, bytes).map_err(|e| format!("{label} bytewise: {e}"))?;
        if &s != expected {
            return Err(format!("{label} bytewise decode differs: {s}"));
        }
    }
    Ok(())
}

fn check_error(v: &Vector, ver: Version, rule: &str) -> Result<(), String> {
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
    match json::decode(v.input, ver, &v.bytes) {
        Ok(val) => return Err(format!("decoded without error: {val}")),
        Err(f) if f.rule == rule && f.code == expected_code => {}
        Err(f) => {
            return Err(format!(
                "failed with {} ({}), expected {rule}: {}",
                f.rule, f.code, f.message
            ))
        }
    }
    match bytewise(v.input, ver, &v.bytes) {
        Ok(val) => Err(format!("bytewise decoded without error: {val}")),
        Err(e) if e.rule() == known => Ok(()),
        Err(e) => Err(format!("bytewise failed with {e}, expected {rule}")),
    }
}

#[test]
fn all_vectors() {
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for (dir, ver) in DIRS {
        let vectors = load(dir);
        let (mut ok, mut err) = (0, 0);
        for v in &vectors {
            let res = match (&v.decoded, &v.error) {
                (Some(d), None) => {
                    ok += 1;
                    check_valid(v, ver, d)
                }
                (None, Some(r)) => {
                    err += 1;
                    check_error(v, ver, r)
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
fn ids_unique_and_lite_sections_cited() {
    for (dir, _) in DIRS {
        let mut seen = HashSet::new();
        for v in load(dir) {
            assert!(seen.insert(v.id.clone()), "duplicate id {dir}/{}", v.id);
            assert!(
                v.section.starts_with("lite-01 §") || v.section.starts_with("lite-02 §"),
                "{}: spec_section {:?}",
                v.id,
                v.section
            );
            assert!(
                v.hex == v.hex.to_lowercase(),
                "{}: hex must be lowercase",
                v.id
            );
        }
    }
}

#[test]
fn coverage_of_every_message_and_rule() {
    let mut errors = 0;
    let mut rules = HashSet::new();
    for (dir, _) in DIRS {
        let vectors = load(dir);
        let mut kinds = HashSet::new();
        for v in &vectors {
            if let Some(d) = &v.decoded {
                for m in d["messages"].as_array().unwrap() {
                    kinds.insert(m["type"].as_str().unwrap().to_string());
                }
            }
            if let Some(r) = &v.error {
                errors += 1;
                rules.insert(r.clone());
            }
        }
        for k in [
            MessageKind::SessionClient,
            MessageKind::SessionServer,
            MessageKind::SessionUpdate,
            MessageKind::ClientSetup,
            MessageKind::ServerSetup,
            MessageKind::AnnouncePlease,
            MessageKind::AnnounceInit,
            MessageKind::Announce,
            MessageKind::Subscribe,
            MessageKind::SubscribeUpdate,
            MessageKind::SubscribeOk,
            MessageKind::Group,
            MessageKind::Frame,
        ] {
            assert!(
                kinds.contains(k.name()),
                "{dir}: no valid vector with {}",
                k.name()
            );
        }
    }
    assert!(errors >= 15, "only {errors} error vectors");
    for r in Rule::LITE {
        assert!(
            rules.contains(r.name()),
            "no error vector for rule {}",
            r.name()
        );
    }
}

#[test]
fn peer_captures_are_vectors() {
    let all: Vec<String> = DIRS
        .iter()
        .flat_map(|(d, _)| load(d))
        .map(|v| v.hex)
        .collect();
    for capture in [
        // moq-clock 0.10.5 CLIENT_SETUP, moq-relay's SERVER_SETUP, the relay's announce stream.
        "200030 03 c0000000ff0dad02 c0000000ff0dad01 c0000000ff00000e 02 02 c0000000ffffffff 07 0b 6d6f712d6c6974652d7273",
        "21 0009 c0000000ff0dad02 00",
        "01 01 00",
    ] {
        let capture = capture.replace(' ', "");
        assert!(all.contains(&capture), "capture {capture} has no vector");
    }
}

#[test]
fn draft14_reply_hands_the_stream_over() {
    let mut r = ControlReader::response(Version::LITE_02, BiStreamType::SessionCompat);
    // SERVER_SETUP selecting draft-14 followed by a draft-14 MAX_REQUEST_ID (0x15, length 1, 0x05).
    r.push(Bytes::from(
        hex::decode("21000cc0000000ff00000e01024064150001 05".replace(' ', "")).unwrap(),
    ));
    let Some(LiteMessage::ServerSetup(SetupReply::Draft14(s))) = r.next_message().unwrap() else {
        panic!("expected a draft-14 SERVER_SETUP")
    };
    assert_eq!(s.version, Version::DRAFT_14);
    assert!(r.handed_over());
    assert_eq!(r.next_message().unwrap(), None);
    assert_eq!(&r.take_buffered()[..], &[0x15, 0x00, 0x01, 0x05]);
}

#[test]
fn server_negotiates_after_client_setup() {
    // A lite-01-only CLIENT_SETUP, then a SESSION_UPDATE; the server switches to lite-01.
    let mut r = ControlReader::accept(Version::LITE_02);
    r.push(Bytes::from(
        hex::decode("20000a01c0000000ff0dad01000100").unwrap(),
    ));
    let Some(LiteMessage::ClientSetup(c)) = r.next_message().unwrap() else {
        panic!()
    };
    assert_eq!(c.versions, vec![Version::LITE_01]);
    r.set_version(Version::LITE_01);
    assert_eq!(r.expected(), Some(MessageKind::SessionUpdate));
    assert!(matches!(
        r.next_message().unwrap(),
        Some(LiteMessage::SessionUpdate(_))
    ));
    r.finish().unwrap();
}

#[test]
fn frames_are_zero_copy_and_bounded() {
    let wire = Bytes::from(hex::decode("000200050568656c6c6f").unwrap());
    let mut r = GroupReader::new(Version::LITE_02);
    r.push(wire.clone());
    assert!(matches!(
        r.next_event().unwrap(),
        Some(lite::GroupEvent::Group(_))
    ));
    let Some(lite::GroupEvent::Frame(f)) = r.next_event().unwrap() else {
        panic!()
    };
    assert_eq!(&f.payload[..], b"hello");
    assert_eq!(
        f.payload.bytes().as_ptr(),
        wire[5..].as_ptr(),
        "payload was copied"
    );
    r.finish().unwrap();

    let mut small = GroupReader::with_max_frame(Version::LITE_02, 4);
    small.push(wire);
    small.next_event().unwrap();
    let err = small.next_event().unwrap_err();
    assert_eq!(err.rule(), Rule::ObjectTooLarge);
}

#[test]
fn encoders_refuse_what_receivers_reject() {
    let enc = Encoding::new(Version::LITE_02);
    let bad_path = lite::Subscribe {
        subscribe_id: 0,
        broadcast: lite_blob(&[0xff]),
        track: "t".into(),
        priority: 0,
    };
    assert!(bad_path.encode(&mut Vec::new(), enc).is_err());
    let ok_with_priority = lite::SubscribeOk { priority: Some(1) };
    assert!(ok_with_priority.encode(&mut Vec::new(), enc).is_err());
    let lite01_ok = lite::SubscribeOk::for_version(Version::LITE_01, 9);
    let mut out = Vec::new();
    lite01_ok
        .encode(&mut out, Encoding::new(Version::LITE_01))
        .unwrap();
    assert_eq!(out, [0x01, 0x09]);
    let dup = lite::AnnounceInit {
        suffixes: vec!["a".into(), "a".into()],
    };
    assert!(dup.encode(&mut Vec::new(), enc).is_err());
    let mismatched = SetupReply::Lite(lite::CompatServerSetup {
        version: Version::DRAFT_14,
        extensions: lite::Extensions::new(),
    });
    assert!(lite::encode_setup_reply(&mismatched, &mut Vec::new(), enc).is_err());
}

fn lite_blob(b: &[u8]) -> moqlink_model::Blob {
    moqlink_model::Blob::from(b.to_vec())
}

#[test]
fn reset_codes_round_trip() {
    use moqlink_model::lite::reset;
    assert_eq!(reset::to_code(reset::moq_lite_0_13::CANCEL), 0x52e4a40fa8db);
    assert_eq!(reset::to_code(reset::moq_net_0_3::CANCEL), 0x52e4a40fa8dc);
    assert_eq!(reset::from_code(0x52e4a40fa8e8), Some(13));
    assert_eq!(reset::from_code(0x3), None);
}

mod properties {
    use super::*;
    use moqlink_model::lite::{
        Announce, AnnounceInit, AnnounceStatus, Frame, Group, Subscribe, SubscribeOk,
    };
    use moqlink_model::Decode;
    use proptest::prelude::*;

    const MAXV: u64 = (1 << 62) - 1;

    fn varint() -> impl Strategy<Value = u64> {
        prop_oneof![
            0..64u64,
            64..16384u64,
            16384..(1u64 << 30),
            (1u64 << 30)..=MAXV
        ]
    }

    fn text() -> impl Strategy<Value = moqlink_model::Blob> {
        "[a-z0-9/é-]{0,12}".prop_map(moqlink_model::Blob::from)
    }

    fn round_trip<T: Encode + Decode + PartialEq + std::fmt::Debug>(m: &T, v: Version) {
        for enc in [Encoding::new(v), Encoding::wide(v)] {
            let mut out = Vec::new();
            m.encode(&mut out, enc).unwrap();
            let mut b = Bytes::from(out);
            assert_eq!(&T::decode(&mut b, v).unwrap(), m);
            assert!(b.is_empty());
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            for v in [Version::LITE_01, Version::LITE_02] {
                for input in Input::ALL {
                    let _ = json::decode(input, v, &bytes);
                }
            }
        }

        #[test]
        fn messages_round_trip(
            id in varint(), seq in varint(), prio in any::<u8>(),
            broadcast in text(), track in text(),
            suffixes in prop::collection::hash_set("[a-z]{0,6}", 0..5),
            payload in prop::collection::vec(any::<u8>(), 0..40),
            active in any::<bool>(),
        ) {
            for v in [Version::LITE_01, Version::LITE_02] {
                round_trip(&Subscribe { subscribe_id: id, broadcast: broadcast.clone(), track: track.clone(), priority: prio }, v);
                round_trip(&Group { subscribe_id: id, sequence: seq }, v);
                round_trip(&Frame::new(payload.clone()), v);
                round_trip(&SubscribeOk::for_version(v, prio), v);
                round_trip(&Announce {
                    status: if active { AnnounceStatus::Active } else { AnnounceStatus::Ended },
                    suffix: track.clone(),
                }, v);
                round_trip(&AnnounceInit {
                    suffixes: suffixes.iter().map(|s| moqlink_model::Blob::from(s.as_str())).collect(),
                }, v);
            }
        }
    }
}
