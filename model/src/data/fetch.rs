//! FETCH_HEADER and the objects of a fetch stream (§10.4.4).

use super::{
    check_status_extensions, decode_length_status, encode_length_status, read_payload, Extensions,
    ObjectStatus, FETCH_HEADER_TYPE,
};
use crate::blob::Blob;
use crate::codec::{put_slice, put_u8, put_varint, read_u8, Encoding};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::primitives::Location;
use crate::varint;
use bytes::{Buf, BufMut, Bytes};
use serde::{Deserialize, Serialize};

/// FETCH_HEADER: opens the stream answering one FETCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FetchHeader {
    /// The FETCH answered.
    pub request_id: u64,
}

impl FetchHeader {
    /// Reads the header after its type code.
    pub fn decode_after_type<B: Buf>(b: &mut B) -> Result<Self, DecodeError> {
        Ok(FetchHeader {
            request_id: varint::read(b)?,
        })
    }

    /// Reads the type code (0x05) and header.
    pub fn decode<B: Buf>(b: &mut B) -> Result<Self, DecodeError> {
        let ty = varint::read(b)?;
        if ty != FETCH_HEADER_TYPE {
            return Err(DecodeError::invalid(
                Rule::UnknownStreamType,
                format!("0x{ty:x} is not FETCH_HEADER"),
            ));
        }
        FetchHeader::decode_after_type(b)
    }

    /// Writes the type code and header.
    pub fn encode<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(b, FETCH_HEADER_TYPE, enc)?;
        put_varint(b, self.request_id, enc)
    }
}

/// One object on a fetch stream: full coordinates, since a fetch spans groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchObject {
    /// Group ID.
    pub group_id: u64,
    /// Subgroup ID (the Object ID for objects that were datagrams).
    pub subgroup_id: u64,
    /// Object ID.
    pub object_id: u64,
    /// Publisher priority.
    pub publisher_priority: u8,
    /// Extension headers.
    pub extensions: Extensions,
    /// Status; anything but Normal has an empty payload.
    pub status: ObjectStatus,
    /// Payload, a slice of the received bytes.
    pub payload: Blob,
}

/// The fields of a fetch object before its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchObjectHead {
    /// Group ID.
    pub group_id: u64,
    /// Subgroup ID.
    pub subgroup_id: u64,
    /// Object ID.
    pub object_id: u64,
    /// Publisher priority.
    pub publisher_priority: u8,
    /// Extension headers.
    pub extensions: Extensions,
    /// Status.
    pub status: ObjectStatus,
    /// Payload bytes that follow.
    pub payload_len: u64,
}

impl FetchObjectHead {
    /// Reads the object's fields up to the payload.
    pub fn decode<B: Buf>(b: &mut B) -> Result<Self, DecodeError> {
        let group_id = varint::read(b)?;
        let subgroup_id = varint::read(b)?;
        let object_id = varint::read(b)?;
        let publisher_priority = read_u8(b)?;
        let extensions = Extensions::decode_block(b)?;
        let (status, payload_len) = decode_length_status(b)?;
        check_status_extensions(status, &extensions)?;
        Ok(FetchObjectHead {
            group_id,
            subgroup_id,
            object_id,
            publisher_priority,
            extensions,
            status,
            payload_len,
        })
    }
}

impl FetchObject {
    /// The object's location.
    pub fn location(&self) -> Location {
        Location::new(self.group_id, self.object_id)
    }

    /// Reads one object.
    pub fn decode<B: Buf>(b: &mut B) -> Result<Self, DecodeError> {
        let h = FetchObjectHead::decode(b)?;
        let payload = read_payload(b, h.payload_len)?;
        Ok(FetchObject::from_head(h, payload))
    }

    /// The object of a decoded head and its payload.
    pub fn from_head(h: FetchObjectHead, payload: Blob) -> Self {
        FetchObject {
            group_id: h.group_id,
            subgroup_id: h.subgroup_id,
            object_id: h.object_id,
            publisher_priority: h.publisher_priority,
            extensions: h.extensions,
            status: h.status,
            payload,
        }
    }

    /// Writes one object.
    pub fn encode<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        self.encode_head(b, enc)?;
        put_slice(b, &self.payload)
    }

    /// Writes everything but the payload bytes.
    pub fn encode_head<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(b, self.group_id, enc)?;
        put_varint(b, self.subgroup_id, enc)?;
        put_varint(b, self.object_id, enc)?;
        put_u8(b, self.publisher_priority)?;
        if self.status == ObjectStatus::DoesNotExist && !self.extensions.is_empty() {
            return Err(EncodeError::limit(
                Rule::ExtensionsOnNonexistentObject,
                "an Object Does Not Exist cannot carry extension headers",
            ));
        }
        self.extensions.encode_block(b, enc)?;
        encode_length_status(b, self.status, &self.payload, enc)
    }
}

/// A whole fetch stream: header and objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchStream {
    /// The header.
    pub header: FetchHeader,
    /// The objects in stream order.
    pub objects: Vec<FetchObject>,
}

impl FetchStream {
    /// Reads a complete stream (the input ends at FIN).
    pub fn decode(b: &mut Bytes) -> Result<Self, DecodeError> {
        let header = FetchHeader::decode(b)?;
        let mut objects = Vec::new();
        while b.has_remaining() {
            objects.push(FetchObject::decode(b)?);
        }
        Ok(FetchStream { header, objects })
    }

    /// Writes the header and every object.
    pub fn encode<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        self.header.encode(b, enc)?;
        for o in &self.objects {
            o.encode(b, enc)?;
        }
        Ok(())
    }
}
