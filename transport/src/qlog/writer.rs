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
