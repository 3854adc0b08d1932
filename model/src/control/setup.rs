//! CLIENT_SETUP, SERVER_SETUP (§9.3), GOAWAY (§9.4), MAX_REQUEST_ID (§9.5), REQUESTS_BLOCKED (§9.6).

use super::{MessageType, Payload};
use crate::blob::Blob;
use crate::codec::{
    bounded_capacity, put_len_bytes, put_varint, read_count, read_len_bytes, Encoding,
};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::limits::MAX_GOAWAY_URI;
use crate::params::SetupParameters;
use crate::varint;
use crate::version::Version;
use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};

/// CLIENT_SETUP: the versions the client offers, in preference order, and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSetup {
    /// Supported versions, most preferred first.
    pub versions: Vec<Version>,
    /// Setup parameters.
    pub parameters: SetupParameters,
}

/// SERVER_SETUP: the version the server selected and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSetup {
    /// The selected version.
    pub version: Version,
    /// Setup parameters.
    pub parameters: SetupParameters,
}

fn decode_version<B: Buf>(b: &mut B) -> Result<Version, DecodeError> {
    let v = varint::read(b)?;
    u32::try_from(v).map(Version).map_err(|_| {
        DecodeError::invalid(
            Rule::VersionOutOfRange,
            format!("version 0x{v:x} does not fit in 32 bits"),
        )
    })
}

impl Payload for ClientSetup {
    fn decode_payload<B: Buf>(b: &mut B, ty: MessageType, _: Version) -> Result<Self, DecodeError> {
        let n = read_count(b)?;
        let mut versions = Vec::with_capacity(bounded_capacity(b, n));
        for _ in 0..n {
            versions.push(decode_version(b)?);
        }
        Ok(ClientSetup {
            versions,
            parameters: SetupParameters::decode(b, ty)?,
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        put_varint(b, self.versions.len() as u64, enc)?;
        for v in &self.versions {
            put_varint(b, u64::from(v.0), enc)?;
        }
        self.parameters.encode(b, enc)
    }
}

impl Payload for ServerSetup {
    fn decode_payload<B: Buf>(b: &mut B, ty: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(ServerSetup {
            version: decode_version(b)?,
            parameters: SetupParameters::decode(b, ty)?,
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        put_varint(b, u64::from(self.version.0), enc)?;
        self.parameters.encode(b, enc)
    }
}

/// GOAWAY: the sender will close soon; a client should reconnect to the new URI (or the same one
/// when it is empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goaway {
    /// Where to reconnect; empty = the current URI.
    pub new_session_uri: Blob,
}

impl Payload for Goaway {
    fn decode_payload<B: Buf>(b: &mut B, _: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(Goaway {
            new_session_uri: Blob(read_len_bytes(
                b,
                MAX_GOAWAY_URI,
                Rule::GoawayUriTooLong,
                "GOAWAY New Session URI",
            )?),
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        put_len_bytes(
            b,
            &self.new_session_uri,
            MAX_GOAWAY_URI,
            Rule::GoawayUriTooLong,
            enc,
        )
    }
}

/// MAX_REQUEST_ID: the peer may now use request IDs below this value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxRequestId {
    /// The new Maximum Request ID plus 1, as on the wire.
    pub max_request_id: u64,
}

/// REQUESTS_BLOCKED: the sender wants to open a request but the peer's limit stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestsBlocked {
    /// The Maximum Request ID the sender is blocked on.
    pub max_request_id: u64,
}

macro_rules! single_varint {
    ($ty:ident) => {
        impl Payload for $ty {
            fn decode_payload<B: Buf>(
                b: &mut B,
                _: MessageType,
                _: Version,
            ) -> Result<Self, DecodeError> {
                Ok($ty {
                    max_request_id: varint::read(b)?,
                })
            }

            fn encode_payload<B: BufMut>(
                &self,
                b: &mut B,
                _: MessageType,
                enc: Encoding,
            ) -> Result<(), EncodeError> {
                put_varint(b, self.max_request_id, enc)
            }
        }
    };
}

single_varint!(MaxRequestId);
single_varint!(RequestsBlocked);
