//! Key-value pairs (§1.4.2), setup parameters (§9.3.2), version-specific parameters (§9.2.1) and
//! the authorization token structure (§9.2.1.1).

use crate::blob::Blob;
use crate::codec::{
    bounded_capacity, decode_exact, put_len_bytes, put_slice, put_varint, read_count, read_exact,
    Encoding, Sizer,
};
use crate::control::MessageType;
use crate::error::{DecodeError, EncodeError, Rule};
use crate::limits::MAX_KEY_VALUE;
use crate::varint;
use bytes::{Buf, BufMut, Bytes};
use serde::{Deserialize, Serialize};

/// The value of a key-value pair: a varint for even keys, bytes for odd keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KvValue {
    /// Even key: a single varint.
    Varint(u64),
    /// Odd key: length-prefixed bytes.
    Bytes(Blob),
}

/// One key-value pair as it travels (§1.4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyValuePair {
    /// The type; its parity decides the value's form.
    pub key: u64,
    /// The value.
    pub value: KvValue,
}

impl KeyValuePair {
    /// A pair with a varint value (the key must be even).
    pub fn varint(key: u64, value: u64) -> Self {
        KeyValuePair {
            key,
            value: KvValue::Varint(value),
        }
    }

    /// A pair with a bytes value (the key must be odd).
    pub fn bytes(key: u64, value: impl Into<Blob>) -> Self {
        KeyValuePair {
            key,
            value: KvValue::Bytes(value.into()),
        }
    }

    /// Reads one pair; odd values longer than 65,535 bytes break [`Rule::KeyValueTooLong`].
    pub fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        let key = varint::read(buf)?;
        let value = decode_kv_value(buf, key)?;
        Ok(KeyValuePair { key, value })
    }

    /// Writes the pair, checking that the value's form matches the key's parity.
    pub fn encode<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(buf, self.key, enc)?;
        encode_kv_value(buf, self.key, &self.value, enc)
    }
}

fn decode_kv_value<B: Buf>(buf: &mut B, key: u64) -> Result<KvValue, DecodeError> {
    if key % 2 == 0 {
        return Ok(KvValue::Varint(varint::read(buf)?));
    }
    let len = varint::read(buf)?;
    if len > MAX_KEY_VALUE as u64 {
        return Err(DecodeError::invalid(
            Rule::KeyValueTooLong,
            format!("key 0x{key:x} value length {len} exceeds {MAX_KEY_VALUE}"),
        ));
    }
    Ok(KvValue::Bytes(Blob(read_exact(buf, len as usize)?)))
}

fn encode_kv_value<B: BufMut>(
    buf: &mut B,
    key: u64,
    value: &KvValue,
    enc: Encoding,
) -> Result<(), EncodeError> {
    match (key % 2, value) {
        (0, KvValue::Varint(v)) => put_varint(buf, *v, enc),
        (1, KvValue::Bytes(b)) => put_len_bytes(buf, b, MAX_KEY_VALUE, Rule::KeyValueTooLong, enc),
        _ => Err(EncodeError::Inconsistent(format!(
            "key 0x{key:x}: even keys carry a varint, odd keys carry bytes"
        ))),
    }
}

/// An authorization token with its alias handling (§9.2.1.1). Its `Debug` form (what logs
/// print) shows a token value's length, never its bytes; serde shows the value.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "alias_type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Token {
    /// 0x0: retire the alias.
    Delete {
        /// The alias to retire.
        alias: u64,
    },
    /// 0x1: register the alias for this token type and value.
    Register {
        /// The alias to register.
        alias: u64,
        /// The token type (IANA "MOQT Auth Token Type"; 0 = out of band).
        token_type: u64,
        /// The token value.
        token_value: Blob,
    },
    /// 0x2: use the token registered under the alias.
    UseAlias {
        /// The registered alias.
        alias: u64,
    },
    /// 0x3: use this token as given.
    UseValue {
        /// The token type.
        token_type: u64,
        /// The token value.
        token_value: Blob,
    },
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Blob| format!("<{} bytes redacted>", v.len());
        match self {
            Token::Delete { alias } => f.debug_struct("Delete").field("alias", alias).finish(),
            Token::Register {
                alias,
                token_type,
                token_value,
            } => f
                .debug_struct("Register")
                .field("alias", alias)
                .field("token_type", token_type)
                .field("token_value", &redacted(token_value))
                .finish(),
            Token::UseAlias { alias } => f.debug_struct("UseAlias").field("alias", alias).finish(),
            Token::UseValue {
                token_type,
                token_value,
            } => f
                .debug_struct("UseValue")
                .field("token_type", token_type)
                .field("token_value", &redacted(token_value))
                .finish(),
        }
    }
}

impl Token {
    /// The Alias Type code.
    pub fn alias_type(&self) -> u64 {
        match self {
            Token::Delete { .. } => 0,
            Token::Register { .. } => 1,
            Token::UseAlias { .. } => 2,
            Token::UseValue { .. } => 3,
        }
    }

    /// Bytes this token occupies in a token cache: 16 + the token value (§9.3.2.4).
    pub fn cache_size(&self) -> u64 {
        match self {
            Token::Register { token_value, .. } => 16 + token_value.len() as u64,
            _ => 0,
        }
    }

    /// Parses the token from a parameter's bytes; failures are KEY_VALUE_FORMATTING_ERROR.
    pub fn parse(mut b: Bytes) -> Result<Self, DecodeError> {
        let fmt_err =
            |e: DecodeError| e.short_as(Rule::KeyValueFormat, "token ends inside a field");
        let alias_type = varint::read(&mut b).map_err(fmt_err)?;
        let token = match alias_type {
            0 => Token::Delete {
                alias: varint::read(&mut b).map_err(fmt_err)?,
            },
            1 => {
                let alias = varint::read(&mut b).map_err(fmt_err)?;
                let token_type = varint::read(&mut b).map_err(fmt_err)?;
                return Ok(Token::Register {
                    alias,
                    token_type,
                    token_value: Blob(b),
                });
            }
            2 => Token::UseAlias {
                alias: varint::read(&mut b).map_err(fmt_err)?,
            },
            3 => {
                let token_type = varint::read(&mut b).map_err(fmt_err)?;
                return Ok(Token::UseValue {
                    token_type,
                    token_value: Blob(b),
                });
            }
            other => {
                return Err(DecodeError::invalid(
                    Rule::KeyValueFormat,
                    format!("token alias type {other} is not defined"),
                ))
            }
        };
        if b.has_remaining() {
            return Err(DecodeError::invalid(
                Rule::KeyValueFormat,
                format!("{} bytes after the token alias", b.remaining()),
            ));
        }
        Ok(token)
    }

    /// Writes the token structure (without the parameter's length prefix).
    pub fn write<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(buf, self.alias_type(), enc)?;
        match self {
            Token::Delete { alias } | Token::UseAlias { alias } => put_varint(buf, *alias, enc),
            Token::Register {
                alias,
                token_type,
                token_value,
            } => {
                put_varint(buf, *alias, enc)?;
                put_varint(buf, *token_type, enc)?;
                put_slice(buf, token_value)
            }
            Token::UseValue {
                token_type,
                token_value,
            } => {
                put_varint(buf, *token_type, enc)?;
                put_slice(buf, token_value)
            }
        }
    }

    fn encode_value<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        let mut sizer = Sizer::default();
        self.write(&mut sizer, enc)?;
        if sizer.len() > MAX_KEY_VALUE {
            return Err(EncodeError::limit(Rule::KeyValueTooLong, "token too long"));
        }
        put_varint(buf, sizer.len() as u64, enc)?;
        self.write(buf, enc)
    }
}

/// A parameter of CLIENT_SETUP or SERVER_SETUP (§9.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SetupParameter {
    /// 0x01: path and query of a `moqt://` URI (raw QUIC only).
    Path {
        /// The path.
        value: Blob,
    },
    /// 0x02: initial Maximum Request ID (request IDs below it may be used).
    MaxRequestId {
        /// The value.
        value: u64,
    },
    /// 0x03: a token authorizing the session.
    AuthorizationToken {
        /// The token.
        value: Token,
    },
    /// 0x04: bytes of registered tokens the sender will store.
    MaxAuthTokenCacheSize {
        /// The value.
        value: u64,
    },
    /// 0x05: authority of a `moqt://` URI (raw QUIC only).
    Authority {
        /// The authority.
        value: Blob,
    },
    /// 0x07: the sender's implementation name and version.
    Implementation {
        /// The name.
        value: Blob,
    },
    /// Any other type, kept byte-exact.
    Unknown {
        /// The type.
        key: u64,
        /// The value.
        value: KvValue,
    },
}

/// Setup parameter type codes (§9.3.2).
pub mod setup_keys {
    /// PATH.
    pub const PATH: u64 = 0x01;
    /// MAX_REQUEST_ID.
    pub const MAX_REQUEST_ID: u64 = 0x02;
    /// AUTHORIZATION TOKEN.
    pub const AUTHORIZATION_TOKEN: u64 = 0x03;
    /// MAX_AUTH_TOKEN_CACHE_SIZE.
    pub const MAX_AUTH_TOKEN_CACHE_SIZE: u64 = 0x04;
    /// AUTHORITY.
    pub const AUTHORITY: u64 = 0x05;
    /// MOQT IMPLEMENTATION (0x07 on the wire; see DISAGREEMENTS.md).
    pub const IMPLEMENTATION: u64 = 0x07;
}

/// Version-specific parameter type codes (§9.2.1).
pub mod keys {
    /// DELIVERY TIMEOUT.
    pub const DELIVERY_TIMEOUT: u64 = 0x02;
    /// AUTHORIZATION TOKEN.
    pub const AUTHORIZATION_TOKEN: u64 = 0x03;
    /// MAX CACHE DURATION.
    pub const MAX_CACHE_DURATION: u64 = 0x04;
}

/// A version-specific parameter of any other control message (§9.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Parameter {
    /// 0x02: milliseconds a relay keeps trying to forward an object.
    DeliveryTimeout {
        /// Milliseconds.
        value: u64,
    },
    /// 0x03: a token authorizing this request.
    AuthorizationToken {
        /// The token.
        value: Token,
    },
    /// 0x04: milliseconds an object may be served from a cache.
    MaxCacheDuration {
        /// Milliseconds.
        value: u64,
    },
    /// Any other type, or a known type in a message that does not carry it, kept byte-exact.
    Unknown {
        /// The type.
        key: u64,
        /// The value.
        value: KvValue,
    },
}

/// A kind of parameter list element: setup or version-specific.
pub trait ParamKind: Sized + Clone {
    /// Builds the typed element for `key`/`value` as received in message `msg`.
    fn from_kv(key: u64, value: KvValue, msg: MessageType) -> Result<Self, DecodeError>;
    /// The wire key.
    fn key(&self) -> u64;
    /// Whether the draft lets this element repeat in one message.
    fn may_repeat(&self) -> bool;
    /// Writes the value part (after the key).
    fn encode_value<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError>;
}

fn expect_bytes(v: KvValue) -> Blob {
    match v {
        KvValue::Bytes(b) => b,
        // decode_kv_value gives odd keys bytes, so this is unreachable from the wire.
        KvValue::Varint(_) => Blob::EMPTY,
    }
}

fn expect_varint(v: &KvValue) -> u64 {
    match v {
        KvValue::Varint(n) => *n,
        KvValue::Bytes(_) => 0,
    }
}

impl ParamKind for SetupParameter {
    fn from_kv(key: u64, value: KvValue, _msg: MessageType) -> Result<Self, DecodeError> {
        use setup_keys::*;
        Ok(match key {
            PATH => SetupParameter::Path {
                value: expect_bytes(value),
            },
            MAX_REQUEST_ID => SetupParameter::MaxRequestId {
                value: expect_varint(&value),
            },
            AUTHORIZATION_TOKEN => SetupParameter::AuthorizationToken {
                value: Token::parse(expect_bytes(value).0)?,
            },
            MAX_AUTH_TOKEN_CACHE_SIZE => SetupParameter::MaxAuthTokenCacheSize {
                value: expect_varint(&value),
            },
            AUTHORITY => SetupParameter::Authority {
                value: expect_bytes(value),
            },
            IMPLEMENTATION => SetupParameter::Implementation {
                value: expect_bytes(value),
            },
            key => SetupParameter::Unknown { key, value },
        })
    }

    fn key(&self) -> u64 {
        use setup_keys::*;
        match self {
            SetupParameter::Path { .. } => PATH,
            SetupParameter::MaxRequestId { .. } => MAX_REQUEST_ID,
            SetupParameter::AuthorizationToken { .. } => AUTHORIZATION_TOKEN,
            SetupParameter::MaxAuthTokenCacheSize { .. } => MAX_AUTH_TOKEN_CACHE_SIZE,
            SetupParameter::Authority { .. } => AUTHORITY,
            SetupParameter::Implementation { .. } => IMPLEMENTATION,
            SetupParameter::Unknown { key, .. } => *key,
        }
    }

    fn may_repeat(&self) -> bool {
        matches!(
            self,
            SetupParameter::AuthorizationToken { .. } | SetupParameter::Unknown { .. }
        )
    }

    fn encode_value<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        let bytes = |buf: &mut B, b: &Blob| {
            put_len_bytes(buf, b, MAX_KEY_VALUE, Rule::KeyValueTooLong, enc)
        };
        match self {
            SetupParameter::Path { value }
            | SetupParameter::Authority { value }
            | SetupParameter::Implementation { value } => bytes(buf, value),
            SetupParameter::MaxRequestId { value }
            | SetupParameter::MaxAuthTokenCacheSize { value } => put_varint(buf, *value, enc),
            SetupParameter::AuthorizationToken { value } => value.encode_value(buf, enc),
            SetupParameter::Unknown { key, value } => encode_kv_value(buf, *key, value, enc),
        }
    }
}

impl Parameter {
    /// Whether message `msg` carries parameter `key` (§9.2.1); elsewhere it is ignored.
    pub fn recognised_in(key: u64, msg: MessageType) -> bool {
        use MessageType::*;
        match key {
            keys::DELIVERY_TIMEOUT => matches!(
                msg,
                TrackStatus
                    | TrackStatusOk
                    | Publish
                    | PublishOk
                    | Subscribe
                    | SubscribeOk
                    | SubscribeUpdate
            ),
            keys::AUTHORIZATION_TOKEN => matches!(
                msg,
                Publish
                    | Subscribe
                    | SubscribeUpdate
                    | SubscribeNamespace
                    | PublishNamespace
                    | TrackStatus
                    | Fetch
            ),
            keys::MAX_CACHE_DURATION => {
                matches!(msg, Publish | SubscribeOk | FetchOk | TrackStatusOk)
            }
            _ => false,
        }
    }
}

impl ParamKind for Parameter {
    fn from_kv(key: u64, value: KvValue, msg: MessageType) -> Result<Self, DecodeError> {
        if !Parameter::recognised_in(key, msg) {
            return Ok(Parameter::Unknown { key, value });
        }
        Ok(match key {
            keys::DELIVERY_TIMEOUT => Parameter::DeliveryTimeout {
                value: expect_varint(&value),
            },
            keys::AUTHORIZATION_TOKEN => Parameter::AuthorizationToken {
                value: Token::parse(expect_bytes(value).0)?,
            },
            _ => Parameter::MaxCacheDuration {
                value: expect_varint(&value),
            },
        })
    }

    fn key(&self) -> u64 {
        match self {
            Parameter::DeliveryTimeout { .. } => keys::DELIVERY_TIMEOUT,
            Parameter::AuthorizationToken { .. } => keys::AUTHORIZATION_TOKEN,
            Parameter::MaxCacheDuration { .. } => keys::MAX_CACHE_DURATION,
            Parameter::Unknown { key, .. } => *key,
        }
    }

    fn may_repeat(&self) -> bool {
        matches!(
            self,
            Parameter::AuthorizationToken { .. } | Parameter::Unknown { .. }
        )
    }

    fn encode_value<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        match self {
            Parameter::DeliveryTimeout { value } | Parameter::MaxCacheDuration { value } => {
                put_varint(buf, *value, enc)
            }
            Parameter::AuthorizationToken { value } => value.encode_value(buf, enc),
            Parameter::Unknown { key, value } => encode_kv_value(buf, *key, value, enc),
        }
    }
}

/// An ordered parameter list: Number of Parameters (i) then the pairs (§9.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Parameters<P>(pub Vec<P>);

impl<P> Default for Parameters<P> {
    fn default() -> Self {
        Parameters(Vec::new())
    }
}

/// The parameters of CLIENT_SETUP and SERVER_SETUP.
pub type SetupParameters = Parameters<SetupParameter>;
/// The parameters of every other control message.
pub type VersionParameters = Parameters<Parameter>;

impl<P: ParamKind> Parameters<P> {
    /// An empty list.
    pub fn new() -> Self {
        Parameters(Vec::new())
    }

    /// Appends a parameter.
    pub fn push(&mut self, p: P) -> &mut Self {
        self.0.push(p);
        self
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads the count and the pairs as received in `msg`; a repeated non-repeatable known
    /// parameter breaks [`Rule::DuplicateParameter`].
    pub fn decode<B: Buf>(buf: &mut B, msg: MessageType) -> Result<Self, DecodeError> {
        let n = read_count(buf)?;
        let mut out: Vec<P> = Vec::with_capacity(bounded_capacity(buf, n));
        for _ in 0..n {
            let key = varint::read(buf)?;
            let value = decode_kv_value(buf, key)?;
            let p = P::from_kv(key, value, msg)?;
            if !p.may_repeat() && out.iter().any(|q| q.key() == p.key() && !q.may_repeat()) {
                return Err(DecodeError::invalid(
                    Rule::DuplicateParameter,
                    format!("parameter 0x{key:x} appears more than once"),
                ));
            }
            out.push(p);
        }
        Ok(Parameters(out))
    }

    /// Writes the count and the pairs.
    pub fn encode<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(buf, self.0.len() as u64, enc)?;
        for p in &self.0 {
            put_varint(buf, p.key(), enc)?;
            p.encode_value(buf, enc)?;
        }
        Ok(())
    }
}

impl SetupParameters {
    /// PATH, if present.
    pub fn path(&self) -> Option<&Blob> {
        self.0.iter().find_map(|p| match p {
            SetupParameter::Path { value } => Some(value),
            _ => None,
        })
    }

    /// AUTHORITY, if present.
    pub fn authority(&self) -> Option<&Blob> {
        self.0.iter().find_map(|p| match p {
            SetupParameter::Authority { value } => Some(value),
            _ => None,
        })
    }

    /// MAX_REQUEST_ID, if present (the draft's default is 0).
    pub fn max_request_id(&self) -> Option<u64> {
        self.0.iter().find_map(|p| match p {
            SetupParameter::MaxRequestId { value } => Some(*value),
            _ => None,
        })
    }

    /// MAX_AUTH_TOKEN_CACHE_SIZE, if present (the draft's default is 0).
    pub fn max_auth_token_cache_size(&self) -> Option<u64> {
        self.0.iter().find_map(|p| match p {
            SetupParameter::MaxAuthTokenCacheSize { value } => Some(*value),
            _ => None,
        })
    }

    /// The implementation name, if present.
    pub fn implementation(&self) -> Option<&Blob> {
        self.0.iter().find_map(|p| match p {
            SetupParameter::Implementation { value } => Some(value),
            _ => None,
        })
    }

    /// Every AUTHORIZATION TOKEN, in order.
    pub fn auth_tokens(&self) -> impl Iterator<Item = &Token> {
        self.0.iter().filter_map(|p| match p {
            SetupParameter::AuthorizationToken { value } => Some(value),
            _ => None,
        })
    }
}

impl VersionParameters {
    /// DELIVERY TIMEOUT in milliseconds, if present.
    pub fn delivery_timeout(&self) -> Option<u64> {
        self.0.iter().find_map(|p| match p {
            Parameter::DeliveryTimeout { value } => Some(*value),
            _ => None,
        })
    }

    /// MAX CACHE DURATION in milliseconds, if present.
    pub fn max_cache_duration(&self) -> Option<u64> {
        self.0.iter().find_map(|p| match p {
            Parameter::MaxCacheDuration { value } => Some(*value),
            _ => None,
        })
    }

    /// Every AUTHORIZATION TOKEN, in order.
    pub fn auth_tokens(&self) -> impl Iterator<Item = &Token> {
        self.0.iter().filter_map(|p| match p {
            Parameter::AuthorizationToken { value } => Some(value),
            _ => None,
        })
    }
}

/// Reads a block of key-value pairs that must end exactly at `len` bytes.
pub fn decode_kv_block<B: Buf>(buf: &mut B, len: usize) -> Result<Vec<KeyValuePair>, DecodeError> {
    decode_exact(
        buf,
        len,
        Rule::ExtensionHeadersLength,
        "extension headers",
        |b| {
            let mut out = Vec::new();
            while b.has_remaining() {
                out.push(KeyValuePair::decode(b)?);
            }
            Ok(out)
        },
    )
}
