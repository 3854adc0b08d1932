//! PUBLISH (§9.13) and PUBLISH_OK (§9.14); PUBLISH_ERROR uses [`super::RequestError`].

use super::subscribe::{decode_largest, encode_largest, put_bool, Filter};
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

/// PUBLISH: a publisher starts a subscription on its own initiative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    /// This request's ID.
    pub request_id: u64,
    /// Track namespace.
    pub namespace: TrackNamespace,
    /// Track name.
    pub name: Blob,
    /// Alias the data streams and datagrams use for this track.
    pub track_alias: u64,
    /// Delivery order (Ascending or Descending).
    pub group_order: GroupOrder,
    /// Largest location published, when content exists.
    pub largest_location: Option<Location>,
    /// Whether objects flow before the subscriber sets Forward.
    pub forward: bool,
    /// Parameters.
    pub parameters: VersionParameters,
}

impl Payload for Publish {
    fn decode_payload<B: Buf>(b: &mut B, ty: MessageType, _: Version) -> Result<Self, DecodeError> {
        let request_id = varint::read(b)?;
        let namespace = TrackNamespace::decode(b, 1)?;
        let name = decode_track_name(b, &namespace)?;
        Ok(Publish {
            request_id,
            namespace,
            name,
            track_alias: varint::read(b)?,
            group_order: GroupOrder::decode(b, false)?,
            largest_location: decode_largest(b)?,
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
        self.namespace.encode(b, 1, enc)?;
        encode_track_name(b, &self.namespace, &self.name, enc)?;
        put_varint(b, self.track_alias, enc)?;
        self.group_order.encode(b, false)?;
        encode_largest(b, &self.largest_location, enc)?;
        put_bool(b, self.forward)?;
        self.parameters.encode(b, enc)
    }
}

/// PUBLISH_OK: the subscriber accepts a PUBLISH and sets the subscription's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishOk {
    /// The PUBLISH answered.
    pub request_id: u64,
    /// Whether objects are forwarded.
    pub forward: bool,
    /// Lower is more important.
    pub subscriber_priority: u8,
    /// Delivery order (Ascending or Descending).
    pub group_order: GroupOrder,
    /// Which objects pass.
    pub filter: Filter,
    /// Parameters.
    pub parameters: VersionParameters,
}

impl Payload for PublishOk {
    fn decode_payload<B: Buf>(b: &mut B, ty: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(PublishOk {
            request_id: varint::read(b)?,
            forward: read_bool(b, Rule::InvalidForward, "Forward")?,
            subscriber_priority: read_u8(b)?,
            group_order: GroupOrder::decode(b, false)?,
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
        put_bool(b, self.forward)?;
        put_u8(b, self.subscriber_priority)?;
        self.group_order.encode(b, false)?;
        self.filter.encode(b, enc)?;
        self.parameters.encode(b, enc)
    }
}
