//! MoQT qlog traces: one JSON-SEQ file per session (RFC 7464), with a qlog main-schema
//! `QlogFileSeq` header and the events of draft-pardue-moq-qlog-moq-events-04 (`moqt:*`).
//!
//! A session holds an `Option<Qlog>`: `None` costs one branch per hook. When on, each hook builds
//! the event's `data` and hands it to a bounded queue read by a writer task; a full queue drops
//! the event and counts it, so logging never blocks a session. The file is bounded in bytes; the
//! last record says how many events were dropped or cut off.

mod control;
mod data;
mod stream;
mod writer;

pub use control::control_message;
pub use data::{datagram, fetch_object, subgroup_header, subgroup_object};
pub use stream::StreamTrace;

use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// The event schema URI of draft-pardue-moq-qlog-moq-events-04 (its §3.1: draft versions append
/// "-" and the draft number).
pub const MOQT_EVENT_SCHEMA: &str = "urn:ietf:params:qlog:events:moqt-04";
/// The qlog main schema's generic `loglevel` event schema, used for the trace's own notes.
pub const LOGLEVEL_EVENT_SCHEMA: &str = "urn:ietf:params:qlog:events:loglevel";

/// Where and how much to trace; set in [`crate::session::SessionConfig::qlog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QlogConfig {
    /// Directory for the files (created if missing).
    pub dir: PathBuf,
    /// Largest file written; later events are counted, not written. Default 64 MiB.
    pub max_file_bytes: u64,
    /// Events queued for the writer before new ones are dropped. Default 8192.
    pub queue: usize,
}

impl QlogConfig {
    /// Traces into `dir` with the default limits.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        QlogConfig {
            dir: dir.into(),
            max_file_bytes: 64 * 1024 * 1024,
            queue: 8192,
        }
    }
}

/// Which end of the session the trace is written at (qlog `VantagePointType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vantage {
    /// The endpoint that opened the connection.
    Client,
    /// The endpoint that accepted it.
    Server,
}

impl Vantage {
    /// The qlog name: `client` or `server`.
    pub fn name(self) -> &'static str {
        match self {
            Vantage::Client => "client",
            Vantage::Server => "server",
        }
    }
}

/// Whether the event is for something this endpoint sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Created (sent) by this endpoint.
    Created,
    /// Parsed (received) from the peer.
    Parsed,
}

impl Dir {
    fn suffix(self) -> &'static str {
        match self {
            Dir::Created => "created",
            Dir::Parsed => "parsed",
        }
    }
}

pub(crate) enum Record {
    Event {
        time: f64,
        name: &'static str,
        data: Value,
    },
    Finish,
}

struct Shared {
    tx: mpsc::Sender<Record>,
    start: Instant,
    dropped: Arc<AtomicU64>,
    /// Numbers streams whose transport gives no ID (test wrappers).
    synthetic: AtomicU64,
}

/// One session's trace. Cheap to clone; the file is completed by [`Qlog::finish`] or when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Qlog(Arc<Shared>);

impl std::fmt::Debug for Qlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Qlog")
    }
}

/// A trace that could not be started.
#[derive(Debug, thiserror::Error)]
#[error("qlog: {0}")]
pub struct QlogError(String);

impl Qlog {
    /// Starts a trace for a new session at `vantage`: picks a random group ID, names the file
    /// `<group_id>_<vantage>.sqlog` in `cfg.dir` and spawns its writer. `title` describes the
    /// session (peer, transport). Needs a tokio runtime.
    pub fn start(cfg: &QlogConfig, vantage: Vantage, title: &str) -> Result<Qlog, QlogError> {
        let group_id = random_id()?;
        let path = cfg.dir.join(format!("{group_id}_{}.sqlog", vantage.name()));
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let header = writer::header(&group_id, vantage, title);
        tokio::spawn(writer::run(
            cfg.dir.clone(),
            path,
            header,
            rx,
            cfg.max_file_bytes,
            dropped.clone(),
        ));
        Ok(Qlog(Arc::new(Shared {
            tx,
            start,
            dropped,
            synthetic: AtomicU64::new(1 << 60),
        })))
    }

    /// Queues one event; drops and counts it when the writer is behind.
    pub fn emit(&self, name: &'static str, data: Value) {
        let time = self.0.start.elapsed().as_secs_f64() * 1000.0;
        if self
            .0
            .tx
            .try_send(Record::Event { time, name, data })
            .is_err()
        {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a `loglevel:info` note (qlog main schema) with `message`.
    pub fn info(&self, message: impl Into<String>) {
        self.emit(
            "loglevel:info",
            serde_json::json!({ "message": message.into() }),
        );
    }

    /// Ends the trace: the writer writes what is queued, the closing note, and stops.
    pub fn finish(&self) {
        let tx = self.0.tx.clone();
        if let Err(mpsc::error::TrySendError::Full(r)) = tx.try_send(Record::Finish) {
            // The closing record must not be lost to a full queue.
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    let _ = tx.send(r).await;
                });
            }
        }
    }

    /// `moqt:control_message_created` / `_parsed` (events-04 §4.1, §4.2) for a whole framed
    /// message as it is on the wire.
    pub fn control(&self, dir: Dir, stream_id: u64, framed: &[u8]) {
        let name = match dir {
            Dir::Created => "moqt:control_message_created",
            Dir::Parsed => "moqt:control_message_parsed",
        };
        match control::from_wire(framed) {
            Some((length, message)) => self.emit(
                name,
                serde_json::json!({ "stream_id": stream_id, "length": length, "message": message }),
            ),
            None => self.emit(
                "loglevel:warning",
                serde_json::json!({ "message": format!("undecodable control message ({dir:?})") }),
            ),
        }
    }

    /// `moqt:control_message_created` / `_parsed` for a decoded message; its `length` is that
    /// of the minimal encoding (the received one differs only for non-minimal varints).
    pub fn control_msg(
        &self,
        dir: Dir,
        stream_id: u64,
        msg: &moqlink_model::control::ControlMessage,
    ) {
        let mut buf = bytes::BytesMut::new();
        let enc = moqlink_model::Encoding::new(moqlink_model::Version::DRAFT_14);
        if msg.encode(&mut buf, enc).is_ok() {
            self.control(dir, stream_id, &buf);
        }
    }

    /// `moqt:stream_type_set` (events-04 §4.3).
    pub fn stream_type(&self, local: bool, stream_id: u64, stream_type: &'static str) {
        self.emit(
            "moqt:stream_type_set",
            serde_json::json!({
                "owner": if local { "local" } else { "remote" },
                "stream_id": stream_id,
                "stream_type": stream_type,
            }),
        );
    }

    /// An event named `moqt:<what>_<created|parsed>` with `data`.
    pub fn data_event(&self, what: DataEvent, dir: Dir, data: Value) {
        self.emit(what.name(dir), data);
    }

    /// A stream ID for a transport that gives none (only test wrappers): unique in this trace.
    pub fn synthetic_stream_id(&self) -> u64 {
        self.0.synthetic.fetch_add(4, Ordering::Relaxed)
    }
}

/// The data-plane events of events-04 §4.4-§4.13.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataEvent {
    /// `object_datagram_*`.
    ObjectDatagram,
    /// `subgroup_header_*`.
    SubgroupHeader,
    /// `subgroup_object_*`.
    SubgroupObject,
    /// `fetch_header_*`.
    FetchHeader,
    /// `fetch_object_*`.
    FetchObject,
}

impl DataEvent {
    /// The full event name.
    pub fn name(self, dir: Dir) -> &'static str {
        use DataEvent::*;
        match (self, dir) {
            (ObjectDatagram, Dir::Created) => "moqt:object_datagram_created",
            (ObjectDatagram, Dir::Parsed) => "moqt:object_datagram_parsed",
            (SubgroupHeader, Dir::Created) => "moqt:subgroup_header_created",
            (SubgroupHeader, Dir::Parsed) => "moqt:subgroup_header_parsed",
            (SubgroupObject, Dir::Created) => "moqt:subgroup_object_created",
            (SubgroupObject, Dir::Parsed) => "moqt:subgroup_object_parsed",
            (FetchHeader, Dir::Created) => "moqt:fetch_header_created",
            (FetchHeader, Dir::Parsed) => "moqt:fetch_header_parsed",
            (FetchObject, Dir::Created) => "moqt:fetch_object_created",
            (FetchObject, Dir::Parsed) => "moqt:fetch_object_parsed",
        }
    }
}

fn random_id() -> Result<String, QlogError> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| QlogError("no randomness for the trace ID".into()))?;
    Ok(hex::encode(b))
}

/// `created` or `parsed`, as in the event names.
impl std::fmt::Display for Dir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.suffix())
    }
}
