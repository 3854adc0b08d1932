//! PUBLISH_NAMESPACE (§9.23), _DONE (§9.26), _CANCEL (§9.27), SUBSCRIBE_NAMESPACE (§9.28),
//! UNSUBSCRIBE_NAMESPACE (§9.31); the OK/ERROR replies use the shared layouts.

use super::{MessageType, Payload};
use crate::blob::Blob;
use crate::codec::{put_varint, Encoding};
use crate::error::{DecodeError, EncodeError};
use crate::params::VersionParameters;
use crate::primitives::{decode_reason, encode_reason, TrackNamespace};
use crate::varint;
use crate::version::Version;
use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};

/// Fewest fields accepted in a namespace prefix: the draft says 1, but moq-dev's relay sends an
/// empty prefix, so prefixes accept 0 (see testvectors/DISAGREEMENTS.md).
pub const MIN_PREFIX_FIELDS: usize = 0;

/// PUBLISH_NAMESPACE: the sender has tracks under this namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishNamespace {
    /// This request's ID.
    pub request_id: u64,
    /// The namespace.
    pub namespace: TrackNamespace,
    /// Parameters.
    pub parameters: VersionParameters,
}

impl Payload for PublishNamespace {
    fn decode_payload<B: Buf>(b: &mut B, ty: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(PublishNamespace {
            request_id: varint::read(b)?,
            namespace: TrackNamespace::decode(b, 1)?,
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
        self.parameters.encode(b, enc)
    }
}

/// PUBLISH_NAMESPACE_DONE: the publisher withdraws the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishNamespaceDone {
    /// The namespace.
    pub namespace: TrackNamespace,
}

impl Payload for PublishNamespaceDone {
    fn decode_payload<B: Buf>(b: &mut B, _: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(PublishNamespaceDone {
            namespace: TrackNamespace::decode(b, 1)?,
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        self.namespace.encode(b, 1, enc)
    }
}

/// PUBLISH_NAMESPACE_CANCEL: the receiver stops routing requests for the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishNamespaceCancel {
    /// The namespace.
    pub namespace: TrackNamespace,
    /// Why (PUBLISH_NAMESPACE_ERROR codes).
    pub error_code: u64,
    /// Why, for humans.
    pub reason: Blob,
}

impl Payload for PublishNamespaceCancel {
    fn decode_payload<B: Buf>(b: &mut B, _: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(PublishNamespaceCancel {
            namespace: TrackNamespace::decode(b, 1)?,
            error_code: varint::read(b)?,
            reason: decode_reason(b)?,
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        self.namespace.encode(b, 1, enc)?;
        put_varint(b, self.error_code, enc)?;
        encode_reason(b, &self.reason, enc)
    }
}

/// SUBSCRIBE_NAMESPACE: ask for current and future namespaces and tracks under a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeNamespace {
    /// This request's ID.
    pub request_id: u64,
    /// The prefix matched against namespaces.
    pub namespace_prefix: TrackNamespace,
    /// Parameters.
    pub parameters: VersionParameters,
}

impl Payload for SubscribeNamespace {
    fn decode_payload<B: Buf>(b: &mut B, ty: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(SubscribeNamespace {
            request_id: varint::read(b)?,
            namespace_prefix: TrackNamespace::decode(b, MIN_PREFIX_FIELDS)?,
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
        self.namespace_prefix.encode(b, MIN_PREFIX_FIELDS, enc)?;
        self.parameters.encode(b, enc)
    }
}

/// UNSUBSCRIBE_NAMESPACE: stop a namespace subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeNamespace {
    /// The prefix of the SUBSCRIBE_NAMESPACE being ended.
    pub namespace_prefix: TrackNamespace,
}

impl Payload for UnsubscribeNamespace {
    fn decode_payload<B: Buf>(b: &mut B, _: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(UnsubscribeNamespace {
            namespace_prefix: TrackNamespace::decode(b, MIN_PREFIX_FIELDS)?,
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        self.namespace_prefix.encode(b, MIN_PREFIX_FIELDS, enc)
    }
}
