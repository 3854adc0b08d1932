//! `moqlink decode` end to end: real peer bytes, truncation, roundtrip.

use std::process::Command;

fn decode(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moqlink"))
        .arg("decode")
        .args(args)
        .output()
        .expect("run moqlink");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn decodes_a_real_client_setup() {
    // Seen from peers: CLIENT_SETUP offering draft-14 (8-byte varint 0xff00000e) with
    // MAX_REQUEST_ID (0x02) = 100 (2-byte varint 0x4064); Length 0x000d = 13 payload bytes.
    let (code, out, _) = decode(&[
        "--kind",
        "control",
        "--roundtrip",
        "20000d01c0000000ff00000e01024064",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["type"], "CLIENT_SETUP");
    assert_eq!(v["versions"][0], "0xff00000e");
    assert_eq!(v["parameters"][0]["type"], "MAX_REQUEST_ID");
    assert_eq!(v["parameters"][0]["value"], 100);
}

#[test]
fn decodes_moq_lite_peer_setup_bytes_as_draft14_framing() {
    // moq-clock 0.10.5's CLIENT_SETUP (../shared/peers/README.md): three versions, then
    // parameters 0x02 = 0xffffffff and 0x07 = "moq-lite-rs".
    let hex = "200030 03 c0000000ff0dad02 c0000000ff0dad01 c0000000ff00000e 02 02 c0000000ffffffff 07 0b 6d6f712d6c6974652d7273";
    let (code, out, _) = decode(&["--kind", "control", hex]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["versions"][2], "0xff00000e");
    assert_eq!(v["parameters"][1]["type"], "IMPLEMENTATION");
    assert_eq!(v["parameters"][1]["value"], "moq-lite-rs");
}

#[test]
fn rejects_a_truncated_client_setup() {
    // The same message missing its last byte: Length says 13, only 12 follow.
    let (code, out, err) = decode(&["--kind", "control", "20000d01c0000000ff00000e010240"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"], "truncated");
    assert_eq!(v["error_code"], "PROTOCOL_VIOLATION");
    assert_eq!(v["offset"], 3);
    assert!(err.contains("truncated"));
}

#[test]
fn reports_the_rule_offset_and_code() {
    // SUBSCRIBE with Forward = 2 (§9.7): 03 type, 000b length 11, 00 request 0, 01 01 61
    // namespace ("a"), 01 74 name "t", 80 priority, 01 ascending, 02 forward (payload byte 9,
    // byte 12 overall, read up to offset 12), 02 filter, 00 parameters.
    let (code, out, _) = decode(&["--kind", "control", "03000b0001016101748001020200"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"], "invalid_forward");
    assert_eq!(v["error_code"], "PROTOCOL_VIOLATION");
    assert_eq!(v["offset"], 12);
}

#[test]
fn roundtrip_flags_non_minimal_encodings() {
    // MAX_REQUEST_ID with its value 5 written as a 2-byte varint 0x4005: decodes, but the
    // minimal re-encoding (05) differs, so --roundtrip fails.
    let (code, _, err) = decode(&["--kind", "control", "--roundtrip", "1500024005"]);
    assert_eq!(code, 1);
    assert!(err.contains("bytes differ"), "{err}");
}

#[test]
fn decodes_several_control_messages() {
    // UNSUBSCRIBE(2) then FETCH_CANCEL(4): 0a 0001 02, 17 0001 04.
    let (code, out, _) = decode(&["--kind", "control", "0a000102 17000104"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("UNSUBSCRIBE") && out.contains("FETCH_CANCEL"),
        "{out}"
    );
}

#[test]
fn reads_hex_from_stdin() {
    use std::io::Write;
    use std::process::Stdio;
    // §10.5 first example: 14 header (explicit subgroup), alias 02, group 00, subgroup 00,
    // priority 00; objects: delta 00 length 04 "abcd", delta 00 length 04 "efgh".
    let mut child = Command::new(env!("CARGO_BIN_EXE_moqlink"))
        .args(["decode", "--kind", "subgroup", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"1402000000 000461626364 000465666768\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["header"]["subgroup_id"]["EXPLICIT"], 0);
    assert_eq!(v["objects"][1]["object_id"], 1);
    assert_eq!(v["objects"][1]["payload"], "efgh");
}
