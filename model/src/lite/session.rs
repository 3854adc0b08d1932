//! The session handshake: SESSION_CLIENT, SESSION_SERVER, SESSION_UPDATE (moq-lite §Session) and
//! the SessionCompat SETUP messages (moq-lite-02 §SessionCompat).

use super::message::{framed, put_version, read_version, Message};
use crate::blob::Blob;
use crate::codec::{
    bounded_capacity, put_len_bytes, put_slice, put_varint, read_count, read_exact, read_len_bytes,
    Encoding,
};
use crate::control::{ClientSetup, MessageType, Payload, ServerSetup};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::limits::MAX_CONTROL_PAYLOAD;
use crate::varint;
use crate::version::Version;
use bytes::{Buf, BufMut, Bytes};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// One extension: `Extension ID (i)`, `Extension Payload (b)` (varint length + bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Extension {
    /// The extension ID.
    pub id: u64,
    /// The payload, opaque to the codec.
    pub payload: Blob,
}

/// The extensions of SESSION_CLIENT / SESSION_SERVER, and the lite-encoded parameters of a
/// SessionCompat SERVER_SETUP: `Count (i)` then the pairs, in wire order. IDs are unique (moq-dev
/// rejects a repeated one; [`Rule::LiteDuplicateExtension`]). No extension is defined in lite-01
/// or lite-02, and moq-dev sends none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Extensions(pub Vec<Extension>);

impl Extensions {
    /// No extensions.
    pub fn new() -> Self {
        Extensions(Vec::new())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The payload of extension `id`.
    pub fn get(&self, id: u64) -> Option<&Blob> {
        self.0.iter().find(|e| e.id == id).map(|e| &e.payload)
    }

    /// Reads the count and the pairs.
    pub fn decode<B: Buf>(b: &mut B) -> Result<Self, DecodeError> {
        let n = read_count(b)?;
        let mut out = Vec::with_capacity(bounded_capacity(b, n));
        let mut seen = HashSet::new();
        for _ in 0..n {
            let id = varint::read(b)?;
            let payload = read_len_bytes(
                b,
                super::MAX_MESSAGE_LENGTH,
                Rule::LiteMessageLength,
                "extension payload",
            )?;
            if !seen.insert(id) {
                return Err(DecodeError::invalid(
                    Rule::LiteDuplicateExtension,
                    format!("extension ID 0x{id:x} appears twice"),
                ));
            }
            out.push(Extension {
                id,
                payload: Blob(payload),
            });
        }
        Ok(Extensions(out))
    }

    /// Writes the count and the pairs.
    pub fn encode<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        let mut seen = HashSet::new();
        if let Some(dup) = self.0.iter().find(|e| !seen.insert(e.id)) {
            return Err(EncodeError::limit(
                Rule::LiteDuplicateExtension,
                format!("extension ID 0x{:x} appears twice", dup.id),
            ));
        }
        put_varint(b, self.0.len() as u64, enc)?;
        for e in &self.0 {
            put_varint(b, e.id, enc)?;
            put_len_bytes(
                b,
                &e.payload,
                super::MAX_MESSAGE_LENGTH,
                Rule::LiteMessageTooLarge,
                enc,
            )?;
        }
        Ok(())
    }
}

/// SESSION_CLIENT: `Supported Versions Count (i)`, versions (i)…, extensions. Sent by the client
/// right after the Session stream type 0x0. Only moq-lite 0.13 servers (moq-relay 0.10.5) read it;
/// moq-dev clients use the SessionCompat stream instead (DISAGREEMENTS L4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClient {
    /// Supported versions, most preferred first.
    pub versions: Vec<Version>,
    /// Extensions.
    pub extensions: Extensions,
}

impl Message for SessionClient {
    const NAME: &'static str = "SESSION_CLIENT";
    const MAX_LENGTH: usize = super::message::MAX_SESSION_MESSAGE;

    fn decode_body(b: &mut Bytes, _: Version) -> Result<Self, DecodeError> {
        let n = read_count(b)?;
        let mut versions = Vec::with_capacity(bounded_capacity(b, n));
        for _ in 0..n {
            versions.push(read_version(b)?);
        }
        Ok(SessionClient {
            versions,
            extensions: Extensions::decode(b)?,
        })
    }

    fn encode_body<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(b, self.versions.len() as u64, enc)?;
        for v in &self.versions {
            put_version(b, *v, enc)?;
        }
        self.extensions.encode(b, enc)
    }
}

/// SESSION_SERVER: `Selected Version (i)`, extensions. The reply on a Session stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionServer {
    /// The selected version.
    pub version: Version,
    /// Extensions.
    pub extensions: Extensions,
}

impl Message for SessionServer {
    const NAME: &'static str = "SESSION_SERVER";
    const MAX_LENGTH: usize = super::message::MAX_SESSION_MESSAGE;

    fn decode_body(b: &mut Bytes, _: Version) -> Result<Self, DecodeError> {
        Ok(SessionServer {
            version: read_version(b)?,
            extensions: Extensions::decode(b)?,
        })
    }

    fn encode_body<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_version(b, self.version, enc)?;
        self.extensions.encode(b, enc)
    }
}

/// SESSION_UPDATE: `Session Bitrate (i)` in bits per second, 0 = unknown. Either endpoint, any
/// time after the handshake (moq-dev calls it `SessionInfo`; its servers read and ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUpdate {
    /// Estimated bitrate in bits per second; 0 when not available.
    pub bitrate: u64,
}

impl Message for SessionUpdate {
    const NAME: &'static str = "SESSION_UPDATE";
    const MAX_LENGTH: usize = super::message::MAX_SESSION_MESSAGE;

    fn decode_body(b: &mut Bytes, _: Version) -> Result<Self, DecodeError> {
        Ok(SessionUpdate {
            bitrate: varint::read(b)?,
        })
    }

    fn encode_body<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(b, self.bitrate, enc)
    }
}

framed!(SessionClient, SessionServer, SessionUpdate);

/// SERVER_SETUP as moq-dev sends it after choosing a lite version on a SessionCompat stream:
/// draft-14 framing (type 0x21, 16-bit length), `Selected Version (i)`, then the parameters in
/// the lite extension encoding (`Count (i)`, `ID (i)`, `Length (i)`, bytes) — not draft-14
/// key-value pairs (DISAGREEMENTS L5). moq-dev's relays send count 0:
/// `21 0009 c0000000ff0dad02 00`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatServerSetup {
    /// The selected (lite) version.
    pub version: Version,
    /// The lite-encoded parameters.
    pub extensions: Extensions,
}

/// The SERVER_SETUP on a SessionCompat stream: the parameters are lite-encoded when the
/// selected version is a lite one, draft-14 key-value pairs otherwise (then the stream is a
/// draft-14 control stream from here on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SetupReply {
    /// A lite version was selected.
    Lite(CompatServerSetup),
    /// draft-14 (or another non-lite version) was selected.
    Draft14(ServerSetup),
}

impl SetupReply {
    /// The selected version.
    pub fn version(&self) -> Version {
        match self {
            SetupReply::Lite(s) => s.version,
            SetupReply::Draft14(s) => s.version,
        }
    }
}

/// Reads `Length (16)` and the payload of a 16-bit-framed SETUP message with `f`.
fn decode_u16_framed<B: Buf, T>(
    buf: &mut B,
    what: &str,
    f: impl FnOnce(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    crate::codec::need(buf, 2)?;
    let len = usize::from(buf.get_u16());
    let mut payload = read_exact(buf, len)?;
    let v = f(&mut payload).map_err(|e| {
        e.short_as(
            Rule::ControlLengthMismatch,
            &format!("{what} payload of {len} bytes ends inside a field"),
        )
    })?;
    if payload.has_remaining() {
        return Err(DecodeError::invalid(
            Rule::ControlLengthMismatch,
            format!(
                "{} bytes left over in a {len}-byte {what} payload",
                payload.remaining()
            ),
        ));
    }
    Ok(v)
}

/// Writes `Length (16)` and `payload` (SETUP messages are small; they are built in a `Vec`).
fn put_u16_framed<B: BufMut>(buf: &mut B, what: &str, payload: &[u8]) -> Result<(), EncodeError> {
    let len = payload.len();
    if len > MAX_CONTROL_PAYLOAD {
        return Err(EncodeError::limit(
            Rule::ControlLengthMismatch,
            format!("{what} payload of {len} bytes does not fit the 16-bit Length"),
        ));
    }
    put_slice(buf, &(len as u16).to_be_bytes())?;
    put_slice(buf, payload)
}

/// Reads a SessionCompat CLIENT_SETUP after its type byte (the stream type 0x20): `Length (16)`
/// and the draft-14 CLIENT_SETUP payload, draft-14 parameters included — what moq-dev clients
/// send whichever versions they offer.
pub fn decode_compat_client_setup<B: Buf>(buf: &mut B) -> Result<ClientSetup, DecodeError> {
    decode_u16_framed(buf, "CLIENT_SETUP", |p| {
        ClientSetup::decode_payload(p, MessageType::ClientSetup, Version::DRAFT_14)
    })
}

/// Writes a SessionCompat CLIENT_SETUP without its type byte (write the stream type 0x20 first).
pub fn encode_compat_client_setup<B: BufMut>(
    setup: &ClientSetup,
    buf: &mut B,
    enc: Encoding,
) -> Result<(), EncodeError> {
    let mut payload = Vec::new();
    setup.encode_payload(&mut payload, MessageType::ClientSetup, enc)?;
    put_u16_framed(buf, "CLIENT_SETUP", &payload)
}

/// Reads a SessionCompat SERVER_SETUP, type byte included: `0x21`, `Length (16)`, the selected
/// version, then lite extensions (lite version) or draft-14 parameters (any other version).
/// Another type breaks [`Rule::LiteUnexpectedMessage`].
pub fn decode_setup_reply<B: Buf>(buf: &mut B) -> Result<SetupReply, DecodeError> {
    let ty = varint::read(buf)?;
    if ty != MessageType::ServerSetup.code() {
        return Err(DecodeError::invalid(
            Rule::LiteUnexpectedMessage,
            format!("message type 0x{ty:x} where SERVER_SETUP (0x21) answers CLIENT_SETUP"),
        ));
    }
    decode_u16_framed(buf, "SERVER_SETUP", |p| {
        let mut probe = p.clone();
        let version = read_version(&mut probe)?;
        if version.is_lite() {
            *p = probe;
            Ok(SetupReply::Lite(CompatServerSetup {
                version,
                extensions: Extensions::decode(p)?,
            }))
        } else {
            ServerSetup::decode_payload(p, MessageType::ServerSetup, Version::DRAFT_14)
                .map(SetupReply::Draft14)
        }
    })
}

/// Writes a SessionCompat SERVER_SETUP with its type byte 0x21 and 16-bit length. A lite reply
/// must select a lite version and a draft-14 reply a non-lite one.
pub fn encode_setup_reply<B: BufMut>(
    reply: &SetupReply,
    buf: &mut B,
    enc: Encoding,
) -> Result<(), EncodeError> {
    if reply.version().is_lite() != matches!(reply, SetupReply::Lite(_)) {
        return Err(EncodeError::Inconsistent(format!(
            "SERVER_SETUP selecting {} must carry {} parameters",
            reply.version().label(),
            if reply.version().is_lite() {
                "lite-encoded"
            } else {
                "draft-14"
            }
        )));
    }
    let mut payload = Vec::new();
    match reply {
        SetupReply::Lite(s) => {
            put_version(&mut payload, s.version, enc)?;
            s.extensions.encode(&mut payload, enc)?;
        }
        SetupReply::Draft14(s) => s.encode_payload(&mut payload, MessageType::ServerSetup, enc)?,
    }
    put_varint(buf, MessageType::ServerSetup.code(), enc)?;
    put_u16_framed(buf, "SERVER_SETUP", &payload)
}
