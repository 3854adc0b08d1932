//! Writers for subgroup and fetch streams: the header once, then objects with their payloads
//! passed through as `Bytes` (never copied).

use super::arbiter::{SendArbiter, WriterSlot};
use crate::connection::{Connection, SendStream, StreamError};
use crate::qlog::{Dir, Qlog, StreamTrace};
use bytes::BytesMut;
use moqlink_model::data::{FetchHeader, FetchObject, SubgroupHeader, SubgroupObject};
use moqlink_model::{EncodeError, Encoding, Version};
use std::sync::Arc;

/// Why writing an object failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The object cannot be encoded (e.g. IDs out of order, a limit broken).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The stream or connection failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
}

/// A subgroup stream being written.
pub struct SubgroupWriter<S: SendStream> {
    stream: S,
    slot: WriterSlot,
    header: SubgroupHeader,
    prev: Option<u64>,
    buf: BytesMut,
    /// Where resets of this stream are counted.
    stats: Option<Arc<crate::stats::TrackStats>>,
    trace: Option<StreamTrace>,
}

impl<S: SendStream> SubgroupWriter<S> {
    /// Counts this stream's resets in `stats` (the counters of the track it sends).
    pub fn count_into(&mut self, stats: Option<&Arc<crate::stats::TrackStats>>) {
        self.stats = stats.cloned();
    }

    fn counted_reset(&mut self, code: u64) -> Result<(), StreamError> {
        if let Some(s) = &self.stats {
            s.reset_sent(code);
        }
        self.stream.reset(code)
    }

    /// Opens a unidirectional stream at `priority`, taking turns with the other writers of
    /// `arbiter` (the connection's), and writes the SUBGROUP_HEADER.
    pub async fn open<C: Connection<Send = S>>(
        conn: &C,
        arbiter: &Arc<SendArbiter>,
        header: SubgroupHeader,
        priority: i32,
    ) -> Result<Self, WriteError> {
        let mut w = Self::open_deferred(conn, arbiter, header, priority).await?;
        let head = w.buf.split().freeze();
        w.slot.send(&mut w.stream, head).await?;
        Ok(w)
    }

    /// Opens a unidirectional stream at `priority` like [`Self::open`], but writes nothing yet:
    /// the SUBGROUP_HEADER goes out with the first object. Nothing can then be half-written
    /// when the caller gives up before that (a stream dropped unfinished is finished
    /// implicitly, which would hand the peer a truncated stream): it can still
    /// [`reset`](Self::reset). Dropping this future before it resolves opens nothing.
    pub async fn open_deferred<C: Connection<Send = S>>(
        conn: &C,
        arbiter: &Arc<SendArbiter>,
        header: SubgroupHeader,
        priority: i32,
    ) -> Result<Self, WriteError> {
        let mut buf = BytesMut::with_capacity(64);
        header.encode(&mut buf, Encoding::new(Version::DRAFT_14))?;
        let stream = conn.open_uni().await.map_err(StreamError::from)?;
        stream.set_priority(priority);
        Ok(SubgroupWriter {
            stream,
            slot: arbiter.register(priority),
            header,
            prev: None,
            buf,
            stats: None,
            trace: None,
        })
    }

    /// Logs this stream into `qlog` from now on: its type and header at once when the header
    /// went out already, else with the first object.
    pub fn traced(mut self, qlog: Option<&Qlog>) -> Self {
        if let Some(q) = qlog {
            let mut t = StreamTrace::new(q, Dir::Created, self.stream.stream_id());
            if self.buf.is_empty() {
                t.subgroup_header(&self.header);
            }
            self.trace = Some(t);
        }
        self
    }

    /// The header this stream was opened with.
    pub fn header(&self) -> &SubgroupHeader {
        &self.header
    }

    /// The last Object ID written.
    pub fn last_object_id(&self) -> Option<u64> {
        self.prev
    }

    /// Writes one object; its ID must be above the previous one. Dropping the future midway
    /// leaves the stream with part of the object: [`reset`](Self::reset) it then.
    pub async fn write(&mut self, obj: &SubgroupObject) -> Result<(), WriteError> {
        // After a deferred open, the header is still in `buf` and goes out with this head.
        let pending = self.buf.len();
        if let Err(e) = obj.encode_head(
            &mut self.buf,
            &self.header,
            self.prev,
            Encoding::new(Version::DRAFT_14),
        ) {
            self.buf.truncate(pending);
            return Err(e.into());
        }
        if let Some(t) = &mut self.trace {
            if pending > 0 {
                t.subgroup_header(&self.header);
            }
            t.subgroup_object(obj);
        }
        let head = self.buf.split().freeze();
        self.slot.send(&mut self.stream, head).await?;
        if !obj.payload.is_empty() {
            self.slot
                .send(&mut self.stream, obj.payload.bytes().clone())
                .await?;
        }
        self.prev = Some(obj.object_id);
        Ok(())
    }

    /// Changes the stream's send priority.
    pub fn set_priority(&self, priority: i32) {
        self.stream.set_priority(priority);
        self.slot.set_priority(priority);
    }

    /// Tells the connection's other writers that this one waits for new objects (§7.2).
    pub fn idle(&self) {
        self.slot.idle();
    }

    /// Ends the stream with FIN: every object of the subgroup was written. A stream opened with
    /// [`Self::open_deferred`] that never wrote (so has no header on the wire) is reset with
    /// INTERNAL_ERROR instead: a bare FIN would be a malformed stream.
    pub fn finish(mut self) -> Result<(), StreamError> {
        if !self.buf.is_empty() {
            return self.counted_reset(moqlink_model::data::reset_code::INTERNAL_ERROR);
        }
        self.stream.finish()
    }

    /// Abandons the stream with a reset code (`moqlink_model::data::reset_code`).
    pub fn reset(mut self, code: u64) -> Result<(), StreamError> {
        self.counted_reset(code)
    }

    /// Waits for the peer's STOP_SENDING.
    pub async fn stopped(&mut self) -> Option<u64> {
        self.stream.stopped().await
    }
}

/// A fetch stream being written.
pub struct FetchWriter<S: SendStream> {
    stream: S,
    slot: WriterSlot,
    buf: BytesMut,
    request_id: u64,
    trace: Option<StreamTrace>,
}

impl<S: SendStream> FetchWriter<S> {
    /// Opens a unidirectional stream at `priority`, taking turns with the other writers of
    /// `arbiter` (the connection's), and writes the FETCH_HEADER.
    pub async fn open<C: Connection<Send = S>>(
        conn: &C,
        arbiter: &Arc<SendArbiter>,
        request_id: u64,
        priority: i32,
    ) -> Result<Self, WriteError> {
        let stream = conn.open_uni().await.map_err(StreamError::from)?;
        stream.set_priority(priority);
        let mut w = FetchWriter {
            stream,
            slot: arbiter.register(priority),
            buf: BytesMut::with_capacity(64),
            request_id,
            trace: None,
        };
        FetchHeader { request_id }.encode(&mut w.buf, Encoding::new(Version::DRAFT_14))?;
        let head = w.buf.split().freeze();
        w.slot.send(&mut w.stream, head).await?;
        Ok(w)
    }

    /// Logs this stream into `qlog` from now on (its type and header at once).
    pub fn traced(mut self, qlog: Option<&Qlog>) -> Self {
        if let Some(q) = qlog {
            let mut t = StreamTrace::new(q, Dir::Created, self.stream.stream_id());
            t.fetch_header(self.request_id);
            self.trace = Some(t);
        }
        self
    }

    /// Writes one object.
    pub async fn write(&mut self, obj: &FetchObject) -> Result<(), WriteError> {
        obj.encode_head(&mut self.buf, Encoding::new(Version::DRAFT_14))?;
        if let Some(t) = &mut self.trace {
            t.fetch_object(obj);
        }
        let head = self.buf.split().freeze();
        self.slot.send(&mut self.stream, head).await?;
        if !obj.payload.is_empty() {
            self.slot
                .send(&mut self.stream, obj.payload.bytes().clone())
                .await?;
        }
        Ok(())
    }

    /// Ends the stream with FIN.
    pub fn finish(mut self) -> Result<(), StreamError> {
        self.stream.finish()
    }

    /// Abandons the stream with a reset code.
    pub fn reset(mut self, code: u64) -> Result<(), StreamError> {
        self.stream.reset(code)
    }
}
