//! The decoded JSON form of whole inputs, as `moqlink decode` prints it and the test vectors
//! record it (testvectors/README.md).

use crate::codec::Encoding;
use crate::control::ControlMessage;
use crate::data::{FetchStream, ObjectDatagram, SubgroupStream};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::varint;
use crate::version::Version;
use bytes::{Buf, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// What an input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One or more framed control messages.
    Control,
    /// A whole subgroup stream.
    Subgroup,
    /// A whole fetch stream.
    Fetch,
    /// One datagram.
    Datagram,
    /// One varint.
    Varint,
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "control" => Ok(Kind::Control),
            "subgroup" => Ok(Kind::Subgroup),
            "fetch" => Ok(Kind::Fetch),
            "datagram" => Ok(Kind::Datagram),
            "varint" => Ok(Kind::Varint),
            other => Err(format!(
                "unknown kind {other:?} (control, subgroup, fetch, datagram, varint)"
            )),
        }
    }
}

/// A decode or encode failure with the rule, the draft error code and the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The rule broken (vector `error` name), or `encode` / `json` for non-wire failures.
    pub rule: String,
    /// The draft session error code name (vector `error_code`).
    pub code: String,
    /// Bytes consumed when the failure was detected.
    pub offset: usize,
    /// What exactly was wrong.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {}: {} (close with {})",
            self.rule, self.offset, self.message, self.code
        )
    }
}

impl std::error::Error for Failure {}

impl Failure {
    fn decode(e: DecodeError, offset: usize) -> Self {
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

    fn encode(e: EncodeError) -> Self {
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

    fn json(e: serde_json::Error) -> Self {
        Failure {
            rule: "json".into(),
            code: "INTERNAL_ERROR".into(),
            offset: 0,
            message: e.to_string(),
        }
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // Serializing the model's own types to a Value cannot fail: keys are strings, numbers are u64.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Decodes each framed control message of `input` in turn.
pub fn decode_control_all(input: &[u8], v: Version) -> Result<Vec<ControlMessage>, Failure> {
    let total = input.len();
    let mut buf = Bytes::copy_from_slice(input);
    let mut out = Vec::new();
    loop {
        let frame_start = total - buf.remaining();
        let msg = ControlMessage::decode_located(&mut buf, v)
            .map_err(|(e, at)| Failure::decode(e, frame_start + at))?;
        out.push(msg);
        if !buf.has_remaining() {
            return Ok(out);
        }
    }
}

/// Decodes one complete input of `kind` into its JSON form. A control input must hold exactly
/// one message (use [`decode_control_all`] for several).
pub fn decode(kind: Kind, input: &[u8]) -> Result<Value, Failure> {
    let total = input.len();
    let mut buf = Bytes::copy_from_slice(input);
    let fail = |e: DecodeError, buf: &Bytes| Failure::decode(e, total - buf.remaining());
    let value = match kind {
        Kind::Control => {
            let msg = ControlMessage::decode_located(&mut buf, Version::DRAFT_14)
                .map_err(|(e, at)| Failure::decode(e, at))?;
            to_value(&msg)
        }
        Kind::Subgroup => to_value(&SubgroupStream::decode(&mut buf).map_err(|e| fail(e, &buf))?),
        Kind::Fetch => to_value(&FetchStream::decode(&mut buf).map_err(|e| fail(e, &buf))?),
        Kind::Datagram => to_value(&ObjectDatagram::decode(&mut buf).map_err(|e| fail(e, &buf))?),
        Kind::Varint => {
            let v = varint::read(&mut buf).map_err(|e| fail(e, &buf))?;
            serde_json::json!({ "value": v })
        }
    };
    if buf.has_remaining() {
        return Err(fail(
            DecodeError::invalid(
                Rule::TrailingBytes,
                format!("{} bytes after the {kind:?} input", buf.remaining()),
            ),
            &buf,
        ));
    }
    Ok(value)
}

/// Encodes the JSON form of `kind` back to bytes (minimal varints).
pub fn encode(kind: Kind, value: &Value) -> Result<Vec<u8>, Failure> {
    encode_with(kind, value, Encoding::new(Version::DRAFT_14))
}

/// Encodes the JSON form of `kind` with explicit encoding options.
pub fn encode_with(kind: Kind, value: &Value, enc: Encoding) -> Result<Vec<u8>, Failure> {
    let mut out = BytesMut::new();
    let res = match kind {
        Kind::Control => parse::<ControlMessage>(value)?.encode(&mut out, enc),
        Kind::Subgroup => parse::<SubgroupStream>(value)?.encode(&mut out, enc),
        Kind::Fetch => parse::<FetchStream>(value)?.encode(&mut out, enc),
        Kind::Datagram => parse::<ObjectDatagram>(value)?.encode(&mut out, enc),
        Kind::Varint => {
            let v = value.get("value").and_then(Value::as_u64).ok_or_else(|| {
                Failure::json(serde::de::Error::custom("expected {\"value\": n}"))
            })?;
            varint::write(&mut out, v, enc)
        }
    };
    res.map_err(Failure::encode)?;
    Ok(out.to_vec())
}

fn parse<T: for<'de> Deserialize<'de>>(value: &Value) -> Result<T, Failure> {
    T::deserialize(value).map_err(Failure::json)
}
