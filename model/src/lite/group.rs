//! The Group stream: GROUP then FRAMEs (moq-lite §Group, §GROUP, §FRAME).

use super::message::{framed, Message};
use crate::blob::Blob;
use crate::codec::{put_slice, put_varint, read_exact, Decode, Encode, Encoding};
use crate::error::{DecodeError, EncodeError};
use crate::varint;
use crate::version::Version;
use bytes::{Buf, BufMut, Bytes};
use serde::{Deserialize, Serialize};

/// GROUP: `Subscribe ID (i)`, `Group Sequence (i)`; the header of a Group stream, after the
/// stream type 0x0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Group {
    /// The SUBSCRIBE this group serves.
    pub subscribe_id: u64,
    /// The group's sequence number.
    pub sequence: u64,
}

impl Message for Group {
    const NAME: &'static str = "GROUP";
    const MAX_LENGTH: usize = 16;
    const FIXED_FIELDS: bool = true;

    fn decode_body(b: &mut Bytes, _: Version) -> Result<Self, DecodeError> {
        Ok(Group {
            subscribe_id: varint::read(b)?,
            sequence: varint::read(b)?,
        })
    }

    fn encode_body<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(b, self.subscribe_id, enc)?;
        put_varint(b, self.sequence, enc)
    }
}

framed!(Group);

/// FRAME: `Size (i)` then that many payload bytes. The texts write `Message Length (i)` followed
/// by `Payload (b)`, which read literally would length-prefix the payload twice; moq-dev writes
/// one length (DISAGREEMENTS L9). An empty payload is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The payload, a zero-copy slice of the received bytes when decoded from `Bytes`.
    pub payload: Blob,
}

impl Frame {
    /// A frame carrying `payload`.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Frame {
            payload: Blob(payload.into()),
        }
    }

    /// Writes only the `Size (i)` prefix, for senders that write the payload themselves.
    pub fn encode_size<B: BufMut>(
        size: usize,
        buf: &mut B,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        put_varint(buf, size as u64, enc)
    }
}

impl Decode for Frame {
    /// Reads size and payload; `Short` until the whole payload is in `buf`.
    fn decode<B: Buf>(buf: &mut B, _: Version) -> Result<Self, DecodeError> {
        let len = varint::read(buf)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Short)?;
        Ok(Frame {
            payload: Blob(read_exact(buf, len)?),
        })
    }
}

impl Encode for Frame {
    fn encode<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(buf, self.payload.len() as u64, enc)?;
        put_slice(buf, &self.payload)
    }
}
