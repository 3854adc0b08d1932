//! An incremental reader that turns a data stream's bytes, as they arrive, into a header and
//! then object after object, without copying payloads out of the received chunks.

use super::{FetchHeader, FetchObject, FetchObjectHead, StreamHeader, SubgroupHeader};
use super::{SubgroupObject, SubgroupObjectHead};
use crate::error::{DecodeError, Rule};
use crate::limits::DEFAULT_MAX_OBJECT_SIZE;
use crate::pending::Pending;
use crate::varint;
use crate::Blob;
use bytes::Bytes;

/// What the reader produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The stream's SUBGROUP_HEADER.
    SubgroupHeader(SubgroupHeader),
    /// The next subgroup object.
    SubgroupObject(SubgroupObject),
    /// The stream's FETCH_HEADER.
    FetchHeader(FetchHeader),
    /// The next fetch object.
    FetchObject(FetchObject),
}

#[derive(Debug, Clone)]
enum State {
    Header,
    Subgroup {
        header: SubgroupHeader,
        prev: Option<u64>,
    },
    Fetch,
}

/// Reads a unidirectional data stream incrementally.
#[derive(Debug, Clone)]
pub struct StreamReader {
    buf: Pending,
    state: State,
    max_object: usize,
    /// The subgroup object whose head arrived and whose payload is still incomplete.
    pending: Option<u64>,
}

impl Default for StreamReader {
    fn default() -> Self {
        StreamReader::new(DEFAULT_MAX_OBJECT_SIZE)
    }
}

impl StreamReader {
    /// A reader that refuses objects larger than `max_object` bytes.
    pub fn new(max_object: usize) -> Self {
        StreamReader {
            buf: Pending::default(),
            state: State::Header,
            max_object,
            pending: None,
        }
    }

    /// Appends received bytes (zero-copy when nothing is pending; otherwise copied once, when
    /// enough has arrived for the next header or object).
    pub fn push(&mut self, data: Bytes) {
        self.buf.push(data);
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The subgroup header, once read.
    pub fn subgroup_header(&self) -> Option<&SubgroupHeader> {
        match &self.state {
            State::Subgroup { header, .. } => Some(header),
            _ => None,
        }
    }

    /// The Object ID of a subgroup object whose head has arrived but whose payload has not
    /// all arrived yet (§9.7: the Largest Object moves at an object's first byte).
    pub fn pending_object(&self) -> Option<u64> {
        self.pending
    }

    /// The next header or object, `Ok(None)` when more bytes are needed. The verdict on a
    /// stream's bytes does not depend on how they were split into chunks.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, DecodeError> {
        let Some(head) = self.buf.ready() else {
            return Ok(None);
        };
        self.check_head_size(head)?;
        match self.decode_one() {
            Ok(Step::Event(ev, used)) => {
                self.buf.advance(used);
                self.pending = None;
                Ok(Some(ev))
            }
            Ok(Step::Wait { total, object }) => {
                self.buf.wait_for(total);
                self.pending = object;
                Ok(None)
            }
            Err(DecodeError::Short) => {
                // Head fields incomplete. Once the Extension Headers Length is readable, wait
                // for the whole extension block at once (a large block is then copied once) and
                // decode it as soon as it is here: a malformed block is refused before the
                // fields after it arrive, exactly as when the stream arrives in one piece.
                let head = self.buf.head();
                let need = self.head_need(head).unwrap_or(0).max(head.len() + 1);
                self.buf.wait_for(need);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Refuses an object whose head (IDs and extension block) is beyond the limit as soon as its
    /// Extension Headers Length is readable, whether or not the rest has arrived.
    fn check_head_size(&self, b: &[u8]) -> Result<(), DecodeError> {
        if matches!(&self.state, State::Subgroup { header, .. } if !header.extensions_present) {
            // No extension block: the head is a few varints, never over the limit.
            return Ok(());
        }
        let limit = self.max_object.saturating_add(HEAD_SLACK);
        match self.head_need(b) {
            Some(need) if need > limit => Err(DecodeError::invalid(
                Rule::ObjectTooLarge,
                format!("an object head of at least {need} bytes, limit {limit}"),
            )),
            _ => Ok(()),
        }
    }

    /// Checks the stream ended cleanly at FIN: a header was read and no object is cut short.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match (&self.state, self.buffered() == 0) {
            (State::Header, _) => Err(DecodeError::invalid(
                Rule::Truncated,
                "stream ended before its header",
            )),
            (_, false) => Err(DecodeError::invalid(
                Rule::Truncated,
                format!(
                    "stream ended inside an object ({} bytes left)",
                    self.buffered()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The bytes an object head at the start of `b` takes up to the end of its extension block,
    /// once its Extension Headers Length is readable (§10.4.2, §10.4.4). `None` before that, for
    /// heads without extensions, and for an Object ID Delta that overflows (the decoder reports
    /// that first).
    fn head_need(&self, b: &[u8]) -> Option<usize> {
        let mut view = b;
        let extensions = match &self.state {
            State::Header => return None,
            State::Subgroup { header, prev } => {
                let delta = varint::read(&mut view).ok()?;
                if let Some(p) = prev {
                    p.checked_add(delta)?
                        .checked_add(1)
                        .filter(|id| *id <= crate::limits::MAX_VARINT)?;
                }
                header.extensions_present
            }
            State::Fetch => {
                for _ in 0..3 {
                    varint::read(&mut view).ok()?;
                }
                // Publisher Priority, one byte.
                view = view.get(1..)?;
                true
            }
        };
        if !extensions {
            return None;
        }
        let len = usize::try_from(varint::read(&mut view).ok()?).ok()?;
        (b.len() - view.len()).checked_add(len)
    }

    /// Decodes the next header or object from the buffered head, each field once; an event
    /// comes with the bytes it used, which the caller then drops from the buffer.
    fn decode_one(&mut self) -> Result<Step, DecodeError> {
        let max_object = self.max_object;
        let head = self.buf.head();
        match &mut self.state {
            State::Header => {
                let mut view = head.clone();
                let ev = match StreamHeader::decode(&mut view)? {
                    StreamHeader::Subgroup(header) => {
                        self.state = State::Subgroup { header, prev: None };
                        StreamEvent::SubgroupHeader(header)
                    }
                    StreamHeader::Fetch(h) => {
                        self.state = State::Fetch;
                        StreamEvent::FetchHeader(h)
                    }
                };
                Ok(Step::Event(ev, head.len() - view.len()))
            }
            State::Subgroup { header, prev } => {
                // The head's fields are read from a plain slice (no reference counting); an
                // extension block is read from a `Bytes` view so its bytes stay zero-copy.
                let (h, head_len) = if header.extensions_present {
                    let mut probe = head.clone();
                    let h = SubgroupObjectHead::decode(&mut probe, header, *prev)?;
                    (h, head.len() - probe.len())
                } else {
                    let mut probe = &head[..];
                    let h = SubgroupObjectHead::decode(&mut probe, header, *prev)?;
                    (h, head.len() - probe.len())
                };
                let Some(payload) = take_payload(head, head_len, h.payload_len, max_object)? else {
                    return Ok(Step::Wait {
                        total: head_len + h.payload_len as usize,
                        object: Some(h.object_id),
                    });
                };
                *prev = Some(h.object_id);
                let used = head_len + payload.len();
                let obj = SubgroupObject::from_head(h, Blob(payload));
                Ok(Step::Event(StreamEvent::SubgroupObject(obj), used))
            }
            State::Fetch => {
                let mut probe = head.clone();
                let h = FetchObjectHead::decode(&mut probe)?;
                let head_len = head.len() - probe.len();
                let Some(payload) = take_payload(head, head_len, h.payload_len, max_object)? else {
                    return Ok(Step::Wait {
                        total: head_len + h.payload_len as usize,
                        object: None,
                    });
                };
                let used = head_len + payload.len();
                let obj = FetchObject::from_head(h, Blob(payload));
                Ok(Step::Event(StreamEvent::FetchObject(obj), used))
            }
        }
    }
}

/// Largest object head (IDs, lengths, extension headers) tolerated beyond the payload limit.
const HEAD_SLACK: usize = 64 * 1024;

enum Step {
    /// An event and the bytes it used.
    Event(StreamEvent, usize),
    /// The object is complete once `total` bytes are buffered; `object` is a subgroup
    /// object's ID.
    Wait { total: usize, object: Option<u64> },
}

/// The payload of `payload` bytes after a head of `head_len` bytes, as a zero-copy slice of
/// `buf`; `None` while it has not all arrived.
fn take_payload(
    buf: &Bytes,
    head_len: usize,
    payload: u64,
    max_object: usize,
) -> Result<Option<Bytes>, DecodeError> {
    if payload > max_object as u64 {
        return Err(DecodeError::invalid(
            Rule::ObjectTooLarge,
            format!("payload of {payload} bytes, limit {max_object}"),
        ));
    }
    // Within `max_object`, so it fits in usize.
    let end = head_len + payload as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some(if payload == 0 {
        Bytes::new()
    } else {
        buf.slice(head_len..end)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event, then the verdict at FIN, with the input pushed in pieces of `step` bytes.
    fn read(input: &[u8], step: usize) -> (Vec<StreamEvent>, Result<(), Rule>) {
        let mut r = StreamReader::default();
        let mut events = Vec::new();
        for piece in input.chunks(step) {
            r.push(Bytes::copy_from_slice(piece));
            loop {
                match r.next_event() {
                    Ok(Some(ev)) => events.push(ev),
                    Ok(None) => break,
                    Err(e) => return (events, Err(e.rule())),
                }
            }
        }
        (events, r.finish().map_err(|e| e.rule()))
    }

    fn same_verdict_however_chunked(input: &[u8], want: Rule) {
        for step in [input.len(), 1, 2, 3, 5] {
            let (_, end) = read(input, step);
            assert_eq!(end, Err(want), "pieces of {step} bytes");
        }
    }

    /// Found by the subgroup_stream fuzz target: a stream that ends right after a malformed
    /// extension block (§10.4.2: the pairs must end exactly at Extension Headers Length) was
    /// `extension_headers_length` in one piece but `truncated` in pieces, because the reader
    /// waited for one byte past the block before decoding it.
    #[test]
    fn malformed_extension_block_at_fin_subgroup() {
        // 11 SUBGROUP_HEADER with extensions; alias 4, group 0, priority 0; object: delta 0,
        // Extension Headers Length 6, pair key 0x23 (odd) with length 0x56 = 86 > 5 left.
        let input = hex::decode("110400000006235656565656").unwrap();
        same_verdict_however_chunked(&input, Rule::ExtensionHeadersLength);
    }

    /// Found by the fetch_stream fuzz target: the same on a fetch stream (§10.4.4).
    #[test]
    fn malformed_extension_block_at_fin_fetch() {
        // 05 FETCH_HEADER, request 1; object: group 10, subgroup 45, object 0, priority 0,
        // Extension Headers Length 5: 0d 02 "id" then key 0x31 with no length.
        let input = hex::decode("05010a2d0000050d02696431").unwrap();
        same_verdict_however_chunked(&input, Rule::ExtensionHeadersLength);
    }

    /// A head beyond the limit is refused as soon as its Extension Headers Length is readable,
    /// whether the block is all here or not; an overflowing Object ID Delta before it is
    /// reported as such, however the bytes arrive.
    #[test]
    fn head_limit_and_overflow_do_not_depend_on_chunking() {
        let mut r = StreamReader::new(0);
        // 11 header; object: delta 0, Extension Headers Length 0x10001 (65,537 > 0 + 64 KiB).
        r.push(Bytes::from(hex::decode("110400000080010001").unwrap()));
        assert!(r.next_event().unwrap().is_some());
        assert_eq!(r.next_event().unwrap_err().rule(), Rule::ObjectTooLarge);
        // Two objects: the second's delta takes the ID past 2^62-1, and its extension length
        // is beyond the limit: the delta comes first on the wire and is reported first.
        // 11 header; object 2^62-1 (8-byte delta, no extensions, empty, status 0); object:
        // delta 0, Extension Headers Length 0x10001.
        let input = hex::decode("11040000ffffffffffffffff0000000080010001").unwrap();
        for step in [input.len(), 1, 4] {
            let mut r = StreamReader::new(0);
            let mut end = None;
            for piece in input.chunks(step) {
                r.push(Bytes::copy_from_slice(piece));
                loop {
                    match r.next_event() {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(e) => {
                            end = Some(e.rule());
                            break;
                        }
                    }
                }
                if end.is_some() {
                    break;
                }
            }
            assert_eq!(end, Some(Rule::ObjectIdOverflow), "pieces of {step} bytes");
        }
    }
}
