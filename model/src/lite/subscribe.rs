//! One track subscription on the Subscribe stream: SUBSCRIBE, SUBSCRIBE_UPDATE, SUBSCRIBE_OK
//! (moq-lite §Subscribe).

use super::is_lite01;
use super::message::{framed, put_text, read_text, Message};
use crate::blob::Blob;
use crate::codec::{put_u8, put_varint, read_u8, Encoding};
use crate::error::{DecodeError, EncodeError};
use crate::varint;
use crate::version::Version;
use bytes::{BufMut, Bytes};
use serde::{Deserialize, Serialize};

/// SUBSCRIBE: `Subscribe ID (i)`, `Broadcast Path (s)`, `Track Name (s)`,
/// `Subscriber Priority (8)`. The priority is one byte as moq-dev sends it; the texts say `(i)`,
/// which differs from 64 up (DISAGREEMENTS L6). Higher priorities are sent first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    /// Chosen by the subscriber, never reused in the session; GROUP streams name it.
    pub subscribe_id: u64,
    /// The broadcast path (UTF-8).
    pub broadcast: Blob,
    /// The track name (UTF-8).
    pub track: Blob,
    /// Subscriber priority, higher first.
    pub priority: u8,
}

impl Message for Subscribe {
    const NAME: &'static str = "SUBSCRIBE";
    const MAX_LENGTH: usize = super::message::MAX_PATH_MESSAGE;

    fn decode_body(b: &mut Bytes, _: Version) -> Result<Self, DecodeError> {
        Ok(Subscribe {
            subscribe_id: varint::read(b)?,
            broadcast: read_text(b, "SUBSCRIBE broadcast path")?,
            track: read_text(b, "SUBSCRIBE track name")?,
            priority: read_u8(b)?,
        })
    }

    fn encode_body<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(b, self.subscribe_id, enc)?;
        put_text(b, &self.broadcast, "SUBSCRIBE broadcast path", enc)?;
        put_text(b, &self.track, "SUBSCRIBE track name", enc)?;
        put_u8(b, self.priority)
    }
}

/// SUBSCRIBE_UPDATE: `Subscriber Priority (8)`. Defined by both texts (as `(i)`); moq-dev has no
/// lite-01/02 SUBSCRIBE_UPDATE and resets the subscription if any byte follows SUBSCRIBE, so a
/// session must not send it to moq-dev peers (DISAGREEMENTS L8). One byte, like SUBSCRIBE's
/// priority and moq-dev's lite-03+ SUBSCRIBE_UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeUpdate {
    /// The new subscriber priority.
    pub priority: u8,
}

impl Message for SubscribeUpdate {
    const NAME: &'static str = "SUBSCRIBE_UPDATE";
    const MAX_LENGTH: usize = 1;
    const FIXED_FIELDS: bool = true;

    fn decode_body(b: &mut Bytes, _: Version) -> Result<Self, DecodeError> {
        Ok(SubscribeUpdate {
            priority: read_u8(b)?,
        })
    }

    fn encode_body<B: BufMut>(&self, b: &mut B, _: Encoding) -> Result<(), EncodeError> {
        put_u8(b, self.priority)
    }
}

/// SUBSCRIBE_OK: empty in lite-02 (`Message Length = 0`, the byte `00`); in lite-01 one byte of
/// `Publisher Priority` (the lite-01 text says `(i)`; moq-dev writes a byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeOk {
    /// lite-01: the publisher priority; lite-02: `None` (not on the wire).
    pub priority: Option<u8>,
}

impl SubscribeOk {
    /// The SUBSCRIBE_OK for `v`: lite-01 carries `priority`, lite-02 nothing.
    pub fn for_version(v: Version, priority: u8) -> Self {
        SubscribeOk {
            priority: is_lite01(v).then_some(priority),
        }
    }
}

impl Message for SubscribeOk {
    const NAME: &'static str = "SUBSCRIBE_OK";
    const MAX_LENGTH: usize = 1;
    const FIXED_FIELDS: bool = true;

    fn decode_body(b: &mut Bytes, v: Version) -> Result<Self, DecodeError> {
        let priority = if is_lite01(v) {
            Some(read_u8(b)?)
        } else {
            None
        };
        Ok(SubscribeOk { priority })
    }

    fn encode_body<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        match (is_lite01(enc.version), self.priority) {
            (true, Some(p)) => put_u8(b, p),
            (false, None) => Ok(()),
            (true, None) => Err(EncodeError::Inconsistent(
                "a lite-01 SUBSCRIBE_OK carries a publisher priority".into(),
            )),
            (false, Some(_)) => Err(EncodeError::Inconsistent(
                "a lite-02 SUBSCRIBE_OK is empty: no publisher priority".into(),
            )),
        }
    }
}

framed!(Subscribe, SubscribeUpdate, SubscribeOk);
