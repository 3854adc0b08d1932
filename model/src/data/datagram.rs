//! OBJECT_DATAGRAM (types 0x00-0x07) and its status form (0x20-0x21) (§10.3.1).

use super::{check_status_extensions, Extensions, ObjectStatus};
use crate::blob::Blob;
use crate::codec::{put_slice, put_u8, put_varint, read_u8, Encoding};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::varint;
use bytes::{Buf, BufMut, Bytes};
use serde::{Deserialize, Serialize};

/// What follows a datagram's header: a payload, or a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatagramBody {
    /// Types 0x00-0x07: the rest of the datagram is the payload.
    Payload(Blob),
    /// Types 0x20-0x21: an Object Status and nothing else.
    Status(ObjectStatus),
}

/// One object carried in a QUIC datagram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDatagram {
    /// The track, by alias.
    pub track_alias: u64,
    /// Group ID.
    pub group_id: u64,
    /// Object ID (0 when the field is absent).
    pub object_id: u64,
    /// Whether the Object ID field is on the wire.
    pub object_id_present: bool,
    /// Publisher priority.
    pub publisher_priority: u8,
    /// Whether this is the last object of the group.
    pub end_of_group: bool,
    /// Extension headers; `None` when the type carries none.
    pub extensions: Option<Extensions>,
    /// Payload or status.
    #[serde(flatten)]
    pub body: DatagramBody,
}

impl ObjectDatagram {
    /// The datagram type code for these fields.
    pub fn type_code(&self) -> Result<u64, EncodeError> {
        let ext = u64::from(self.extensions.is_some());
        match self.body {
            DatagramBody::Status(_) => {
                if self.end_of_group || !self.object_id_present {
                    return Err(EncodeError::Inconsistent(
                        "status datagrams always carry an Object ID and no end-of-group bit".into(),
                    ));
                }
                Ok(0x20 | ext)
            }
            DatagramBody::Payload(_) => {
                let eog = if self.end_of_group { 0x02 } else { 0 };
                let no_id = if self.object_id_present { 0 } else { 0x04 };
                Ok(ext | eog | no_id)
            }
        }
    }

    /// The object's status.
    pub fn status(&self) -> ObjectStatus {
        match self.body {
            DatagramBody::Payload(_) => ObjectStatus::Normal,
            DatagramBody::Status(s) => s,
        }
    }

    /// Reads a whole datagram.
    pub fn decode(b: &mut Bytes) -> Result<Self, DecodeError> {
        let ty = varint::read(b)?;
        let (status_form, ext, eog, has_id) = match ty {
            0x00..=0x07 => (false, ty & 0x01 != 0, ty & 0x02 != 0, ty & 0x04 == 0),
            0x20 | 0x21 => (true, ty & 0x01 != 0, false, true),
            other => {
                return Err(DecodeError::invalid(
                    Rule::UnknownDatagramType,
                    format!("datagram type 0x{other:x} is not defined"),
                ))
            }
        };
        let track_alias = varint::read(b)?;
        let group_id = varint::read(b)?;
        let object_id = if has_id { varint::read(b)? } else { 0 };
        let publisher_priority = read_u8(b)?;
        let extensions = if ext {
            let e = Extensions::decode_block(b)?;
            if e.is_empty() {
                return Err(DecodeError::invalid(
                    Rule::EmptyDatagramExtensions,
                    "extensions present but Extension Headers Length is 0",
                ));
            }
            Some(e)
        } else {
            None
        };
        let body = if status_form {
            let status = ObjectStatus::decode(b)?;
            if let Some(e) = &extensions {
                check_status_extensions(status, e)?;
            }
            if b.has_remaining() {
                return Err(DecodeError::invalid(
                    Rule::TrailingBytes,
                    format!("{} bytes after the Object Status", b.remaining()),
                ));
            }
            DatagramBody::Status(status)
        } else {
            DatagramBody::Payload(Blob(b.split_off(0)))
        };
        Ok(ObjectDatagram {
            track_alias,
            group_id,
            object_id,
            object_id_present: has_id,
            publisher_priority,
            end_of_group: eog,
            extensions,
            body,
        })
    }

    /// Writes the datagram.
    pub fn encode<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        let ty = self.type_code()?;
        if !self.object_id_present && self.object_id != 0 {
            return Err(EncodeError::Inconsistent(
                "an Object ID other than 0 must be on the wire".into(),
            ));
        }
        put_varint(b, ty, enc)?;
        put_varint(b, self.track_alias, enc)?;
        put_varint(b, self.group_id, enc)?;
        if self.object_id_present {
            put_varint(b, self.object_id, enc)?;
        }
        put_u8(b, self.publisher_priority)?;
        if let Some(e) = &self.extensions {
            if e.is_empty() {
                return Err(EncodeError::limit(
                    Rule::EmptyDatagramExtensions,
                    "extensions present but empty",
                ));
            }
            if self.status() == ObjectStatus::DoesNotExist {
                return Err(EncodeError::limit(
                    Rule::ExtensionsOnNonexistentObject,
                    "an Object Does Not Exist cannot carry extension headers",
                ));
            }
            e.encode_block(b, enc)?;
        }
        match &self.body {
            DatagramBody::Payload(p) => put_slice(b, p),
            DatagramBody::Status(s) => put_varint(b, s.code(), enc),
        }
    }
}
