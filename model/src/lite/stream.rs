//! Stream types (moq-lite §STREAM_TYPE) and which message each stream direction carries when.

use crate::codec::{put_varint, Encoding};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::varint;
use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};

/// The type that opens a bidirectional stream.
///
/// `STREAM_TYPE` is a varint in the texts' figure ("1-byte" in their prose) and in moq-dev's
/// code; every defined value is below 64, so both read the same byte. `SessionCompat` (0x20) is
/// defined by the lite-02 text only, but it is read before any version is negotiated and moq-dev
/// negotiates lite-01 over it too, so it is accepted whatever the version (DISAGREEMENTS L2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BiStreamType {
    /// 0x0: the session handshake (SESSION_CLIENT / SESSION_SERVER), opened by the client.
    Session,
    /// 0x1: broadcast discovery (ANNOUNCE_PLEASE / ANNOUNCE_INIT / ANNOUNCE), opened by a
    /// subscriber.
    Announce,
    /// 0x2: one track subscription (SUBSCRIBE / SUBSCRIBE_OK), opened by a subscriber.
    Subscribe,
    /// 0x20: CLIENT_SETUP / SERVER_SETUP as in draft-14, opened by the client. The byte is both
    /// the stream type and CLIENT_SETUP's Message Type: it is sent once (DISAGREEMENTS L3).
    SessionCompat,
}

impl BiStreamType {
    /// The wire value.
    pub fn code(self) -> u64 {
        match self {
            BiStreamType::Session => 0x0,
            BiStreamType::Announce => 0x1,
            BiStreamType::Subscribe => 0x2,
            BiStreamType::SessionCompat => 0x20,
        }
    }

    /// The stream type for a wire value.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            0x0 => Some(BiStreamType::Session),
            0x1 => Some(BiStreamType::Announce),
            0x2 => Some(BiStreamType::Subscribe),
            0x20 => Some(BiStreamType::SessionCompat),
            _ => None,
        }
    }

    /// Reads the stream type; an undefined value breaks [`Rule::LiteUnknownStreamType`].
    pub fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        let code = varint::read(buf)?;
        Self::from_code(code).ok_or_else(|| {
            DecodeError::invalid(
                Rule::LiteUnknownStreamType,
                format!("bidirectional stream type 0x{code:x} is not defined"),
            )
        })
    }

    /// Writes the stream type.
    pub fn encode<B: BufMut>(self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(buf, self.code(), enc)
    }
}

/// The type that opens a unidirectional stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UniStreamType {
    /// 0x0: one group of a subscription: GROUP then FRAMEs, opened by the publisher.
    Group,
}

impl UniStreamType {
    /// The wire value.
    pub fn code(self) -> u64 {
        0x0
    }

    /// Reads the stream type; anything but 0x0 breaks [`Rule::LiteUnknownStreamType`].
    pub fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        match varint::read(buf)? {
            0x0 => Ok(UniStreamType::Group),
            code => Err(DecodeError::invalid(
                Rule::LiteUnknownStreamType,
                format!("unidirectional stream type 0x{code:x} is not defined"),
            )),
        }
    }

    /// Writes the stream type.
    pub fn encode<B: BufMut>(self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(buf, self.code(), enc)
    }
}

/// Whose bytes on a bidirectional stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The opener's bytes: the stream type, then its messages.
    Request,
    /// The responder's bytes: its messages only.
    Response,
}

/// Every moq-lite message (plus the two SETUP messages of the SessionCompat stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageKind {
    /// SESSION_CLIENT.
    SessionClient,
    /// SESSION_SERVER.
    SessionServer,
    /// SESSION_UPDATE.
    SessionUpdate,
    /// CLIENT_SETUP on a SessionCompat stream.
    ClientSetup,
    /// SERVER_SETUP on a SessionCompat stream.
    ServerSetup,
    /// ANNOUNCE_PLEASE.
    AnnouncePlease,
    /// ANNOUNCE_INIT.
    AnnounceInit,
    /// ANNOUNCE.
    Announce,
    /// SUBSCRIBE.
    Subscribe,
    /// SUBSCRIBE_UPDATE.
    SubscribeUpdate,
    /// SUBSCRIBE_OK.
    SubscribeOk,
    /// GROUP.
    Group,
    /// FRAME.
    Frame,
}

impl MessageKind {
    /// The texts' name, e.g. `ANNOUNCE_PLEASE`.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::SessionClient => "SESSION_CLIENT",
            MessageKind::SessionServer => "SESSION_SERVER",
            MessageKind::SessionUpdate => "SESSION_UPDATE",
            MessageKind::ClientSetup => "CLIENT_SETUP",
            MessageKind::ServerSetup => "SERVER_SETUP",
            MessageKind::AnnouncePlease => "ANNOUNCE_PLEASE",
            MessageKind::AnnounceInit => "ANNOUNCE_INIT",
            MessageKind::Announce => "ANNOUNCE",
            MessageKind::Subscribe => "SUBSCRIBE",
            MessageKind::SubscribeUpdate => "SUBSCRIBE_UPDATE",
            MessageKind::SubscribeOk => "SUBSCRIBE_OK",
            MessageKind::Group => "GROUP",
            MessageKind::Frame => "FRAME",
        }
    }
}

/// The message a stream direction carries: the first one when `first`, else the ones that may
/// follow it. `None` = nothing may follow (ANNOUNCE_PLEASE and SUBSCRIBE_OK stand alone).
pub fn expected_message(ty: BiStreamType, dir: Direction, first: bool) -> Option<MessageKind> {
    use BiStreamType as T;
    use Direction::*;
    use MessageKind as K;
    Some(match (ty, dir, first) {
        (T::Session, Request, true) => K::SessionClient,
        (T::Session, Response, true) => K::SessionServer,
        (T::SessionCompat, Request, true) => K::ClientSetup,
        (T::SessionCompat, Response, true) => K::ServerSetup,
        (T::Session | T::SessionCompat, _, false) => K::SessionUpdate,
        (T::Announce, Request, true) => K::AnnouncePlease,
        (T::Announce, Request, false) => return None,
        (T::Announce, Response, true) => K::AnnounceInit,
        (T::Announce, Response, false) => K::Announce,
        (T::Subscribe, Request, true) => K::Subscribe,
        (T::Subscribe, Request, false) => K::SubscribeUpdate,
        (T::Subscribe, Response, true) => K::SubscribeOk,
        (T::Subscribe, Response, false) => return None,
    })
}
