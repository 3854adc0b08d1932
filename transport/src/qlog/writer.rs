//! The writer task of one trace: the JSON-SEQ file, its header, its byte limit and its closing
//! note.

use super::{Record, Vantage, LOGLEVEL_EVENT_SCHEMA, MOQT_EVENT_SCHEMA};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Bytes kept free under the limit for the truncation and closing notes.
const NOTES_RESERVE: u64 = 1024;

/// The `QlogFileSeq` header record (qlog main schema: LogFile, QlogFileSeq, TraceSeq).
pub(super) fn header(group_id: &str, vantage: Vantage, title: &str) -> Value {
    let wall = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "file_schema": "urn:ietf:params:qlog:file:sequential",
        "serialization_format": "application/qlog+json-seq",
        // Not in the main schema: qvis (through 72c8c4b, 2025-10) opens a JSON-SEQ file only
        // when its header has these two (as quic-go's traces carry them too).
        "qlog_version": "0.3",
        "qlog_format": "JSON-SEQ",
        "title": format!("moqlink {} trace", vantage.name()),
        "description": title,
        "trace": {
            "title": title,
            "common_fields": {
                "group_id": group_id,
                "time_format": "relative_to_epoch",
                "reference_time": {
                    "clock_type": "monotonic",
                    "epoch": "unknown",
                    "wall_clock_time": wall,
                },
            },
            "vantage_point": {
                "name": format!("moqlink/{}", env!("CARGO_PKG_VERSION")),
                "type": vantage.name(),
            },
            "event_schemas": [MOQT_EVENT_SCHEMA, LOGLEVEL_EVENT_SCHEMA],
        },
    })
}

/// One RFC 7464 record: RS, the JSON text, LF.
fn record(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(0x1e);
    // Serializing a `Value` cannot fail.
    let _ = serde_json::to_writer(&mut out, v);
    out.push(b'\n');
    out
}

fn event(time: f64, name: &str, data: Value) -> Value {
    json!({ "time": time, "name": name, "data": data })
}

/// Writes the header, then records until `Finish` or every sender is gone, then the closing
/// note. Flushes whenever the queue is empty, so the file follows the session closely.
pub(super) async fn run(
    dir: PathBuf,
    path: PathBuf,
    header: Value,
    mut rx: mpsc::Receiver<Record>,
    max_bytes: u64,
    dropped: Arc<AtomicU64>,
) {
    let file = match tokio::fs::create_dir_all(&dir).await {
        Ok(()) => tokio::fs::File::create(&path).await,
        Err(e) => Err(e),
    };
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "qlog file not created");
            return;
        }
    };
    tracing::info!(path = %path.display(), "qlog trace started");
    let mut out = tokio::io::BufWriter::new(file);
    let mut written = 0u64;
    let mut events = 0u64;
    let mut cut = 0u64;
    let mut last_time = 0.0f64;
    let limit = max_bytes.saturating_sub(NOTES_RESERVE);
    let head = record(&header);
    let mut failed = out.write_all(&head).await.is_err();
    written += head.len() as u64;
    while let Some(r) = rx.recv().await {
        let mut next = Some(r);
        // Everything queued now, then one flush.
        while let Some(r) = next.take() {
            match r {
                Record::Finish => {
                    rx.close();
                }
                Record::Event { time, name, data } => {
                    // Events come from several tasks: keep the file's times ascending (qlog
                    // main schema, "Timestamps").
                    let time = time.max(last_time);
                    last_time = time;
                    if cut > 0 || failed {
                        cut += 1;
                    } else {
                        let bytes = record(&event(time, name, data));
                        if written + bytes.len() as u64 > limit {
                            cut = 1;
                            let note = record(&event(
                                time,
                                "loglevel:warning",
                                json!({ "message": format!(
                                    "trace truncated: the file reached its limit of {max_bytes} \
                                     bytes; later events are counted, not written"
                                ) }),
                            ));
                            failed |= out.write_all(&note).await.is_err();
                            written += note.len() as u64;
                        } else {
                            failed |= out.write_all(&bytes).await.is_err();
                            written += bytes.len() as u64;
                            events += 1;
                        }
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        failed |= out.flush().await.is_err();
    }
    let note = record(&event(
        last_time,
        "loglevel:info",
        json!({ "message": format!(
            "end of trace: events_written={events} events_dropped={} events_truncated={cut}",
            dropped.load(Ordering::Relaxed)
        ) }),
    ));
    let _ = out.write_all(&note).await;
    let _ = out.flush().await;
    if failed {
        tracing::warn!(path = %path.display(), "qlog trace: writing failed");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Qlog, QlogConfig, Vantage};
    use serde_json::Value;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    fn dir(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::env::temp_dir().join(format!("moqlink-qlog-unit-{tag}-{nanos}"))
    }

    /// The one trace file in `dir`, once its closing note is written (waits up to 10 s).
    async fn finished(dir: &Path) -> (PathBuf, Vec<Value>) {
        for _ in 0..1000 {
            if let Some(Ok(e)) = std::fs::read_dir(dir).ok().and_then(|mut d| d.next()) {
                let bytes = std::fs::read(e.path()).unwrap();
                if String::from_utf8_lossy(&bytes).contains("end of trace: ") {
                    let records = bytes[1..]
                        .split(|b| *b == 0x1e)
                        .map(|r| serde_json::from_slice(r).unwrap())
                        .collect();
                    return (e.path(), records);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no finished trace in {}", dir.display());
    }

    fn last_message(records: &[Value]) -> String {
        records.last().unwrap()["data"]["message"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_drops_and_counts_and_the_count_is_written_at_the_end() {
        let d = dir("queue");
        let cfg = QlogConfig {
            queue: 4,
            ..QlogConfig::new(&d)
        };
        let q = Qlog::start(&cfg, Vantage::Client, "unit").unwrap();
        // The writer cannot run before this task yields: 4 fit, 6 are dropped.
        for i in 0..10 {
            q.info(format!("event {i}"));
        }
        q.finish();
        let (path, records) = finished(&d).await;
        assert!(path.to_string_lossy().ends_with("_client.sqlog"));
        assert_eq!(records[0]["trace"]["vantage_point"]["type"], "client");
        assert_eq!(records.len(), 1 + 4 + 1, "header, 4 events, closing note");
        assert_eq!(
            last_message(&records),
            "end of trace: events_written=4 events_dropped=6 events_truncated=0"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_file_stays_under_its_limit_and_says_it_was_cut() {
        let d = dir("limit");
        let max = 4096;
        let cfg = QlogConfig {
            max_file_bytes: max,
            ..QlogConfig::new(&d)
        };
        let q = Qlog::start(&cfg, Vantage::Server, "unit").unwrap();
        for i in 0..100 {
            q.info(format!("event {i} with some words to take up room"));
        }
        q.finish();
        let (path, records) = finished(&d).await;
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= max, "{size} bytes written, limit {max}");
        let cut = records
            .iter()
            .position(|r| r["name"] == "loglevel:warning")
            .expect("a truncation note");
        assert!(records[cut]["data"]["message"]
            .as_str()
            .unwrap()
            .starts_with("trace truncated"));
        let written = cut - 1;
        assert!(written > 0 && written < 100);
        assert_eq!(
            last_message(&records),
            format!(
                "end of trace: events_written={written} events_dropped=0 events_truncated={}",
                100 - written
            )
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
