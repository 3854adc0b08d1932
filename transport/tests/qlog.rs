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
