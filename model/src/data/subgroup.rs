//! SUBGROUP_HEADER and the objects of a subgroup stream (§10.4.2).

use super::{
    check_status_extensions, decode_length_status, encode_length_status, read_payload, Extensions,
    ObjectStatus,
};
use crate::blob::Blob;
use crate::codec::{put_slice, put_u8, put_varint, read_u8, Encoding};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::limits::MAX_VARINT;
use crate::varint;
use bytes::{Buf, BufMut, Bytes};
use serde::{Deserialize, Serialize};

/// How a subgroup stream names its Subgroup ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubgroupIdMode {
    /// No field; the Subgroup ID is 0 (types 0x10, 0x11, 0x18, 0x19).
    Zero,
    /// No field; the Subgroup ID is the first object's ID (types 0x12, 0x13, 0x1A, 0x1B).
    FirstObjectId,
    /// An explicit Subgroup ID field (types 0x14, 0x15, 0x1C, 0x1D).
    Explicit(u64),
}

/// The layout bits of a SUBGROUP_HEADER type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubgroupType {
    /// The type code.
    pub code: u64,
}

impl SubgroupType {
    /// The type for a wire code: 0x10-0x15 or 0x18-0x1D.
    pub fn from_code(code: u64) -> Option<Self> {
        let valid = (0x10..=0x1D).contains(&code) && code & 0x06 != 0x06;
        valid.then_some(SubgroupType { code })
    }

    /// Objects carry an Extension Headers Length.
    pub fn extensions(self) -> bool {
        self.code & 0x01 != 0
    }

    /// Subgroup ID is the first object's ID.
    pub fn first_object_id(self) -> bool {
        self.code & 0x02 != 0
    }

    /// A Subgroup ID field is present.
    pub fn explicit_subgroup(self) -> bool {
        self.code & 0x04 != 0
    }

    /// The last object before FIN ends the group.
    pub fn end_of_group(self) -> bool {
        self.code & 0x08 != 0
    }
}

/// SUBGROUP_HEADER: opens a stream carrying one subgroup of one group of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubgroupHeader {
    /// The track, by the alias from SUBSCRIBE_OK or PUBLISH.
    pub track_alias: u64,
    /// The group.
    pub group_id: u64,
    /// How the Subgroup ID is given.
    pub subgroup_id: SubgroupIdMode,
    /// Publisher priority (lower is more important).
    pub publisher_priority: u8,
    /// Whether every object carries an Extension Headers Length.
    pub extensions_present: bool,
    /// Whether the last object before FIN is the last of the group.
    pub end_of_group: bool,
}

impl SubgroupHeader {
    /// The stream type code this header is sent with.
    pub fn type_code(&self) -> u64 {
        let mut t = 0x10;
        if self.extensions_present {
            t |= 0x01;
        }
        match self.subgroup_id {
            SubgroupIdMode::Zero => {}
            SubgroupIdMode::FirstObjectId => t |= 0x02,
            SubgroupIdMode::Explicit(_) => t |= 0x04,
        }
        if self.end_of_group {
            t |= 0x08;
        }
        t
    }

    /// The Subgroup ID, given the first object's ID when the mode needs it.
    pub fn subgroup_id(&self, first_object_id: Option<u64>) -> Option<u64> {
        match self.subgroup_id {
            SubgroupIdMode::Zero => Some(0),
            SubgroupIdMode::FirstObjectId => first_object_id,
            SubgroupIdMode::Explicit(id) => Some(id),
        }
    }

    /// Reads the header after its type code.
    pub fn decode_after_type<B: Buf>(b: &mut B, t: SubgroupType) -> Result<Self, DecodeError> {
        let track_alias = varint::read(b)?;
        let group_id = varint::read(b)?;
        let subgroup_id = if t.explicit_subgroup() {
            SubgroupIdMode::Explicit(varint::read(b)?)
        } else if t.first_object_id() {
            SubgroupIdMode::FirstObjectId
        } else {
            SubgroupIdMode::Zero
        };
        Ok(SubgroupHeader {
            track_alias,
            group_id,
            subgroup_id,
            publisher_priority: read_u8(b)?,
            extensions_present: t.extensions(),
            end_of_group: t.end_of_group(),
        })
    }

    /// Reads the type code and header.
    pub fn decode<B: Buf>(b: &mut B) -> Result<Self, DecodeError> {
        let code = varint::read(b)?;
        let t = SubgroupType::from_code(code).ok_or_else(|| {
            DecodeError::invalid(
                Rule::UnknownStreamType,
                format!("0x{code:x} is not a SUBGROUP_HEADER type"),
            )
        })?;
        SubgroupHeader::decode_after_type(b, t)
    }

    /// Writes the type code and header.
    pub fn encode<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(b, self.type_code(), enc)?;
        put_varint(b, self.track_alias, enc)?;
        put_varint(b, self.group_id, enc)?;
        if let SubgroupIdMode::Explicit(id) = self.subgroup_id {
            put_varint(b, id, enc)?;
        }
        put_u8(b, self.publisher_priority)
    }
}

/// One object on a subgroup stream, with its absolute Object ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubgroupObject {
    /// Object ID (the delta already applied).
    pub object_id: u64,
    /// Extension headers (empty when the header type has none).
    pub extensions: Extensions,
    /// Status; anything but Normal has an empty payload.
    pub status: ObjectStatus,
    /// Payload, a slice of the received bytes.
    pub payload: Blob,
}

/// The fields of a subgroup object before its payload, used to wait for the whole object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubgroupObjectHead {
    /// Object ID (the delta already applied).
    pub object_id: u64,
    /// Extension headers.
    pub extensions: Extensions,
    /// Status.
    pub status: ObjectStatus,
    /// Payload bytes that follow.
    pub payload_len: u64,
}

impl SubgroupObjectHead {
    /// Reads the object's fields up to the payload; `prev` is the previous Object ID on the stream.
    pub fn decode<B: Buf>(
        b: &mut B,
        header: &SubgroupHeader,
        prev: Option<u64>,
    ) -> Result<Self, DecodeError> {
        let delta = varint::read(b)?;
        let object_id = match prev {
            None => delta,
            Some(p) => p
                .checked_add(delta)
                .and_then(|v| v.checked_add(1))
                .filter(|v| *v <= MAX_VARINT)
                .ok_or_else(|| {
                    DecodeError::invalid(
                        Rule::ObjectIdOverflow,
                        format!("previous Object ID {p} + delta {delta} + 1 exceeds 2^62-1"),
                    )
                })?,
        };
        let extensions = if header.extensions_present {
            Extensions::decode_block(b)?
        } else {
            Extensions::empty()
        };
        let (status, payload_len) = decode_length_status(b)?;
        check_status_extensions(status, &extensions)?;
        Ok(SubgroupObjectHead {
            object_id,
            extensions,
            status,
            payload_len,
        })
    }
}

impl SubgroupObject {
    /// Reads one object; `prev` is the previous Object ID on the stream.
    pub fn decode<B: Buf>(
        b: &mut B,
        header: &SubgroupHeader,
        prev: Option<u64>,
    ) -> Result<Self, DecodeError> {
        let head = SubgroupObjectHead::decode(b, header, prev)?;
        let payload = read_payload(b, head.payload_len)?;
        Ok(SubgroupObject::from_head(head, payload))
    }

    /// The object of a decoded head and its payload.
    pub fn from_head(head: SubgroupObjectHead, payload: Blob) -> Self {
        SubgroupObject {
            object_id: head.object_id,
            extensions: head.extensions,
            status: head.status,
            payload,
        }
    }

    /// Writes the object; `prev` is the previous Object ID written on the stream.
    pub fn encode<B: BufMut>(
        &self,
        b: &mut B,
        header: &SubgroupHeader,
        prev: Option<u64>,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        self.encode_head(b, header, prev, enc)?;
        put_slice(b, &self.payload)
    }

    /// Writes everything but the payload bytes, so the payload can be sent without a copy.
    pub fn encode_head<B: BufMut>(
        &self,
        b: &mut B,
        header: &SubgroupHeader,
        prev: Option<u64>,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        let delta = match prev {
            None => self.object_id,
            Some(p) if self.object_id > p => self.object_id - p - 1,
            Some(p) => {
                return Err(EncodeError::Inconsistent(format!(
                    "Object ID {} does not follow {p} on the stream",
                    self.object_id
                )))
            }
        };
        put_varint(b, delta, enc)?;
        if header.extensions_present {
            self.extensions.encode_block(b, enc)?;
        } else if !self.extensions.is_empty() {
            return Err(EncodeError::Inconsistent(
                "extensions on a subgroup stream whose type carries none".into(),
            ));
        }
        if self.status == ObjectStatus::DoesNotExist && !self.extensions.is_empty() {
            return Err(EncodeError::limit(
                Rule::ExtensionsOnNonexistentObject,
                "an Object Does Not Exist cannot carry extension headers",
            ));
        }
        encode_length_status(b, self.status, &self.payload, enc)
    }
}

/// A whole subgroup stream: its header and every object, as `moqlink decode` and vectors show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubgroupStream {
    /// The header.
    pub header: SubgroupHeader,
    /// The objects in stream order.
    pub objects: Vec<SubgroupObject>,
}

impl SubgroupStream {
    /// Reads a complete stream (the input ends at FIN).
    pub fn decode(b: &mut Bytes) -> Result<Self, DecodeError> {
        let header = SubgroupHeader::decode(b)?;
        let mut objects: Vec<SubgroupObject> = Vec::new();
        while b.has_remaining() {
            let prev = objects.last().map(|o| o.object_id);
            objects.push(SubgroupObject::decode(b, &header, prev)?);
        }
        Ok(SubgroupStream { header, objects })
    }

    /// Writes the header and every object.
    pub fn encode<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        self.header.encode(b, enc)?;
        let mut prev = None;
        for o in &self.objects {
            o.encode(b, &self.header, prev, enc)?;
            prev = Some(o.object_id);
        }
        Ok(())
    }
}
