//! Control messages (§9): the one registry of type codes, the `ControlMessage` enum and the
//! Type (i) + Length (16) framing.

mod fetch;
mod namespace;
mod publish;
mod reader;
mod setup;
mod subscribe;

pub use fetch::*;
pub use namespace::*;
pub use publish::*;
pub use reader::*;
pub use setup::*;
pub use subscribe::*;

use crate::codec::{put_slice, put_varint, read_exact, Encoding, Sizer};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::limits::MAX_CONTROL_PAYLOAD;
use crate::varint;
use crate::version::Version;
use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};

/// A control message payload (the part after Type and Length).
pub trait Payload: Sized {
    /// Reads the payload of a message of type `ty`.
    fn decode_payload<B: Buf>(
        buf: &mut B,
        ty: MessageType,
        v: Version,
    ) -> Result<Self, DecodeError>;
    /// Writes the payload of a message of type `ty`.
    fn encode_payload<B: BufMut>(
        &self,
        buf: &mut B,
        ty: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError>;
}

macro_rules! registry {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $ty:ty,
        $kind:ident, $sender:ident, $ok:expr, $err:expr; )*) => {
        /// Every draft-14 control message type (§9, Table 1).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum MessageType {
            $( $(#[$doc])* $variant, )*
        }

        impl MessageType {
            /// Every message type, in Table 1 order.
            pub const ALL: &'static [MessageType] = &[$(MessageType::$variant),*];

            /// The wire type code.
            pub fn code(self) -> u64 {
                match self { $(MessageType::$variant => $code,)* }
            }

            /// The draft's name, e.g. `SUBSCRIBE_OK`.
            pub fn name(self) -> &'static str {
                match self { $(MessageType::$variant => $name,)* }
            }

            /// The message type for a wire code.
            pub fn from_code(code: u64) -> Option<Self> {
                match code { $($code => Some(MessageType::$variant),)* _ => None }
            }

            /// What role the message plays (request, reply, follow-up...).
            pub const fn kind(self) -> MessageKind {
                match self { $(MessageType::$variant => MessageKind::$kind,)* }
            }

            /// Who may send it (§9.3-§9.31).
            pub const fn sender(self) -> Sender {
                match self { $(MessageType::$variant => Sender::$sender,)* }
            }

            /// For a request, the message that accepts it (e.g. SUBSCRIBE_OK for SUBSCRIBE).
            pub const fn ok_type(self) -> Option<MessageType> {
                #[allow(unused_imports)]
                use MessageType::*;
                match self { $(MessageType::$variant => $ok,)* }
            }

            /// For a request, the *_ERROR message that refuses it (e.g. SUBSCRIBE_ERROR).
            pub const fn error_type(self) -> Option<MessageType> {
                #[allow(unused_imports)]
                use MessageType::*;
                match self { $(MessageType::$variant => $err,)* }
            }
        }

        /// Any draft-14 control message.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ControlMessage {
            $( $(#[$doc])* $variant($ty), )*
        }

        impl ControlMessage {
            /// The message's type.
            pub fn message_type(&self) -> MessageType {
                match self { $(ControlMessage::$variant(_) => MessageType::$variant,)* }
            }

            /// Reads the payload of a message of type `ty`.
            pub fn decode_payload<B: Buf>(
                buf: &mut B,
                ty: MessageType,
                v: Version,
            ) -> Result<Self, DecodeError> {
                Ok(match ty {
                    $(MessageType::$variant => {
                        ControlMessage::$variant(<$ty as Payload>::decode_payload(buf, ty, v)?)
                    })*
                })
            }

            /// Writes the payload (without Type and Length).
            pub fn encode_payload<B: BufMut>(
                &self,
                buf: &mut B,
                enc: Encoding,
            ) -> Result<(), EncodeError> {
                let ty = self.message_type();
                match self { $(ControlMessage::$variant(m) => m.encode_payload(buf, ty, enc),)* }
            }
        }
    };
}

registry! {
    /// CLIENT_SETUP (§9.3).
    ClientSetup = 0x20, "CLIENT_SETUP", ClientSetup,
        Setup, Client, None, None;
    /// SERVER_SETUP (§9.3).
    ServerSetup = 0x21, "SERVER_SETUP", ServerSetup,
        Setup, Server, None, None;
    /// GOAWAY (§9.4).
    Goaway = 0x10, "GOAWAY", Goaway,
        Session, Endpoint, None, None;
    /// MAX_REQUEST_ID (§9.5).
    MaxRequestId = 0x15, "MAX_REQUEST_ID", MaxRequestId,
        Session, Endpoint, None, None;
    /// REQUESTS_BLOCKED (§9.6).
    RequestsBlocked = 0x1A, "REQUESTS_BLOCKED", RequestsBlocked,
        Session, Endpoint, None, None;
    /// SUBSCRIBE (§9.7).
    Subscribe = 0x03, "SUBSCRIBE", Subscribe,
        Request, Subscriber, Some(SubscribeOk), Some(SubscribeError);
    /// SUBSCRIBE_OK (§9.8).
    SubscribeOk = 0x04, "SUBSCRIBE_OK", SubscribeOk,
        ReplyOk, Publisher, None, None;
    /// SUBSCRIBE_ERROR (§9.9).
    SubscribeError = 0x05, "SUBSCRIBE_ERROR", RequestError,
        ReplyError, Publisher, None, None;
    /// SUBSCRIBE_UPDATE (§9.10).
    SubscribeUpdate = 0x02, "SUBSCRIBE_UPDATE", SubscribeUpdate,
        Request, Subscriber, None, None;
    /// UNSUBSCRIBE (§9.11).
    Unsubscribe = 0x0A, "UNSUBSCRIBE", RequestRef,
        FollowUp, Subscriber, None, None;
    /// PUBLISH_DONE (§9.12).
    PublishDone = 0x0B, "PUBLISH_DONE", PublishDone,
        FollowUp, Publisher, None, None;
    /// PUBLISH (§9.13).
    Publish = 0x1D, "PUBLISH", Publish,
        Request, Publisher, Some(PublishOk), Some(PublishError);
    /// PUBLISH_OK (§9.14).
    PublishOk = 0x1E, "PUBLISH_OK", PublishOk,
        ReplyOk, Subscriber, None, None;
    /// PUBLISH_ERROR (§9.15).
    PublishError = 0x1F, "PUBLISH_ERROR", RequestError,
        ReplyError, Subscriber, None, None;
    /// FETCH (§9.16).
    Fetch = 0x16, "FETCH", Fetch,
        Request, Subscriber, Some(FetchOk), Some(FetchError);
    /// FETCH_OK (§9.17).
    FetchOk = 0x18, "FETCH_OK", FetchOk,
        ReplyOk, Publisher, None, None;
    /// FETCH_ERROR (§9.18).
    FetchError = 0x19, "FETCH_ERROR", RequestError,
        ReplyError, Publisher, None, None;
    /// FETCH_CANCEL (§9.19).
    FetchCancel = 0x17, "FETCH_CANCEL", RequestRef,
        FollowUp, Subscriber, None, None;
    /// TRACK_STATUS (§9.20), laid out as SUBSCRIBE.
    TrackStatus = 0x0D, "TRACK_STATUS", Subscribe,
        Request, Subscriber, Some(TrackStatusOk), Some(TrackStatusError);
    /// TRACK_STATUS_OK (§9.21), laid out as SUBSCRIBE_OK.
    TrackStatusOk = 0x0E, "TRACK_STATUS_OK", SubscribeOk,
        ReplyOk, Publisher, None, None;
    /// TRACK_STATUS_ERROR (§9.22), laid out as SUBSCRIBE_ERROR.
    TrackStatusError = 0x0F, "TRACK_STATUS_ERROR", RequestError,
        ReplyError, Publisher, None, None;
    /// PUBLISH_NAMESPACE (§9.23).
    PublishNamespace = 0x06, "PUBLISH_NAMESPACE", PublishNamespace,
        Request, Publisher, Some(PublishNamespaceOk), Some(PublishNamespaceError);
    /// PUBLISH_NAMESPACE_OK (§9.24).
    PublishNamespaceOk = 0x07, "PUBLISH_NAMESPACE_OK", RequestRef,
        ReplyOk, Subscriber, None, None;
    /// PUBLISH_NAMESPACE_ERROR (§9.25).
    PublishNamespaceError = 0x08, "PUBLISH_NAMESPACE_ERROR", RequestError,
        ReplyError, Subscriber, None, None;
    /// PUBLISH_NAMESPACE_DONE (§9.26).
    PublishNamespaceDone = 0x09, "PUBLISH_NAMESPACE_DONE", PublishNamespaceDone,
        Notice, Publisher, None, None;
    /// PUBLISH_NAMESPACE_CANCEL (§9.27).
    PublishNamespaceCancel = 0x0C, "PUBLISH_NAMESPACE_CANCEL", PublishNamespaceCancel,
        Notice, Subscriber, None, None;
    /// SUBSCRIBE_NAMESPACE (§9.28).
    SubscribeNamespace = 0x11, "SUBSCRIBE_NAMESPACE", SubscribeNamespace,
        Request, Subscriber, Some(SubscribeNamespaceOk), Some(SubscribeNamespaceError);
    /// SUBSCRIBE_NAMESPACE_OK (§9.29).
    SubscribeNamespaceOk = 0x12, "SUBSCRIBE_NAMESPACE_OK", RequestRef,
        ReplyOk, Publisher, None, None;
    /// SUBSCRIBE_NAMESPACE_ERROR (§9.30).
    SubscribeNamespaceError = 0x13, "SUBSCRIBE_NAMESPACE_ERROR", RequestError,
        ReplyError, Publisher, None, None;
    /// UNSUBSCRIBE_NAMESPACE (§9.31).
    UnsubscribeNamespace = 0x14, "UNSUBSCRIBE_NAMESPACE", UnsubscribeNamespace,
        Notice, Subscriber, None, None;
}

/// The role a control message plays in the session (§9, §9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// CLIENT_SETUP / SERVER_SETUP: the first message on the control stream (§9.3).
    Setup,
    /// Session-wide control without a Request ID: GOAWAY, MAX_REQUEST_ID, REQUESTS_BLOCKED.
    Session,
    /// Opens a request and consumes a new Request ID (§9.1).
    Request,
    /// Accepts a request (*_OK).
    ReplyOk,
    /// Refuses a request (*_ERROR).
    ReplyError,
    /// Refers to an earlier request by its Request ID without answering it (UNSUBSCRIBE,
    /// PUBLISH_DONE, FETCH_CANCEL).
    FollowUp,
    /// Names a namespace, not a request (PUBLISH_NAMESPACE_DONE, PUBLISH_NAMESPACE_CANCEL,
    /// UNSUBSCRIBE_NAMESPACE).
    Notice,
}

/// Who may send a control message, as its section of §9 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    /// Only the client (CLIENT_SETUP).
    Client,
    /// Only the server (SERVER_SETUP).
    Server,
    /// Either endpoint, whatever its role.
    Endpoint,
    /// The publisher of the track or namespace concerned.
    Publisher,
    /// The subscriber of the track or namespace concerned.
    Subscriber,
}

impl MessageType {
    /// Whether this message opens a new request and so consumes a Request ID (§9.1).
    pub const fn is_request(self) -> bool {
        matches!(self.kind(), MessageKind::Request)
    }

    /// Whether this message answers a request (*_OK or *_ERROR).
    pub const fn is_reply(self) -> bool {
        matches!(self.kind(), MessageKind::ReplyOk | MessageKind::ReplyError)
    }

    /// Whether the message carries a Request ID field (its own or the one it refers to).
    pub const fn has_request_id(self) -> bool {
        matches!(
            self.kind(),
            MessageKind::Request
                | MessageKind::ReplyOk
                | MessageKind::ReplyError
                | MessageKind::FollowUp
        )
    }

    /// For a reply, the request type it answers.
    pub fn answers(self) -> Option<MessageType> {
        MessageType::ALL
            .iter()
            .copied()
            .find(|r| r.ok_type() == Some(self) || r.error_type() == Some(self))
    }
}

impl ControlMessage {
    /// Reads one framed message: Type (i), Length (16), payload. `Short` until the whole message
    /// is in `buf`; nothing is consumed on `Short` when `buf` is a clone the caller keeps.
    pub fn decode<B: Buf>(buf: &mut B, v: Version) -> Result<Self, DecodeError> {
        Self::decode_located(buf, v).map_err(|(e, _)| e)
    }

    /// As [`ControlMessage::decode`], and on error also the offset within the frame at which the
    /// decoder stopped.
    pub fn decode_located<B: Buf>(buf: &mut B, v: Version) -> Result<Self, (DecodeError, usize)> {
        let start = buf.remaining();
        let at = |buf: &B| start - buf.remaining();
        let code = varint::read(buf).map_err(|e| (e, at(buf)))?;
        let ty = MessageType::from_code(code).ok_or_else(|| {
            let e = DecodeError::invalid(
                Rule::UnknownMessageType,
                format!("control message type 0x{code:x} is not defined"),
            );
            (e, at(buf))
        })?;
        crate::codec::need(buf, 2).map_err(|e| (e, at(buf)))?;
        let len = usize::from(buf.get_u16());
        let header = at(buf);
        let mut payload = read_exact(buf, len).map_err(|e| (e, header))?;
        let in_payload = |p: &bytes::Bytes| header + len - p.remaining();
        let msg = ControlMessage::decode_payload(&mut payload, ty, v).map_err(|e| {
            let e = e.short_as(
                Rule::ControlLengthMismatch,
                &format!("{} payload of {len} bytes ends inside a field", ty.name()),
            );
            (e, in_payload(&payload))
        })?;
        if payload.has_remaining() {
            let e = DecodeError::invalid(
                Rule::ControlLengthMismatch,
                format!(
                    "{} bytes left over in a {}-byte {} payload",
                    payload.remaining(),
                    len,
                    ty.name()
                ),
            );
            return Err((e, in_payload(&payload)));
        }
        Ok(msg)
    }

    /// Writes the message with its Type and 16-bit Length.
    pub fn encode<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        let mut sizer = Sizer::default();
        self.encode_payload(&mut sizer, enc)?;
        let len = sizer.len();
        if len > MAX_CONTROL_PAYLOAD {
            return Err(EncodeError::limit(
                Rule::ControlLengthMismatch,
                format!("payload of {len} bytes does not fit the 16-bit Length"),
            ));
        }
        put_varint(buf, self.message_type().code(), enc)?;
        put_slice(buf, &(len as u16).to_be_bytes())?;
        self.encode_payload(buf, enc)
    }

    /// The Request ID the message carries, if any.
    pub fn request_id(&self) -> Option<u64> {
        use ControlMessage::*;
        match self {
            Subscribe(m) | TrackStatus(m) => Some(m.request_id),
            SubscribeOk(m) | TrackStatusOk(m) => Some(m.request_id),
            SubscribeError(m)
            | TrackStatusError(m)
            | PublishError(m)
            | FetchError(m)
            | PublishNamespaceError(m)
            | SubscribeNamespaceError(m) => Some(m.request_id),
            SubscribeUpdate(m) => Some(m.request_id),
            Unsubscribe(m) | FetchCancel(m) | PublishNamespaceOk(m) | SubscribeNamespaceOk(m) => {
                Some(m.request_id)
            }
            PublishDone(m) => Some(m.request_id),
            Publish(m) => Some(m.request_id),
            PublishOk(m) => Some(m.request_id),
            Fetch(m) => Some(m.request_id),
            FetchOk(m) => Some(m.request_id),
            PublishNamespace(m) => Some(m.request_id),
            SubscribeNamespace(m) => Some(m.request_id),
            ClientSetup(_)
            | ServerSetup(_)
            | Goaway(_)
            | MaxRequestId(_)
            | RequestsBlocked(_)
            | PublishNamespaceDone(_)
            | PublishNamespaceCancel(_)
            | UnsubscribeNamespace(_) => None,
        }
    }
}

/// `{request_id, error_code, reason}`: the layout of every *_ERROR message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestError {
    /// The request this answers.
    pub request_id: u64,
    /// The error code (tables in §13.1).
    pub error_code: u64,
    /// Why, for humans.
    pub reason: crate::Blob,
}

impl Payload for RequestError {
    fn decode_payload<B: Buf>(b: &mut B, _: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(RequestError {
            request_id: varint::read(b)?,
            error_code: varint::read(b)?,
            reason: crate::primitives::decode_reason(b)?,
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        put_varint(b, self.request_id, enc)?;
        put_varint(b, self.error_code, enc)?;
        crate::primitives::encode_reason(b, &self.reason, enc)
    }
}

/// `{request_id}`: UNSUBSCRIBE, FETCH_CANCEL, PUBLISH_NAMESPACE_OK, SUBSCRIBE_NAMESPACE_OK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRef {
    /// The request referred to.
    pub request_id: u64,
}

impl Payload for RequestRef {
    fn decode_payload<B: Buf>(b: &mut B, _: MessageType, _: Version) -> Result<Self, DecodeError> {
        Ok(RequestRef {
            request_id: varint::read(b)?,
        })
    }

    fn encode_payload<B: BufMut>(
        &self,
        b: &mut B,
        _: MessageType,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        put_varint(b, self.request_id, enc)
    }
}

#[cfg(test)]
mod tests {
    use super::MessageKind as K;
    use super::MessageType as M;
    use super::Sender as S;

    /// Every message of §9 Table 1, with its kind, sender (the first sentence of its section:
    /// "A publisher sends ...", "The subscriber sends ...", "An endpoint sends ...") and the
    /// *_ERROR answering it, checked by hand against the draft.
    #[test]
    fn registry_matches_section_9() {
        #[rustfmt::skip]
        let table: &[(M, K, S, Option<M>)] = &[
            (M::ClientSetup, K::Setup, S::Client, None),                       // §9.3
            (M::ServerSetup, K::Setup, S::Server, None),                       // §9.3
            (M::Goaway, K::Session, S::Endpoint, None),                        // §9.4 "An endpoint sends"
            (M::MaxRequestId, K::Session, S::Endpoint, None),                  // §9.5
            (M::RequestsBlocked, K::Session, S::Endpoint, None),               // §9.6
            (M::Subscribe, K::Request, S::Subscriber, Some(M::SubscribeError)), // §9.7, §9.9
            (M::SubscribeOk, K::ReplyOk, S::Publisher, None),                  // §9.8
            (M::SubscribeError, K::ReplyError, S::Publisher, None),            // §9.9
            (M::SubscribeUpdate, K::Request, S::Subscriber, None),             // §9.10, §9.1
            (M::Unsubscribe, K::FollowUp, S::Subscriber, None),                // §9.11
            (M::PublishDone, K::FollowUp, S::Publisher, None),                 // §9.12
            (M::Publish, K::Request, S::Publisher, Some(M::PublishError)),     // §9.13, §9.15
            (M::PublishOk, K::ReplyOk, S::Subscriber, None),                   // §9.14
            (M::PublishError, K::ReplyError, S::Subscriber, None),             // §9.15
            (M::Fetch, K::Request, S::Subscriber, Some(M::FetchError)),        // §9.16, §9.18
            (M::FetchOk, K::ReplyOk, S::Publisher, None),                      // §9.17
            (M::FetchError, K::ReplyError, S::Publisher, None),                // §9.18
            (M::FetchCancel, K::FollowUp, S::Subscriber, None),                // §9.19
            (M::TrackStatus, K::Request, S::Subscriber, Some(M::TrackStatusError)), // §9.20, §9.22
            (M::TrackStatusOk, K::ReplyOk, S::Publisher, None),                // §9.21
            (M::TrackStatusError, K::ReplyError, S::Publisher, None),          // §9.22
            (M::PublishNamespace, K::Request, S::Publisher, Some(M::PublishNamespaceError)), // §9.23
            (M::PublishNamespaceOk, K::ReplyOk, S::Subscriber, None),          // §9.24
            (M::PublishNamespaceError, K::ReplyError, S::Subscriber, None),    // §9.25
            (M::PublishNamespaceDone, K::Notice, S::Publisher, None),          // §9.26
            (M::PublishNamespaceCancel, K::Notice, S::Subscriber, None),       // §9.27
            (M::SubscribeNamespace, K::Request, S::Subscriber, Some(M::SubscribeNamespaceError)), // §9.28
            (M::SubscribeNamespaceOk, K::ReplyOk, S::Publisher, None),         // §9.29
            (M::SubscribeNamespaceError, K::ReplyError, S::Publisher, None),   // §9.30
            (M::UnsubscribeNamespace, K::Notice, S::Subscriber, None),         // §9.31
        ];
        assert_eq!(table.len(), M::ALL.len());
        for (ty, kind, sender, err) in table {
            let got = (ty.kind(), ty.sender(), ty.error_type());
            assert_eq!(got, (*kind, *sender, *err), "{}", ty.name());
        }
        // §9.1: "The Request ID increments by 2 with each FETCH, SUBSCRIBE, SUBSCRIBE_UPDATE,
        // SUBSCRIBE_NAMESPACE, PUBLISH, PUBLISH_NAMESPACE or TRACK_STATUS request."
        let requests: Vec<_> = M::ALL
            .iter()
            .filter(|t| t.is_request())
            .map(|t| t.name())
            .collect();
        assert_eq!(
            requests,
            [
                "SUBSCRIBE",
                "SUBSCRIBE_UPDATE",
                "PUBLISH",
                "FETCH",
                "TRACK_STATUS",
                "PUBLISH_NAMESPACE",
                "SUBSCRIBE_NAMESPACE"
            ]
        );
        // Every reply answers exactly one request, sent the other way; every *_OK and *_ERROR
        // pair belongs to one request.
        for ty in M::ALL {
            match ty.answers() {
                Some(req) => {
                    assert!(ty.is_reply() && req.is_request(), "{}", ty.name());
                    assert_ne!(req.sender(), ty.sender(), "{}", ty.name());
                }
                None => assert!(!ty.is_reply(), "{}", ty.name()),
            }
            if let Some(e) = ty.error_type() {
                assert_eq!(e.kind(), K::ReplyError);
                assert_eq!(ty.ok_type().map(M::kind), Some(K::ReplyOk));
            }
        }
    }
}
