//! FETCH (§9.16) and FETCH_OK (§9.17); FETCH_ERROR and FETCH_CANCEL use the shared layouts.

use super::subscribe::put_bool;
use super::{MessageType, Payload};
use crate::blob::Blob;
use crate::codec::{put_u8, put_varint, read_bool, read_u8, Encoding};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::params::VersionParameters;
use crate::primitives::{
    decode_track_name, encode_track_name, GroupOrder, Location, TrackNamespace,
};
use crate::varint;
use crate::version::Version;
use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};

/// The end of a fetch range as the draft means it: the wire carries `{group, object + 1}`, and
/// `{group, 0}` for the whole group (§9.16.1, §9.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FetchEnd {
    /// Last group of the range.
    pub group: u64,
    /// Last object (inclusive); `None` = the whole group.
    pub object: Option<u64>,
}

impl FetchEnd {
    /// Reads the "plus 1" End Location.
    pub fn decode<B: Buf>(b: &mut B) -> Result<Self, DecodeError> {
        let wire = Location::decode(b)?;
        Ok(FetchEnd {
            group: wire.group,
            object: wire.object.checked_sub(1),
        })
    }

    /// Writes the "plus 1" End Location.
    pub fn encode<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        let object = match self.object {
            None => 0,
            Some(o) => o.checked_add(1).ok_or(EncodeError::VarintRange(o))?,
        };
        Location::new(self.group, object).encode(b, enc)
    }

    /// Whether `loc` is inside a range ending here.
    pub fn covers(&self, loc: Location) -> bool {
        loc.group < self.group
            || (loc.group == self.group && self.object.is_none_or(|o| loc.object <= o))
    }
}

/// What a FETCH asks for (§9.16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FetchKind {
    /// 0x1: a range of a named track.
    Standalone {
        /// Track namespace.
        namespace: TrackNamespace,
        /// Track name.
        name: Blob,
        /// First location.
        start: Location,
        /// End of the range.
        end: FetchEnd,
    },
    /// 0x2: the groups just before a subscription's Largest Location.
    RelativeJoining {
        /// The subscription joined.
        joining_request_id: u64,
        /// How many groups back from the largest group to start.
        joining_start: u64,
    },
    /// 0x3: from an absolute group up to a subscription's Largest Location.
    AbsoluteJoining {
        /// The subscription joined.
        joining_request_id: u64,
        /// The first group.
        joining_start: u64,
    },
}

impl FetchKind {
    /// The wire Fetch Type.
    pub fn code(&self) -> u64 {
        match self {
            FetchKind::Standalone { .. } => 0x1,
            FetchKind::RelativeJoining { .. } => 0x2,
            FetchKind::AbsoluteJoining { .. } => 0x3,
        }
    }
}

/// FETCH: a request for already-published objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// This request's ID.
    pub request_id: u64,
    /// Lower is more important.
    pub subscriber_priority: u8,
    /// Requested group order (Original = the publisher's).
    pub group_order: GroupOrder,
    /// What is fetched.
    pub fetch: FetchKind,
    /// Parameters.
    pub parameters: VersionParameters,
}

impl Payload for Fetch {
    fn decode_payload<B: Buf>(b: &mut B, ty: MessageType, _: Version) -> Result<Self, DecodeError> {
        let request_id = varint::read(b)?;
        let subscriber_priority = read_u8(b)?;
        let group_order = GroupOrder::decode(b, true)?;
        let fetch = match varint::read(b)? {
            0x1 => {
                let namespace = TrackNamespace::decode(b, 1)?;
                let name = decode_track_name(b, &namespace)?;
                FetchKind::Standalone {
                    namespace,
                    name,
                    start: Location::decode(b)?,
                    end: FetchEnd::decode(b)?,
                }
            }
            0x2 => FetchKind::RelativeJoining {
                joining_request_id: varint::read(b)?,
                joining_start: varint::read(b)?,
            },
            0x3 => FetchKind::AbsoluteJoining {
                joining_request_id: varint::read(b)?,
                joining_start: varint::read(b)?,
            },
            other => {
                return Err(DecodeError::invalid(
                    Rule::InvalidFetchType,
                    format!("fetch type 0x{other:x} is not defined"),
                ))
            }
        };
        Ok(Fetch {
            request_id,
            subscriber_priority,
            group_order,
            fetch,
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
        put_u8(b, self.subscriber_priority)?;
        self.group_order.encode(b, true)?;
        put_varint(b, self.fetch.code(), enc)?;
        match &self.fetch {
            FetchKind::Standalone {
                namespace,
                name,
                start,
                end,
            } => {
                namespace.encode(b, 1, enc)?;
                encode_track_name(b, namespace, name, enc)?;
                start.encode(b, enc)?;
                end.encode(b, enc)?;
            }
            FetchKind::RelativeJoining {
                joining_request_id,
                joining_start,
            }
            | FetchKind::AbsoluteJoining {
                joining_request_id,
                joining_start,
            } => {
                put_varint(b, *joining_request_id, enc)?;
                put_varint(b, *joining_start, enc)?;
            }
        }
        self.parameters.encode(b, enc)
    }
}

/// FETCH_OK: the fetch was accepted; its objects arrive on a fetch stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchOk {
    /// The FETCH answered.
    pub request_id: u64,
    /// Delivery order (Ascending or Descending).
    pub group_order: GroupOrder,
    /// Whether the range ends with the track's final object.
    pub end_of_track: bool,
    /// The end of what the response covers, in the same "plus 1" form as FETCH.
    pub end_location: FetchEnd,
    /// Parameters.
    pub parameters: VersionParameters,
}

impl Payload for FetchOk {
    fn decode_payload<B: Buf>(b: &mut B, ty: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(FetchOk {
            request_id: varint::read(b)?,
            group_order: GroupOrder::decode(b, false)?,
            end_of_track: read_bool(b, Rule::InvalidEndOfTrack, "End Of Track")?,
            end_location: FetchEnd::decode(b)?,
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
        self.group_order.encode(b, false)?;
        put_bool(b, self.end_of_track)?;
        self.end_location.encode(b, enc)?;
        self.parameters.encode(b, enc)
    }
}
