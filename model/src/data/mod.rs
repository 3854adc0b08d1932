//! Data streams and datagrams (§10): object status, extension headers, subgroup and fetch
//! streams, datagrams and an incremental stream reader.

mod datagram;
mod extensions;
mod fetch;
mod reader;
mod subgroup;

pub use datagram::*;
pub use extensions::*;
pub use fetch::*;
pub use reader::*;
pub use subgroup::*;

use crate::blob::Blob;
use crate::codec::{need, put_varint, Encoding};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::varint;
use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};

/// The wire values of [`ResetCode`](crate::codes::ResetCode) (§13.1.8), for the stream APIs
/// that take any application error code (moq-lite's too).
pub mod reset_code {
    use crate::codes::ResetCode;
    /// INTERNAL_ERROR: an implementation specific error.
    pub const INTERNAL_ERROR: u64 = ResetCode::InternalError.code();
    /// CANCELLED: UNSUBSCRIBE, FETCH_CANCEL, STOP_SENDING, or the publisher ended the subscription.
    pub const CANCELLED: u64 = ResetCode::Cancelled.code();
    /// DELIVERY_TIMEOUT: the delivery timeout was exceeded.
    pub const DELIVERY_TIMEOUT: u64 = ResetCode::DeliveryTimeout.code();
    /// SESSION_CLOSED: the publisher session is being closed.
    pub const SESSION_CLOSED: u64 = ResetCode::SessionClosed.code();
}

/// Stream type of a FETCH_HEADER (§10.4.4).
pub const FETCH_HEADER_TYPE: u64 = 0x05;

/// Why an object carries no payload (§10.2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ObjectStatus {
    /// 0x0: a normal object.
    #[default]
    Normal,
    /// 0x1: the object does not exist and never will.
    DoesNotExist,
    /// 0x3: the group ended before this object ID.
    EndOfGroup,
    /// 0x4: the track ended before this location.
    EndOfTrack,
}

impl ObjectStatus {
    /// The wire value.
    pub fn code(self) -> u64 {
        match self {
            ObjectStatus::Normal => 0x0,
            ObjectStatus::DoesNotExist => 0x1,
            ObjectStatus::EndOfGroup => 0x3,
            ObjectStatus::EndOfTrack => 0x4,
        }
    }

    /// The status for a wire value; other values break [`Rule::InvalidObjectStatus`].
    pub fn from_code(code: u64) -> Result<Self, DecodeError> {
        match code {
            0x0 => Ok(ObjectStatus::Normal),
            0x1 => Ok(ObjectStatus::DoesNotExist),
            0x3 => Ok(ObjectStatus::EndOfGroup),
            0x4 => Ok(ObjectStatus::EndOfTrack),
            other => Err(DecodeError::invalid(
                Rule::InvalidObjectStatus,
                format!("object status 0x{other:x} is not defined"),
            )),
        }
    }

    /// Reads a status varint.
    pub fn decode<B: Buf>(b: &mut B) -> Result<Self, DecodeError> {
        ObjectStatus::from_code(varint::read(b)?)
    }
}

/// Reads Object Payload Length and, when it is 0, the Object Status (subgroup and fetch objects).
/// Returns the status and the payload length still to read.
pub(crate) fn decode_length_status<B: Buf>(b: &mut B) -> Result<(ObjectStatus, u64), DecodeError> {
    match varint::read(b)? {
        0 => Ok((ObjectStatus::decode(b)?, 0)),
        len => Ok((ObjectStatus::Normal, len)),
    }
}

/// Reads `len` payload bytes, zero-copy from `Bytes`.
pub(crate) fn read_payload<B: Buf>(b: &mut B, len: u64) -> Result<Blob, DecodeError> {
    let len = usize::try_from(len).map_err(|_| DecodeError::Short)?;
    need(b, len)?;
    Ok(Blob(b.copy_to_bytes(len)))
}

/// Writes Object Payload Length and, when there is no payload, the status; the payload bytes
/// themselves are left to the caller.
pub(crate) fn encode_length_status<B: BufMut>(
    b: &mut B,
    status: ObjectStatus,
    payload: &Blob,
    enc: Encoding,
) -> Result<(), EncodeError> {
    if payload.is_empty() {
        put_varint(b, 0, enc)?;
        put_varint(b, status.code(), enc)
    } else if status != ObjectStatus::Normal {
        Err(EncodeError::Inconsistent(format!(
            "an object with status {status:?} must have an empty payload"
        )))
    } else {
        put_varint(b, payload.len() as u64, enc)
    }
}

/// Checks that an Object Does Not Exist carries no extension headers (§10.2.1.2).
pub(crate) fn check_status_extensions(
    status: ObjectStatus,
    ext: &Extensions,
) -> Result<(), DecodeError> {
    if status == ObjectStatus::DoesNotExist && !ext.is_empty() {
        return Err(DecodeError::invalid(
            Rule::ExtensionsOnNonexistentObject,
            "an Object Does Not Exist carries extension headers",
        ));
    }
    Ok(())
}

/// The header that opens a unidirectional data stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamHeader {
    /// SUBGROUP_HEADER (0x10-0x1D).
    Subgroup(SubgroupHeader),
    /// FETCH_HEADER (0x05).
    Fetch(FetchHeader),
}

impl StreamHeader {
    /// Reads the stream type and the header it names.
    pub fn decode<B: Buf>(b: &mut B) -> Result<Self, DecodeError> {
        let ty = varint::read(b)?;
        if ty == FETCH_HEADER_TYPE {
            return Ok(StreamHeader::Fetch(FetchHeader::decode_after_type(b)?));
        }
        match SubgroupType::from_code(ty) {
            Some(t) => Ok(StreamHeader::Subgroup(SubgroupHeader::decode_after_type(
                b, t,
            )?)),
            None => Err(DecodeError::invalid(
                Rule::UnknownStreamType,
                format!("data stream type 0x{ty:x} is not defined"),
            )),
        }
    }
}
