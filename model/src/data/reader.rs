//! An incremental reader that turns a data stream's bytes, as they arrive, into a header and
//! then object after object, without copying payloads out of the received chunks.

use super::{FetchHeader, FetchObject, FetchObjectHead, StreamHeader, SubgroupHeader};
use super::{SubgroupObject, SubgroupObjectHead};
use crate::error::{DecodeError, Rule};
use crate::limits::DEFAULT_MAX_OBJECT_SIZE;
use crate::pending::Pending;
use crate::varint;
use bytes::{Buf, Bytes};

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

    /// The next header or object, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, DecodeError> {
        let Some(head) = self.buf.ready() else {
            return Ok(None);
        };
        let mut view = head.clone();
        match self.decode_one(&mut view) {
            Ok(Step::Event(ev)) => {
                self.buf.consume(view);
                self.pending = None;
                Ok(Some(ev))
            }
            Ok(Step::Wait { total, object }) => {
                self.buf.wait_for(total);
                self.pending = object;
                Ok(None)
            }
            Err(DecodeError::Short) => {
                // Head fields incomplete. Once the Extension Headers Length is readable the
                // head's size is known: wait for all of it at once (a large extension block is
                // then copied once) and refuse it at once when it is beyond the limit.
                let head = self.buf.head();
                let have = head.len();
                let need = self.head_need(head).unwrap_or(0).max(have + 1);
                let limit = self.max_object.saturating_add(HEAD_SLACK);
                if need > limit.saturating_add(1) {
                    return Err(DecodeError::invalid(
                        Rule::ObjectTooLarge,
                        format!("an object head of at least {need} bytes, limit {limit}"),
                    ));
                }
                self.buf.wait_for(need);
                Ok(None)
            }
            Err(e) => Err(e),
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

    /// The bytes an incomplete object head at the start of `b` needs up to and including the
    /// first byte of its Object Payload Length, once its Extension Headers Length is readable
    /// (§10.4.2, §10.4.4).
    fn head_need(&self, b: &[u8]) -> Option<usize> {
        let mut view = b;
        let extensions = match &self.state {
            State::Header => return None,
            State::Subgroup { header, .. } => {
                varint::read(&mut view).ok()?;
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
        (b.len() - view.len()).checked_add(len)?.checked_add(1)
    }

    fn decode_one(&mut self, view: &mut Bytes) -> Result<Step, DecodeError> {
        let max_object = self.max_object;
        match &mut self.state {
            State::Header => match StreamHeader::decode(view)? {
                StreamHeader::Subgroup(header) => {
                    self.state = State::Subgroup { header, prev: None };
                    Ok(Step::Event(StreamEvent::SubgroupHeader(header)))
                }
                StreamHeader::Fetch(h) => {
                    self.state = State::Fetch;
                    Ok(Step::Event(StreamEvent::FetchHeader(h)))
                }
            },
            State::Subgroup { header, prev } => {
                let mut probe = view.clone();
                let head = SubgroupObjectHead::decode(&mut probe, header, *prev)?;
                if let Some(total) = wait_for(view, &probe, head.payload_len, max_object)? {
                    return Ok(Step::Wait {
                        total,
                        object: Some(head.object_id),
                    });
                }
                let obj = SubgroupObject::decode(view, header, *prev)?;
                *prev = Some(obj.object_id);
                Ok(Step::Event(StreamEvent::SubgroupObject(obj)))
            }
            State::Fetch => {
                let mut probe = view.clone();
                let head = FetchObjectHead::decode(&mut probe)?;
                if let Some(total) = wait_for(view, &probe, head.payload_len, max_object)? {
                    return Ok(Step::Wait {
                        total,
                        object: None,
                    });
                }
                Ok(Step::Event(StreamEvent::FetchObject(FetchObject::decode(
                    view,
                )?)))
            }
        }
    }
}

/// Largest object head (IDs, lengths, extension headers) tolerated beyond the payload limit.
const HEAD_SLACK: usize = 64 * 1024;

enum Step {
    Event(StreamEvent),
    /// The object is complete once `total` bytes are buffered; `object` is a subgroup
    /// object's ID.
    Wait {
        total: usize,
        object: Option<u64>,
    },
}

/// After an object's head parsed: `Some(total bytes needed)` when its payload is not all here.
fn wait_for(
    view: &Bytes,
    after_head: &Bytes,
    payload: u64,
    max_object: usize,
) -> Result<Option<usize>, DecodeError> {
    if payload > max_object as u64 {
        return Err(DecodeError::invalid(
            Rule::ObjectTooLarge,
            format!("payload of {payload} bytes, limit {max_object}"),
        ));
    }
    if (after_head.remaining() as u64) >= payload {
        return Ok(None);
    }
    let head_len = view.len() - after_head.len();
    Ok(Some(head_len + payload as usize))
}
