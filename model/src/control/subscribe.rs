//! SUBSCRIBE / TRACK_STATUS (§9.7, §9.20), SUBSCRIBE_OK / TRACK_STATUS_OK (§9.8, §9.21),
//! SUBSCRIBE_UPDATE (§9.10), PUBLISH_DONE (§9.12) and subscription filters.

use super::{MessageType, Payload};
use crate::blob::Blob;
use crate::codec::{put_u8, put_varint, read_bool, read_u8, Encoding};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::params::VersionParameters;
use crate::primitives::{
    decode_reason, decode_track_name, encode_reason, encode_track_name, GroupOrder, Location,
    TrackNamespace,
};
use crate::varint;
use crate::version::Version;
use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};

/// Which objects a subscription delivers (§9.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Filter {
    /// 0x1: from the start of the group after the Largest Object.
    NextGroupStart,
    /// 0x2: from the object after the Largest Object.
    LargestObject,
    /// 0x3: from `start`, open-ended.
    AbsoluteStart {
        /// First location delivered.
        start: Location,
    },
    /// 0x4: from `start` through the end of group `end_group`.
    AbsoluteRange {
        /// First location delivered.
        start: Location,
        /// Last group delivered (inclusive).
        end_group: u64,
    },
}

impl Filter {
    /// The wire Filter Type.
    pub fn code(&self) -> u64 {
        match self {
            Filter::NextGroupStart => 0x1,
            Filter::LargestObject => 0x2,
            Filter::AbsoluteStart { .. } => 0x3,
            Filter::AbsoluteRange { .. } => 0x4,
        }
    }

    /// Reads Filter Type and its Start Location / End Group.
    pub fn decode<B: Buf>(b: &mut B) -> Result<Self, DecodeError> {
        Ok(match varint::read(b)? {
            0x1 => Filter::NextGroupStart,
            0x2 => Filter::LargestObject,
            0x3 => Filter::AbsoluteStart {
                start: Location::decode(b)?,
            },
            0x4 => Filter::AbsoluteRange {
                start: Location::decode(b)?,
                end_group: varint::read(b)?,
            },
            other => {
                return Err(DecodeError::invalid(
                    Rule::InvalidFilterType,
                    format!("filter type 0x{other:x} is not defined"),
                ))
            }
        })
    }

    /// Writes Filter Type and its fields.
    pub fn encode<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(b, self.code(), enc)?;
        match self {
            Filter::NextGroupStart | Filter::LargestObject => Ok(()),
            Filter::AbsoluteStart { start } => start.encode(b, enc),
            Filter::AbsoluteRange { start, end_group } => {
                start.encode(b, enc)?;
                put_varint(b, *end_group, enc)
            }
        }
    }
}

/// Writes an 8-bit 0/1 flag.
pub(crate) fn put_bool<B: BufMut>(b: &mut B, v: bool) -> Result<(), EncodeError> {
    put_u8(b, u8::from(v))
}

/// SUBSCRIBE (and TRACK_STATUS, which has the same layout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    /// This request's ID.
    pub request_id: u64,
    /// Track namespace.
    pub namespace: TrackNamespace,
    /// Track name.
    pub name: Blob,
    /// Lower is more important.
    pub subscriber_priority: u8,
    /// Requested group order (Original = the publisher's).
    pub group_order: GroupOrder,
    /// Whether objects are forwarded.
    pub forward: bool,
    /// Which objects pass.
    pub filter: Filter,
    /// Parameters.
    pub parameters: VersionParameters,
}

/// TRACK_STATUS: laid out exactly as SUBSCRIBE (§9.20).
pub type TrackStatus = Subscribe;

impl Payload for Subscribe {
    fn decode_payload<B: Buf>(b: &mut B, ty: MessageType, _: Version) -> Result<Self, DecodeError> {
        let request_id = varint::read(b)?;
        let namespace = TrackNamespace::decode(b, 1)?;
        let name = decode_track_name(b, &namespace)?;
        Ok(Subscribe {
            request_id,
            namespace,
            name,
            subscriber_priority: read_u8(b)?,
            group_order: GroupOrder::decode(b, true)?,
            forward: read_bool(b, Rule::InvalidForward, "Forward")?,
            filter: Filter::decode(b)?,
            parameters: VersionParameters::decode(b, ty)?,
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        put_varint(b, self.request_id, enc)?;
        self.namespace.encode(b, 1, enc)?;
        encode_track_name(b, &self.namespace, &self.name, enc)?;
        put_u8(b, self.subscriber_priority)?;
        self.group_order.encode(b, true)?;
        put_bool(b, self.forward)?;
        self.filter.encode(b, enc)?;
        self.parameters.encode(b, enc)
    }
}

/// Reads Content Exists and, when 1, the Largest Location.
pub(crate) fn decode_largest<B: Buf>(b: &mut B) -> Result<Option<Location>, DecodeError> {
    if read_bool(b, Rule::InvalidContentExists, "Content Exists")? {
        Ok(Some(Location::decode(b)?))
    } else {
        Ok(None)
    }
}

/// Writes Content Exists and the Largest Location when present.
pub(crate) fn encode_largest<B: BufMut>(
    b: &mut B,
    largest: &Option<Location>,
    enc: Encoding,
) -> Result<(), EncodeError> {
    put_bool(b, largest.is_some())?;
    match largest {
        Some(l) => l.encode(b, enc),
        None => Ok(()),
    }
}

/// SUBSCRIBE_OK (and TRACK_STATUS_OK, which has the same layout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeOk {
    /// The SUBSCRIBE answered.
    pub request_id: u64,
    /// Alias the data streams and datagrams use for this track.
    pub track_alias: u64,
    /// Milliseconds until the subscription expires; 0 = never / unknown.
    pub expires: u64,
    /// Delivery order (Ascending or Descending).
    pub group_order: GroupOrder,
    /// Largest location published, when content exists.
    pub largest_location: Option<Location>,
    /// Parameters.
    pub parameters: VersionParameters,
}

/// TRACK_STATUS_OK: laid out exactly as SUBSCRIBE_OK (§9.21).
pub type TrackStatusOk = SubscribeOk;

impl Payload for SubscribeOk {
    fn decode_payload<B: Buf>(b: &mut B, ty: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(SubscribeOk {
            request_id: varint::read(b)?,
            track_alias: varint::read(b)?,
            expires: varint::read(b)?,
            group_order: GroupOrder::decode(b, false)?,
            largest_location: decode_largest(b)?,
            parameters: VersionParameters::decode(b, ty)?,
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        put_varint(b, self.request_id, enc)?;
        put_varint(b, self.track_alias, enc)?;
        put_varint(b, self.expires, enc)?;
        self.group_order.encode(b, false)?;
        encode_largest(b, &self.largest_location, enc)?;
        self.parameters.encode(b, enc)
    }
}

/// SUBSCRIBE_UPDATE: narrows an existing subscription (§9.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeUpdate {
    /// This request's ID.
    pub request_id: u64,
    /// The SUBSCRIBE being updated.
    pub subscription_request_id: u64,
    /// New start location.
    pub start: Location,
    /// New last group (inclusive); `None` = open-ended (wire 0; the wire carries group + 1).
    pub end_group: Option<u64>,
    /// Lower is more important.
    pub subscriber_priority: u8,
    /// Whether objects are forwarded.
    pub forward: bool,
    /// Parameters.
    pub parameters: VersionParameters,
}

impl Payload for SubscribeUpdate {
    fn decode_payload<B: Buf>(b: &mut B, ty: MessageType, _: Version) -> Result<Self, DecodeError> {
        let request_id = varint::read(b)?;
        let subscription_request_id = varint::read(b)?;
        let start = Location::decode(b)?;
        let end_group = match varint::read(b)? {
            0 => None,
            plus_one => Some(plus_one - 1),
        };
        if let Some(end) = end_group {
            if end < start.group {
                return Err(DecodeError::invalid(
                    Rule::SubscribeUpdateEndBeforeStart,
                    format!("End Group {end} is below Start group {}", start.group),
                ));
            }
        }
        Ok(SubscribeUpdate {
            request_id,
            subscription_request_id,
            start,
            end_group,
            subscriber_priority: read_u8(b)?,
            forward: read_bool(b, Rule::InvalidForward, "Forward")?,
            parameters: VersionParameters::decode(b, ty)?,
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        put_varint(b, self.request_id, enc)?;
        put_varint(b, self.subscription_request_id, enc)?;
        self.start.encode(b, enc)?;
        let wire_end = match self.end_group {
            None => 0,
            Some(g) => g.checked_add(1).ok_or(EncodeError::VarintRange(g))?,
        };
        put_varint(b, wire_end, enc)?;
        put_u8(b, self.subscriber_priority)?;
        put_bool(b, self.forward)?;
        self.parameters.encode(b, enc)
    }
}

/// PUBLISH_DONE: the publisher has finished the subscription (§9.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishDone {
    /// The subscription's request ID.
    pub request_id: u64,
    /// Why it ended (§13.1.3).
    pub status_code: u64,
    /// Data streams opened for the subscription (2^62-1 = unknown).
    pub stream_count: u64,
    /// Why, for humans.
    pub reason: Blob,
}

impl Payload for PublishDone {
    fn decode_payload<B: Buf>(b: &mut B, _: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(PublishDone {
            request_id: varint::read(b)?,
            status_code: varint::read(b)?,
            stream_count: varint::read(b)?,
            reason: decode_reason(b)?,
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        put_varint(b, self.request_id, enc)?;
        put_varint(b, self.status_code, enc)?;
        put_varint(b, self.stream_count, enc)?;
        encode_reason(b, &self.reason, enc)
    }
}
