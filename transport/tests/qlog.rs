//! qlog traces over the in-memory connection: a moq-lite session's trace holds what events-04
//! can describe (the header, the setup exchange) plus a note and the closing record, and a
//! draft-14 session that fails SETUP still ends its trace.

use moqlink_model::{SessionErrorCode, Version};
use moqlink_transport::connection::memory::pair;
use moqlink_transport::qlog::QlogConfig;
use moqlink_transport::session::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!("moqlink-qlog-{tag}-{nanos}"))
}

/// The records of the one finished trace in `dir` (waits up to 10 s for its closing record).
async fn trace(dir: &Path) -> Vec<Value> {
    for _ in 0..1000 {
        if let Some(Ok(e)) = std::fs::read_dir(dir).ok().and_then(|mut d| d.next()) {
            let bytes = std::fs::read(e.path()).unwrap();
            if String::from_utf8_lossy(&bytes).contains("end of trace: ") {
                assert_eq!(bytes[0], 0x1e);
                return bytes[1..]
                    .split(|b| *b == 0x1e)
                    .map(|r| serde_json::from_slice(r).unwrap())
                    .collect();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no finished trace in {}", dir.display());
}

fn names(records: &[Value]) -> Vec<String> {
    records[1..]
        .iter()
        .map(|r| {
            let n = r["name"].as_str().unwrap();
            match r["data"]["message"]["type"].as_str() {
                Some(t) => format!("{n} {t}"),
                None => n.to_string(),
            }
        })
        .collect()
}

#[tokio::test]
async fn a_lite_session_logs_its_setup_and_says_the_rest_is_not_logged() {
    let (c, s) = pair();
    let (cdir, sdir) = (dir("lite-client"), dir("lite-server"));
    let cfg = |d: &PathBuf| SessionConfig {
        versions: vec![Version::LITE_02],
        qlog: Some(QlogConfig::new(d)),
        ..Default::default()
    };
    let server = tokio::spawn(Session::accept_any(s, cfg(&sdir)));
    let client = Session::connect_any(c, cfg(&cdir), ClientTarget::default())
        .await
        .unwrap();
    let Accepted::Lite(client, _crx) = client else {
        panic!("not lite")
    };
    let Accepted::Lite(_server, _srx) = server.await.unwrap().unwrap() else {
        panic!("not lite")
    };
    client.close(SessionErrorCode::NoError, "done");
    let (c, s) = (trace(&cdir).await, trace(&sdir).await);
    assert_eq!(c[0]["trace"]["vantage_point"]["type"], "client");
    assert_eq!(s[0]["trace"]["vantage_point"]["type"], "server");
    let cn = names(&c);
    assert_eq!(
        cn[..4],
        [
            "moqt:stream_type_set",
            "moqt:control_message_created client_setup",
            "moqt:control_message_parsed server_setup",
            "loglevel:info",
        ]
    );
    assert_eq!(
        c[2]["data"]["message"]["supported_versions"],
        serde_json::json!([0xff0d_ad02u64])
    );
    assert!(c[4]["data"]["message"]
        .as_str()
        .unwrap()
        .starts_with("moq-lite session (lite-02)"));
    let sn = names(&s);
    assert_eq!(
        sn[..3],
        [
            "moqt:stream_type_set",
            "moqt:control_message_parsed client_setup",
            "loglevel:info",
        ]
    );
    // The in-memory connection numbers streams as QUIC does: the client's first bidi is 0.
    assert_eq!(c[1]["data"]["stream_id"], 0);
    assert_eq!(s[1]["data"]["stream_id"], 0);
    for t in [&c, &s] {
        let last = t.last().unwrap()["data"]["message"].as_str().unwrap();
        assert!(last.starts_with("end of trace: "), "{last}");
    }
    let _ = std::fs::remove_dir_all(&cdir);
    let _ = std::fs::remove_dir_all(&sdir);
}

#[tokio::test]
async fn a_failed_setup_still_ends_the_trace() {
    let (c, s) = pair();
    let sdir = dir("failed");
    let scfg = SessionConfig {
        versions: vec![Version::DRAFT_14],
        qlog: Some(QlogConfig::new(&sdir)),
        ..Default::default()
    };
    let ccfg = SessionConfig {
        versions: vec![Version::LITE_01],
        ..Default::default()
    };
    let server = tokio::spawn(Session::accept_any(s, scfg));
    assert!(Session::connect_any(c, ccfg, ClientTarget::default())
        .await
        .is_err());
    assert!(server.await.unwrap().is_err());
    let t = trace(&sdir).await;
    assert_eq!(
        names(&t),
        [
            "moqt:stream_type_set",
            "moqt:control_message_parsed client_setup",
            "loglevel:info",
        ]
    );
    let _ = std::fs::remove_dir_all(&sdir);
}

#[path = "../../tests/qlog_schema/mod.rs"]
mod qlog_schema;

/// The events named `name` in the trace file in `dir` once there are `n` of them (the file is
/// flushed as events come; waits up to 10 s).
async fn wait_for(dir: &Path, name: &str, n: usize) -> Vec<Value> {
    for _ in 0..1000 {
        if let Some(Ok(e)) = std::fs::read_dir(dir).ok().and_then(|mut d| d.next()) {
            let bytes = std::fs::read(e.path()).unwrap();
            // Only whole records: up to the last LF.
            let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let found: Vec<Value> = bytes[..end]
                .split(|b| *b == 0x1e)
                .filter(|r| !r.is_empty())
                .map(|r| serde_json::from_slice::<Value>(r).unwrap())
                .filter(|r| r["name"] == name)
                .collect();
            if found.len() >= n {
                return found;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} {name} in {}", dir.display());
}

#[tokio::test]
async fn datagrams_are_logged_as_the_draft_defines_them() {
    use moqlink_model::data::{DatagramBody, Extensions, ObjectDatagram, ObjectStatus};
    use moqlink_model::params::{KeyValuePair, KvValue};
    use moqlink_model::Blob;
    let (c, s) = pair();
    let (cdir, sdir) = (dir("dgram-client"), dir("dgram-server"));
    let cfg = |d: &PathBuf| SessionConfig {
        qlog: Some(QlogConfig::new(d)),
        ..Default::default()
    };
    let server = tokio::spawn(Session::accept(s, cfg(&sdir)));
    let (client, _crx) = Session::connect(c, cfg(&cdir), ClientTarget::default())
        .await
        .unwrap();
    let (server, _srx) = server.await.unwrap().unwrap();
    let ext = Extensions::from_pairs(&[
        KeyValuePair {
            key: 0x20,
            value: KvValue::Varint(7),
        },
        KeyValuePair {
            key: 0x21,
            value: KvValue::Bytes(Blob::from("ab")),
        },
    ])
    .unwrap();
    server
        .send_datagram(&ObjectDatagram {
            track_alias: 5,
            group_id: 9,
            object_id: 3,
            object_id_present: true,
            publisher_priority: 200,
            end_of_group: true,
            extensions: Some(ext),
            body: DatagramBody::Payload(Blob::from("hello")),
        })
        .unwrap();
    server
        .send_datagram(&ObjectDatagram {
            track_alias: 5,
            group_id: 10,
            object_id: 0,
            object_id_present: false,
            publisher_priority: 1,
            end_of_group: false,
            extensions: None,
            body: DatagramBody::Payload(Blob::from("x")),
        })
        .unwrap();
    server
        .send_datagram(&ObjectDatagram {
            track_alias: 5,
            group_id: 11,
            object_id: 4,
            object_id_present: true,
            publisher_priority: 2,
            end_of_group: false,
            extensions: None,
            body: DatagramBody::Status(ObjectStatus::DoesNotExist),
        })
        .unwrap();
    let sent = wait_for(&sdir, "moqt:object_datagram_created", 3).await;
    let got = wait_for(&cdir, "moqt:object_datagram_parsed", 3).await;
    for e in sent.iter().chain(&got) {
        let fields = qlog_schema::event_fields(e["name"].as_str().unwrap()).unwrap();
        qlog_schema::check(&e["data"], qlog_schema::Ty::Obj(fields), "datagram").unwrap();
    }
    // events-04 §4.4 / §4.5, field by field; both ends log the same datagrams.
    let first = serde_json::json!({
        "track_alias": 5, "group_id": 9, "object_id": 3, "publisher_priority": 200,
        "extension_headers_length": 6,
        "extension_headers": [
            { "header_type": 0x20, "header_value": 7 },
            { "header_type": 0x21, "header_length": 2, "payload": { "length": 2, "data": "6162" } },
        ],
        "object_payload": { "length": 5 }, "end_of_group": true,
    });
    // No Object ID on the wire (a type without it): the optional field is left out; no
    // extensions field in the type: neither extension field is there.
    let second = serde_json::json!({
        "track_alias": 5, "group_id": 10, "publisher_priority": 1,
        "object_payload": { "length": 1 }, "end_of_group": false,
    });
    // A status datagram: object_status instead of a payload.
    let third = serde_json::json!({
        "track_alias": 5, "group_id": 11, "object_id": 4, "publisher_priority": 2,
        "object_status": 1, "end_of_group": false,
    });
    for events in [&sent, &got] {
        assert_eq!(events[0]["data"], first);
        assert_eq!(events[1]["data"], second);
        assert_eq!(events[2]["data"], third);
    }
    client.close(SessionErrorCode::NoError, "done");
    drop(server);
    // Both traces end with the session (and nothing writes into the directories after).
    trace(&cdir).await;
    trace(&sdir).await;
    let _ = std::fs::remove_dir_all(&cdir);
    let _ = std::fs::remove_dir_all(&sdir);
}
