//! Decode and encode errors, the rules they name and the draft-14 session error codes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Session termination error codes (§13.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionErrorCode {
    /// 0x0: closed without an error.
    NoError,
    /// 0x1: an implementation specific error.
    InternalError,
    /// 0x2: the client is not authorized to establish a session.
    Unauthorized,
    /// 0x3: the peer did something the specification disallows.
    ProtocolViolation,
    /// 0x4: a Request ID of the wrong parity or out of sequence.
    InvalidRequestId,
    /// 0x5: a Track Alias already in use.
    DuplicateTrackAlias,
    /// 0x6: a key-value pair has a formatting error.
    KeyValueFormattingError,
    /// 0x7: a Request ID at or above the Maximum Request ID.
    TooManyRequests,
    /// 0x8: PATH used by a server, over WebTransport, or unsupported.
    InvalidPath,
    /// 0x9: PATH does not follow the URI rules.
    MalformedPath,
    /// 0x10: the peer did not close in time after GOAWAY.
    GoawayTimeout,
    /// 0x11: the peer did not answer a control message in time.
    ControlMessageTimeout,
    /// 0x12: the peer did not send expected data stream bytes in time.
    DataStreamTimeout,
    /// 0x13: the authorization token cache limit was exceeded.
    AuthTokenCacheOverflow,
    /// 0x14: a token alias was registered twice.
    DuplicateAuthTokenAlias,
    /// 0x15: no common version.
    VersionNegotiationFailed,
    /// 0x16: an authorization token could not be parsed.
    MalformedAuthToken,
    /// 0x17: a token alias that is not registered.
    UnknownAuthTokenAlias,
    /// 0x18: an expired authorization token.
    ExpiredAuthToken,
    /// 0x19: AUTHORITY used by a server, over WebTransport, or unsupported.
    InvalidAuthority,
    /// 0x1A: AUTHORITY does not follow the URI rules.
    MalformedAuthority,
}

impl SessionErrorCode {
    /// Every code, in table order.
    pub const ALL: [SessionErrorCode; 21] = [
        Self::NoError,
        Self::InternalError,
        Self::Unauthorized,
        Self::ProtocolViolation,
        Self::InvalidRequestId,
        Self::DuplicateTrackAlias,
        Self::KeyValueFormattingError,
        Self::TooManyRequests,
        Self::InvalidPath,
        Self::MalformedPath,
        Self::GoawayTimeout,
        Self::ControlMessageTimeout,
        Self::DataStreamTimeout,
        Self::AuthTokenCacheOverflow,
        Self::DuplicateAuthTokenAlias,
        Self::VersionNegotiationFailed,
        Self::MalformedAuthToken,
        Self::UnknownAuthTokenAlias,
        Self::ExpiredAuthToken,
        Self::InvalidAuthority,
        Self::MalformedAuthority,
    ];

    /// The code carried in CONNECTION_CLOSE / CLOSE_WEBTRANSPORT_SESSION.
    pub const fn code(self) -> u64 {
        match self {
            Self::NoError => 0x0,
            Self::InternalError => 0x1,
            Self::Unauthorized => 0x2,
            Self::ProtocolViolation => 0x3,
            Self::InvalidRequestId => 0x4,
            Self::DuplicateTrackAlias => 0x5,
            Self::KeyValueFormattingError => 0x6,
            Self::TooManyRequests => 0x7,
            Self::InvalidPath => 0x8,
            Self::MalformedPath => 0x9,
            Self::GoawayTimeout => 0x10,
            Self::ControlMessageTimeout => 0x11,
            Self::DataStreamTimeout => 0x12,
            Self::AuthTokenCacheOverflow => 0x13,
            Self::DuplicateAuthTokenAlias => 0x14,
            Self::VersionNegotiationFailed => 0x15,
            Self::MalformedAuthToken => 0x16,
            Self::UnknownAuthTokenAlias => 0x17,
            Self::ExpiredAuthToken => 0x18,
            Self::InvalidAuthority => 0x19,
            Self::MalformedAuthority => 0x1A,
        }
    }

    /// The code for a wire value, if the draft defines one.
    pub fn from_code(code: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The draft's name, e.g. `PROTOCOL_VIOLATION`.
    pub fn name(self) -> &'static str {
        match self {
            Self::NoError => "NO_ERROR",
            Self::InternalError => "INTERNAL_ERROR",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::ProtocolViolation => "PROTOCOL_VIOLATION",
            Self::InvalidRequestId => "INVALID_REQUEST_ID",
            Self::DuplicateTrackAlias => "DUPLICATE_TRACK_ALIAS",
            Self::KeyValueFormattingError => "KEY_VALUE_FORMATTING_ERROR",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::InvalidPath => "INVALID_PATH",
            Self::MalformedPath => "MALFORMED_PATH",
            Self::GoawayTimeout => "GOAWAY_TIMEOUT",
            Self::ControlMessageTimeout => "CONTROL_MESSAGE_TIMEOUT",
            Self::DataStreamTimeout => "DATA_STREAM_TIMEOUT",
            Self::AuthTokenCacheOverflow => "AUTH_TOKEN_CACHE_OVERFLOW",
            Self::DuplicateAuthTokenAlias => "DUPLICATE_AUTH_TOKEN_ALIAS",
            Self::VersionNegotiationFailed => "VERSION_NEGOTIATION_FAILED",
            Self::MalformedAuthToken => "MALFORMED_AUTH_TOKEN",
            Self::UnknownAuthTokenAlias => "UNKNOWN_AUTH_TOKEN_ALIAS",
            Self::ExpiredAuthToken => "EXPIRED_AUTH_TOKEN",
            Self::InvalidAuthority => "INVALID_AUTHORITY",
            Self::MalformedAuthority => "MALFORMED_AUTHORITY",
        }
    }
}

impl fmt::Display for SessionErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:x})", self.name(), self.code())
    }
}

macro_rules! rules {
    (
        $( $(#[$doc:meta])* $variant:ident => $name:literal, $code:ident, $section:literal; )*
        @lite {
            $( $(#[$ldoc:meta])* $lvariant:ident => $lname:literal, $lcode:ident, $lsection:literal; )*
        }
    ) => {
        /// A wire rule that input can break; each maps to the code the session closes with. The
        /// rules named `lite_*` belong to moq-lite (see [`crate::lite`]); all others to draft-14.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Rule {
            $( $(#[$doc])* $variant, )*
            $( $(#[$ldoc])* $lvariant, )*
        }

        impl Rule {
            /// Every draft-14 rule (the moq-lite rules are in [`Rule::LITE`]).
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            /// Every moq-lite rule.
            pub const LITE: &'static [Rule] = &[$(Rule::$lvariant),*];

            /// The rule's name as used in the test vectors, e.g. `invalid_forward`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Rule::$variant => $name,)*
                    $(Rule::$lvariant => $lname,)*
                }
            }

            /// The session error code a receiver closes with when the rule is broken.
            pub fn code(self) -> SessionErrorCode {
                match self {
                    $(Rule::$variant => SessionErrorCode::$code,)*
                    $(Rule::$lvariant => SessionErrorCode::$lcode,)*
                }
            }

            /// The section that states the rule: `§n.n` of draft-14, or `moq-lite §NAME`.
            pub fn section(self) -> &'static str {
                match self {
                    $(Rule::$variant => $section,)*
                    $(Rule::$lvariant => $lsection,)*
                }
            }

            /// Whether this is a moq-lite rule.
            pub fn is_lite(self) -> bool {
                Self::LITE.contains(&self)
            }

            /// The rule with the given vector name (draft-14 or moq-lite).
            pub fn from_name(name: &str) -> Option<Rule> {
                Self::ALL
                    .iter()
                    .chain(Self::LITE)
                    .copied()
                    .find(|r| r.name() == name)
            }
        }
    };
}

rules! {
    /// The input ended inside a message, header or object.
    Truncated => "truncated", ProtocolViolation, "§10.4";
    /// The control message Length disagrees with the payload its type defines.
    ControlLengthMismatch => "control_length_mismatch", ProtocolViolation, "§9";
    /// A control message type not in Table 1.
    UnknownMessageType => "unknown_message_type", ProtocolViolation, "§9";
    /// A data stream type that is neither SUBGROUP_HEADER nor FETCH_HEADER.
    UnknownStreamType => "unknown_stream_type", ProtocolViolation, "§10";
    /// A datagram type that is not OBJECT_DATAGRAM.
    UnknownDatagramType => "unknown_datagram_type", ProtocolViolation, "§10";
    /// A namespace with 0 or more than 32 fields (prefixes: more than 32).
    NamespaceFieldCount => "namespace_field_count", ProtocolViolation, "§2.4.1";
    /// A full track name longer than 4,096 bytes.
    FullTrackNameTooLong => "full_track_name_too_long", ProtocolViolation, "§2.4.1";
    /// A reason phrase longer than 1,024 bytes.
    ReasonPhraseTooLong => "reason_phrase_too_long", ProtocolViolation, "§1.4.3";
    /// A GOAWAY New Session URI longer than 8,192 bytes.
    GoawayUriTooLong => "goaway_uri_too_long", ProtocolViolation, "§9.4";
    /// A key-value pair value longer than 65,535 bytes.
    KeyValueTooLong => "key_value_too_long", ProtocolViolation, "§1.4.2";
    /// A known parameter whose value does not match its definition.
    KeyValueFormat => "key_value_format", KeyValueFormattingError, "§1.4.2";
    /// A known parameter that may not repeat appears twice.
    DuplicateParameter => "duplicate_parameter", ProtocolViolation, "§9.2";
    /// A group order above 2, or 0 where the message forbids it.
    InvalidGroupOrder => "invalid_group_order", ProtocolViolation, "§9.7";
    /// A Forward field other than 0 or 1.
    InvalidForward => "invalid_forward", ProtocolViolation, "§9.7";
    /// A Content Exists field other than 0 or 1.
    InvalidContentExists => "invalid_content_exists", ProtocolViolation, "§9.8";
    /// An End Of Track field other than 0 or 1.
    InvalidEndOfTrack => "invalid_end_of_track", ProtocolViolation, "§9.17";
    /// A filter type other than 0x1-0x4.
    InvalidFilterType => "invalid_filter_type", ProtocolViolation, "§9.7";
    /// A fetch type other than 0x1-0x3.
    InvalidFetchType => "invalid_fetch_type", ProtocolViolation, "§9.16";
    /// A SUBSCRIBE_UPDATE whose End Group is below its Start group.
    SubscribeUpdateEndBeforeStart => "subscribe_update_end_before_start", ProtocolViolation, "§9.10";
    /// An object status other than 0x0, 0x1, 0x3, 0x4.
    InvalidObjectStatus => "invalid_object_status", ProtocolViolation, "§10.2.1.1";
    /// Extension headers on an Object Does Not Exist.
    ExtensionsOnNonexistentObject => "extensions_on_nonexistent_object", ProtocolViolation, "§10.2.1.2";
    /// A datagram type with extensions but an Extension Headers Length of 0.
    EmptyDatagramExtensions => "empty_datagram_extensions", ProtocolViolation, "§10.3.1";
    /// Extension key-value pairs that do not end exactly at Extension Headers Length.
    ExtensionHeadersLength => "extension_headers_length", ProtocolViolation, "§10.4.2";
    /// An Object ID Delta that takes the Object ID past 2^62-1.
    ObjectIdOverflow => "object_id_overflow", ProtocolViolation, "§10.4.2";
    /// A version above 2^32-1.
    VersionOutOfRange => "version_out_of_range", ProtocolViolation, "§9.3.1";
    /// Bytes after a complete status datagram or value.
    TrailingBytes => "trailing_bytes", ProtocolViolation, "§10.3.1";
    /// An object larger than the reader's configured limit (a local limit, not a draft rule).
    ObjectTooLarge => "object_too_large", InternalError, "§12.1";
    @lite {
        /// A moq-lite STREAM_TYPE not defined for that stream direction.
        LiteUnknownStreamType => "lite_unknown_stream_type", ProtocolViolation, "moq-lite §STREAM_TYPE";
        /// A moq-lite Message Length that disagrees with the fields the message defines.
        LiteMessageLength => "lite_message_length", ProtocolViolation, "moq-lite §Message Length";
        /// A moq-lite Message Length above the receiver's limit (a local limit, as moq-dev's 64 MiB).
        LiteMessageTooLarge => "lite_message_too_large", InternalError, "moq-lite §Message Length";
        /// An ANNOUNCE status other than 0 (ended) or 1 (active).
        LiteAnnounceStatus => "lite_announce_status", ProtocolViolation, "moq-lite §ANNOUNCE";
        /// A broadcast path, suffix or track name that is not UTF-8.
        LiteInvalidUtf8 => "lite_invalid_utf8", ProtocolViolation, "moq-lite §Upstream Differences";
        /// The same extension ID twice in one SESSION_CLIENT / SESSION_SERVER / SERVER_SETUP.
        LiteDuplicateExtension => "lite_duplicate_extension", ProtocolViolation, "moq-lite §SESSION_CLIENT";
        /// The same suffix twice in one ANNOUNCE_INIT.
        LiteDuplicateSuffix => "lite_duplicate_suffix", ProtocolViolation, "moq-lite §ANNOUNCE_INIT";
        /// Bytes where the stream direction carries no (further) message, or a SETUP of the wrong type.
        LiteUnexpectedMessage => "lite_unexpected_message", ProtocolViolation, "moq-lite §Streams";
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Most bytes of peer input an error message quotes ([`peer_text`]).
pub const MAX_QUOTED: usize = 64;

/// Peer-supplied bytes as an error message may quote them: at most [`MAX_QUOTED`] bytes, escaped
/// (UTF-8 as a quoted string, anything else as hex), with an ellipsis and the full length when
/// cut, so an error string never grows with the input.
pub fn peer_text(b: &[u8]) -> String {
    let (shown, complete) = match std::str::from_utf8(b) {
        Ok(text) => {
            let mut end = text.len().min(MAX_QUOTED);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            (format!("{:?}", &text[..end]), end == text.len())
        }
        Err(_) => {
            let n = b.len().min(MAX_QUOTED / 2);
            (format!("0x{}", hex::encode(&b[..n])), n == b.len())
        }
    };
    if complete {
        shown
    } else {
        format!("{shown}… ({} bytes)", b.len())
    }
}

/// Why decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ends before the element does: wait for more bytes (or, at the end of the
    /// input, report [`Rule::Truncated`]).
    #[error("need more bytes")]
    Short,
    /// The input breaks a rule of the draft.
    #[error("{rule} ({section}): {detail}; close with {code}", section = rule.section(), code = rule.code())]
    Invalid {
        /// The rule broken.
        rule: Rule,
        /// What exactly was seen.
        detail: String,
    },
}

impl DecodeError {
    /// A rule violation with a description of what was seen.
    pub fn invalid(rule: Rule, detail: impl Into<String>) -> Self {
        DecodeError::Invalid {
            rule,
            detail: detail.into(),
        }
    }

    /// The rule this error names; `Short` counts as [`Rule::Truncated`].
    pub fn rule(&self) -> Rule {
        match self {
            DecodeError::Short => Rule::Truncated,
            DecodeError::Invalid { rule, .. } => *rule,
        }
    }

    /// The session error code to close with.
    pub fn code(&self) -> SessionErrorCode {
        self.rule().code()
    }

    /// Treats running out of bytes as `rule` (used inside a length-delimited block).
    pub fn short_as(self, rule: Rule, detail: &str) -> Self {
        match self {
            DecodeError::Short => DecodeError::invalid(rule, detail),
            other => other,
        }
    }
}

/// Why encoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A value does not fit in a 62-bit varint.
    #[error("value {0} does not fit in a QUIC varint (max 2^62-1)")]
    VarintRange(u64),
    /// A value breaks one of the draft's limits.
    #[error("{rule} ({section}): {detail}", section = rule.section())]
    Limit {
        /// The rule the value would break.
        rule: Rule,
        /// What exactly is wrong.
        detail: String,
    },
    /// Fields that contradict each other (e.g. a payload on a status object).
    #[error("inconsistent fields: {0}")]
    Inconsistent(String),
    /// The destination buffer has no room.
    #[error("destination buffer full")]
    BufferFull,
}

impl EncodeError {
    /// A limit violation.
    pub fn limit(rule: Rule, detail: impl Into<String>) -> Self {
        EncodeError::Limit {
            rule,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_bounded() {
        assert_eq!(peer_text(b"room/1"), "\"room/1\"");
        let long = "é".repeat(1000);
        let t = peer_text(long.as_bytes());
        assert!(t.len() < 2 * MAX_QUOTED, "{t}");
        assert!(t.ends_with("… (2000 bytes)"), "{t}");
        assert_eq!(peer_text(&[0xff, 0x00]), "0xff00");
        let t = peer_text(&[0xff; 5000]);
        assert!(
            t.len() < 3 * MAX_QUOTED && t.ends_with("… (5000 bytes)"),
            "{t}"
        );
        assert_eq!(peer_text(b"a\nb"), "\"a\\nb\"");
    }
}
