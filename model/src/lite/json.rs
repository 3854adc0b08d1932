//! The decoded JSON form of whole moq-lite stream directions, as the vectors in
//! `testvectors/lite01` and `testvectors/lite02` record them (testvectors/README.md, "moq-lite").
//!
//! An input is everything one side writes on one stream, from its first byte to FIN:
//!
//! | input | bytes | JSON |
//! |---|---|---|
//! | `request` | opener of a bidi stream: STREAM_TYPE, then its messages | `{"stream_type": T, "messages": [...]}` |
//! | `session_response` | responder on a Session stream | `{"messages": [...]}` |
//! | `session_compat_response` | responder on a SessionCompat stream | `{"messages": [...]}` |
//! | `announce_response` | responder on an Announce stream | `{"messages": [...]}` |
//! | `subscribe_response` | responder on a Subscribe stream | `{"messages": [...]}` |
//! | `group` | a uni stream: STREAM_TYPE 0x0, GROUP, FRAMEs | `{"stream_type": "GROUP", "messages": [...]}` |
//!
//! Decoding runs the incremental readers ([`super::ControlReader`], [`super::GroupReader`]) over
//! the whole input, so the JSON form is exactly what a session sees.

use super::reader::{ControlReader, GroupReader};
use super::stream::{expected_message, BiStreamType, Direction, UniStreamType};
use super::LiteMessage;
use crate::codec::Encoding;
use crate::error::{DecodeError, EncodeError};
use crate::json::Failure;
use crate::version::Version;
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What a lite input holds (the vectors' `stream` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// The opener's bytes of a bidirectional stream, stream type first.
    Request,
    /// The responder's bytes on a Session stream.
    SessionResponse,
    /// The responder's bytes on a SessionCompat stream.
    SessionCompatResponse,
    /// The responder's bytes on an Announce stream.
    AnnounceResponse,
    /// The responder's bytes on a Subscribe stream.
    SubscribeResponse,
    /// A whole Group stream.
    Group,
}

impl Input {
    /// Every input kind.
    pub const ALL: [Input; 6] = [
        Input::Request,
        Input::SessionResponse,
        Input::SessionCompatResponse,
        Input::AnnounceResponse,
        Input::SubscribeResponse,
        Input::Group,
    ];

    /// The name used in the vectors.
    pub fn name(self) -> &'static str {
        match self {
            Input::Request => "request",
            Input::SessionResponse => "session_response",
            Input::SessionCompatResponse => "session_compat_response",
            Input::AnnounceResponse => "announce_response",
            Input::SubscribeResponse => "subscribe_response",
            Input::Group => "group",
        }
    }

    /// The stream type a response input answers.
    pub fn response_to(self) -> Option<BiStreamType> {
        match self {
            Input::SessionResponse => Some(BiStreamType::Session),
            Input::SessionCompatResponse => Some(BiStreamType::SessionCompat),
            Input::AnnounceResponse => Some(BiStreamType::Announce),
            Input::SubscribeResponse => Some(BiStreamType::Subscribe),
            Input::Request | Input::Group => None,
        }
    }
}

impl std::str::FromStr for Input {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Input::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Input::ALL.iter().map(|i| i.name()).collect();
                format!("unknown lite input {s:?} ({})", names.join(", "))
            })
    }
}

fn failure(e: DecodeError, offset: usize) -> Failure {
    let rule = e.rule();
    let message = match e {
        DecodeError::Short => "input ended inside an element".to_string(),
        DecodeError::Invalid { detail, .. } => detail,
    };
    Failure {
        rule: rule.name().into(),
        code: rule.code().name().into(),
        offset,
        message,
    }
}

fn encode_failure(e: EncodeError) -> Failure {
    let (rule, code) = match &e {
        EncodeError::Limit { rule, .. } => (rule.name().into(), rule.code().name().into()),
        _ => ("encode".into(), "INTERNAL_ERROR".into()),
    };
    Failure {
        rule,
        code,
        offset: 0,
        message: e.to_string(),
    }
}

fn json_failure(message: String) -> Failure {
    Failure {
        rule: "json".into(),
        code: "INTERNAL_ERROR".into(),
        offset: 0,
        message,
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // The model's own types always serialize: string keys, u64 numbers.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Decodes one whole lite input, read with the `version` layout.
pub fn decode(input: Input, version: Version, bytes: &[u8]) -> Result<Value, Failure> {
    let data = Bytes::copy_from_slice(bytes);
    let mut messages = Vec::new();
    if input == Input::Group {
        let mut r = GroupReader::new(version);
        r.push(data);
        while let Some(ev) = r.next_event().map_err(|e| failure(e, r.consumed()))? {
            messages.push(to_value(&LiteMessage::from(ev)));
        }
        r.finish().map_err(|e| failure(e, r.consumed()))?;
        return Ok(json!({"stream_type": UniStreamType::Group, "messages": messages}));
    }
    let mut r = match input.response_to() {
        Some(ty) => ControlReader::response(version, ty),
        None => ControlReader::accept(version),
    };
    r.push(data);
    while let Some(m) = r.next_message().map_err(|e| failure(e, r.consumed()))? {
        messages.push(to_value(&m));
    }
    r.finish().map_err(|e| failure(e, r.consumed()))?;
    Ok(match input {
        Input::Request => json!({"stream_type": r.stream_type(), "messages": messages}),
        _ => json!({ "messages": messages }),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamForm<T> {
    stream_type: Option<T>,
    messages: Vec<LiteMessage>,
}

/// Encodes the JSON form of `input` with minimal varints in the `version` layout.
pub fn encode(input: Input, version: Version, value: &Value) -> Result<Vec<u8>, Failure> {
    encode_with(input, value, Encoding::new(version))
}

/// Encodes the JSON form of `input` with explicit encoding options. The messages must come in
/// the order the stream direction carries them.
pub fn encode_with(input: Input, value: &Value, enc: Encoding) -> Result<Vec<u8>, Failure> {
    let mut out = BytesMut::new();
    let order = |i: usize, m: &LiteMessage, expected: Option<super::MessageKind>| {
        if expected == Some(m.kind()) {
            Ok(())
        } else {
            Err(json_failure(format!(
                "message {i} is {}, the stream carries {} there",
                m.kind().name(),
                expected.map_or("nothing", |k| k.name())
            )))
        }
    };
    if input == Input::Group {
        let form: StreamForm<UniStreamType> =
            StreamForm::deserialize(value).map_err(|e| json_failure(e.to_string()))?;
        UniStreamType::Group
            .encode(&mut out, enc)
            .map_err(encode_failure)?;
        for (i, m) in form.messages.iter().enumerate() {
            let expected = if i == 0 {
                super::MessageKind::Group
            } else {
                super::MessageKind::Frame
            };
            order(i, m, Some(expected))?;
            m.encode(&mut out, enc).map_err(encode_failure)?;
        }
        return Ok(out.to_vec());
    }
    let form: StreamForm<BiStreamType> =
        StreamForm::deserialize(value).map_err(|e| json_failure(e.to_string()))?;
    let (ty, dir) = match input.response_to() {
        Some(ty) => (ty, Direction::Response),
        None => {
            let ty = form
                .stream_type
                .ok_or_else(|| json_failure("a request needs its stream_type".into()))?;
            ty.encode(&mut out, enc).map_err(encode_failure)?;
            (ty, Direction::Request)
        }
    };
    for (i, m) in form.messages.iter().enumerate() {
        order(i, m, expected_message(ty, dir, i == 0))?;
        m.encode(&mut out, enc).map_err(encode_failure)?;
    }
    Ok(out.to_vec())
}
