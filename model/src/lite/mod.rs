//! The moq-lite wire model: moq-lite-02 (`0xff0dad02`) and moq-lite-01 (`0xff0dad01`), chosen by
//! the same CLIENT_SETUP / SERVER_SETUP exchange as draft-14.
//!
//! The layouts follow what moq-dev's implementation puts on the wire (moq-lite 0.13.1 for
//! moq-relay / moq-clock 0.10.5, moq-net 0.3.18 for moq-relay 0.17.10), which differs from the
//! draft texts in a few places; `testvectors/DISAGREEMENTS.md` (entries L1…) lists each one.
//!
//! | stream (first bytes) | opener sends | responder sends |
//! |---|---|---|
//! | bidi `0x00` Session | SESSION_CLIENT, then SESSION_UPDATE… | SESSION_SERVER, then SESSION_UPDATE… |
//! | bidi `0x20` SessionCompat | CLIENT_SETUP (the `0x20` is also its type; 16-bit length; draft-14 parameters), then SESSION_UPDATE… | SERVER_SETUP (`0x21`, 16-bit length, lite extensions), then SESSION_UPDATE… |
//! | bidi `0x01` Announce | ANNOUNCE_PLEASE | ANNOUNCE_INIT, then ANNOUNCE… |
//! | bidi `0x02` Subscribe | SUBSCRIBE, then SUBSCRIBE_UPDATE… | SUBSCRIBE_OK |
//! | uni `0x00` Group | GROUP, then FRAME… | — |
//!
//! Every lite message is `Message Length (i)` + body; the body layouts are in the message types.
//! FRAME is `Size (i)` + payload. Only SUBSCRIBE_OK differs between the two versions (lite-01
//! carries a one-byte publisher priority). Codec functions take the negotiated [`Version`]:
//! [`Version::LITE_01`] selects the lite-01 layout, any other value the lite-02 one.
//!
//! ```
//! use moqlink_model::lite::{ControlReader, LiteMessage, BiStreamType};
//! use moqlink_model::Version;
//! // A moq-lite relay's announce stream: type 0x01, ANNOUNCE_PLEASE with an empty prefix.
//! let mut r = ControlReader::accept(Version::LITE_02);
//! r.push(bytes::Bytes::from_static(&[0x01, 0x01, 0x00]));
//! let Some(LiteMessage::AnnouncePlease(please)) = r.next_message().unwrap() else { panic!() };
//! assert!(please.prefix.is_empty());
//! assert_eq!(r.stream_type(), Some(BiStreamType::Announce));
//! ```

mod announce;
mod group;
pub mod json;
mod message;
mod path;
mod reader;
pub mod reset;
mod session;
mod stream;
mod subscribe;

pub use announce::{Announce, AnnounceInit, AnnouncePlease, AnnounceStatus};
pub use group::{Frame, Group};
pub use message::{
    decode_message, encode_message, Message, MAX_ANNOUNCE_INIT, MAX_MESSAGE_LENGTH,
    MAX_PATH_MESSAGE, MAX_SESSION_MESSAGE,
};
pub use path::{join_path, normalize_path, strip_path_prefix};
pub use reader::{ControlReader, GroupEvent, GroupReader};
pub use session::{
    decode_compat_client_setup, decode_setup_reply, encode_compat_client_setup, encode_setup_reply,
    CompatServerSetup, Extension, Extensions, SessionClient, SessionServer, SessionUpdate,
    SetupReply,
};
pub use stream::{expected_message, BiStreamType, Direction, MessageKind, UniStreamType};
pub use subscribe::{Subscribe, SubscribeOk, SubscribeUpdate};

use crate::codec::Encoding;
use crate::control::ClientSetup;
use crate::error::{DecodeError, EncodeError};
use crate::version::Version;
use bytes::{Buf, BufMut, Bytes};
use serde::{Deserialize, Serialize};

/// Whether `v` selects the lite-01 layout; every other version is read with the lite-02 one.
pub(crate) fn is_lite01(v: Version) -> bool {
    v == Version::LITE_01
}

/// Any message on a moq-lite stream. Lite messages carry no type on the wire: which one comes
/// next follows from the stream type, the direction and the position ([`MessageKind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LiteMessage {
    /// SESSION_CLIENT (Session stream, client → server).
    SessionClient(SessionClient),
    /// SESSION_SERVER (Session stream, server → client).
    SessionServer(SessionServer),
    /// SESSION_UPDATE (Session / SessionCompat stream, either direction, after the handshake).
    SessionUpdate(SessionUpdate),
    /// CLIENT_SETUP on a SessionCompat stream: draft-14 layout and parameters.
    ClientSetup(ClientSetup),
    /// SERVER_SETUP on a SessionCompat stream: lite extensions when a lite version was chosen.
    ServerSetup(SetupReply),
    /// ANNOUNCE_PLEASE (Announce stream, subscriber → publisher).
    AnnouncePlease(AnnouncePlease),
    /// ANNOUNCE_INIT (Announce stream, first publisher message).
    AnnounceInit(AnnounceInit),
    /// ANNOUNCE (Announce stream, publisher, after ANNOUNCE_INIT).
    Announce(Announce),
    /// SUBSCRIBE (Subscribe stream, subscriber → publisher).
    Subscribe(Subscribe),
    /// SUBSCRIBE_UPDATE (Subscribe stream, subscriber, after SUBSCRIBE).
    SubscribeUpdate(SubscribeUpdate),
    /// SUBSCRIBE_OK (Subscribe stream, publisher → subscriber).
    SubscribeOk(SubscribeOk),
    /// GROUP (Group stream header).
    Group(Group),
    /// FRAME (Group stream, after GROUP).
    Frame(Frame),
}

impl LiteMessage {
    /// Which message this is.
    pub fn kind(&self) -> MessageKind {
        match self {
            LiteMessage::SessionClient(_) => MessageKind::SessionClient,
            LiteMessage::SessionServer(_) => MessageKind::SessionServer,
            LiteMessage::SessionUpdate(_) => MessageKind::SessionUpdate,
            LiteMessage::ClientSetup(_) => MessageKind::ClientSetup,
            LiteMessage::ServerSetup(_) => MessageKind::ServerSetup,
            LiteMessage::AnnouncePlease(_) => MessageKind::AnnouncePlease,
            LiteMessage::AnnounceInit(_) => MessageKind::AnnounceInit,
            LiteMessage::Announce(_) => MessageKind::Announce,
            LiteMessage::Subscribe(_) => MessageKind::Subscribe,
            LiteMessage::SubscribeUpdate(_) => MessageKind::SubscribeUpdate,
            LiteMessage::SubscribeOk(_) => MessageKind::SubscribeOk,
            LiteMessage::Group(_) => MessageKind::Group,
            LiteMessage::Frame(_) => MessageKind::Frame,
        }
    }

    /// Reads one message of `kind` with its framing. CLIENT_SETUP is read from its 16-bit Length
    /// on (its type byte is the SessionCompat stream type, read before).
    pub fn decode_as<B: Buf>(
        kind: MessageKind,
        buf: &mut B,
        v: Version,
    ) -> Result<Self, DecodeError> {
        use crate::codec::Decode;
        Ok(match kind {
            MessageKind::SessionClient => {
                LiteMessage::SessionClient(SessionClient::decode(buf, v)?)
            }
            MessageKind::SessionServer => {
                LiteMessage::SessionServer(SessionServer::decode(buf, v)?)
            }
            MessageKind::SessionUpdate => {
                LiteMessage::SessionUpdate(SessionUpdate::decode(buf, v)?)
            }
            MessageKind::ClientSetup => LiteMessage::ClientSetup(decode_compat_client_setup(buf)?),
            MessageKind::ServerSetup => LiteMessage::ServerSetup(decode_setup_reply(buf)?),
            MessageKind::AnnouncePlease => {
                LiteMessage::AnnouncePlease(AnnouncePlease::decode(buf, v)?)
            }
            MessageKind::AnnounceInit => LiteMessage::AnnounceInit(AnnounceInit::decode(buf, v)?),
            MessageKind::Announce => LiteMessage::Announce(Announce::decode(buf, v)?),
            MessageKind::Subscribe => LiteMessage::Subscribe(Subscribe::decode(buf, v)?),
            MessageKind::SubscribeUpdate => {
                LiteMessage::SubscribeUpdate(SubscribeUpdate::decode(buf, v)?)
            }
            MessageKind::SubscribeOk => LiteMessage::SubscribeOk(SubscribeOk::decode(buf, v)?),
            MessageKind::Group => LiteMessage::Group(Group::decode(buf, v)?),
            MessageKind::Frame => LiteMessage::Frame(Frame::decode(buf, v)?),
        })
    }

    /// Writes the message with its framing (CLIENT_SETUP without its type byte, as
    /// [`LiteMessage::decode_as`] reads it).
    pub fn encode<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        use crate::codec::Encode;
        match self {
            LiteMessage::SessionClient(m) => m.encode(buf, enc),
            LiteMessage::SessionServer(m) => m.encode(buf, enc),
            LiteMessage::SessionUpdate(m) => m.encode(buf, enc),
            LiteMessage::ClientSetup(m) => encode_compat_client_setup(m, buf, enc),
            LiteMessage::ServerSetup(m) => encode_setup_reply(m, buf, enc),
            LiteMessage::AnnouncePlease(m) => m.encode(buf, enc),
            LiteMessage::AnnounceInit(m) => m.encode(buf, enc),
            LiteMessage::Announce(m) => m.encode(buf, enc),
            LiteMessage::Subscribe(m) => m.encode(buf, enc),
            LiteMessage::SubscribeUpdate(m) => m.encode(buf, enc),
            LiteMessage::SubscribeOk(m) => m.encode(buf, enc),
            LiteMessage::Group(m) => m.encode(buf, enc),
            LiteMessage::Frame(m) => m.encode(buf, enc),
        }
    }

    /// The frame payload, if this is a FRAME.
    pub fn payload(&self) -> Option<&Bytes> {
        match self {
            LiteMessage::Frame(f) => Some(f.payload.bytes()),
            _ => None,
        }
    }
}
