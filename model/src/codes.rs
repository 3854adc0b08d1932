//! Every draft-14 code table (§13.1) in one place: request error codes per message family,
//! PUBLISH_DONE status codes, data stream reset codes and session termination codes.
//!
//! One numeric value means different things per family (0x4 is TRACK_DOES_NOT_EXIST in
//! SUBSCRIBE_ERROR, UNINTERESTED in PUBLISH_ERROR, GOING_AWAY in PUBLISH_DONE, and
//! INVALID_REQUEST_ID as a session code), so each table is its own type: the compiler keeps them
//! apart. Peers send codes we do not know: every table has an `Other(u64)` that round-trips, and
//! equality compares wire values (`Other(4)` equals `TrackDoesNotExist`).

use crate::control::MessageType;
use std::fmt;
use std::hash::{Hash, Hasher};

pub use crate::error::SessionErrorCode;

macro_rules! code_table {
    (
        $(#[$meta:meta])*
        $ty:ident, $table:literal;
        $( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $section:literal; )*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub enum $ty {
            $( $(#[$doc])* $variant, )*
            /// A value this table does not define, kept as sent.
            Other(u64),
        }

        impl $ty {
            /// Every code the table defines, in table order.
            pub const KNOWN: &'static [$ty] = &[$($ty::$variant),*];
            /// The section holding the IANA table.
            pub const TABLE: &'static str = $table;

            /// The wire value.
            pub const fn code(self) -> u64 {
                match self { $($ty::$variant => $code,)* $ty::Other(c) => c }
            }

            /// The code for a wire value; values the table does not define become `Other`.
            pub const fn from_code(code: u64) -> Self {
                match code { $($code => $ty::$variant,)* c => $ty::Other(c) }
            }

            /// The draft's name, e.g. `TRACK_DOES_NOT_EXIST`; `None` for a value it does not define.
            pub const fn name(self) -> Option<&'static str> {
                match Self::from_code(self.code()) {
                    $($ty::$variant => Some($name),)*
                    $ty::Other(_) => None,
                }
            }

            /// The section that defines the code's meaning, e.g. `§9.9`.
            pub const fn section(self) -> Option<&'static str> {
                match Self::from_code(self.code()) {
                    $($ty::$variant => Some($section),)*
                    $ty::Other(_) => None,
                }
            }
        }

        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.code() == other.code()
            }
        }

        impl Eq for $ty {}

        impl Hash for $ty {
            fn hash<H: Hasher>(&self, h: &mut H) {
                self.code().hash(h)
            }
        }

        impl From<u64> for $ty {
            fn from(code: u64) -> Self {
                Self::from_code(code)
            }
        }

        impl From<$ty> for u64 {
            fn from(c: $ty) -> u64 {
                c.code()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{n} (0x{:x})", self.code()),
                    None => write!(f, "0x{:x}", self.code()),
                }
            }
        }
    };
}

code_table! {
    /// SUBSCRIBE_ERROR codes (§13.1.2, meanings in §9.9); TRACK_STATUS_ERROR uses them too
    /// (§9.22: populated "exactly as it would have populated a SUBSCRIBE_ERROR").
    SubscribeErrorCode, "§13.1.2";
    /// An implementation specific or generic error.
    InternalError = 0x0, "INTERNAL_ERROR", "§9.9";
    /// The subscriber is not authorized to subscribe to the track.
    Unauthorized = 0x1, "UNAUTHORIZED", "§9.9";
    /// Not completed before an implementation specific timeout.
    Timeout = 0x2, "TIMEOUT", "§9.9";
    /// The endpoint does not support SUBSCRIBE.
    NotSupported = 0x3, "NOT_SUPPORTED", "§9.9";
    /// The track is not available at the publisher.
    TrackDoesNotExist = 0x4, "TRACK_DOES_NOT_EXIST", "§9.9";
    /// The end is before the start, or already published.
    InvalidRange = 0x5, "INVALID_RANGE", "§9.9";
    /// Invalid Auth Token serialization (§9.2.1.1).
    MalformedAuthToken = 0x10, "MALFORMED_AUTH_TOKEN", "§9.9";
    /// The authorization token has expired (§9.2.1.1).
    ExpiredAuthToken = 0x12, "EXPIRED_AUTH_TOKEN", "§9.9";
}

code_table! {
    /// PUBLISH_DONE status codes (§13.1.3, meanings in §9.12).
    PublishDoneCode, "§13.1.3";
    /// An implementation specific or generic error.
    InternalError = 0x0, "INTERNAL_ERROR", "§9.12";
    /// The subscriber is no longer authorized.
    Unauthorized = 0x1, "UNAUTHORIZED", "§9.12";
    /// The track is no longer being published.
    TrackEnded = 0x2, "TRACK_ENDED", "§9.12";
    /// The publisher reached the end of the subscription's filter.
    SubscriptionEnded = 0x3, "SUBSCRIPTION_ENDED", "§9.12";
    /// The subscriber or publisher sent GOAWAY.
    GoingAway = 0x4, "GOING_AWAY", "§9.12";
    /// The publisher reached the timeout given in SUBSCRIBE_OK.
    Expired = 0x5, "EXPIRED", "§9.12";
    /// The queue of objects for the subscriber exceeds the publisher's limit.
    TooFarBehind = 0x6, "TOO_FAR_BEHIND", "§9.12";
    /// A relay detected the track was malformed (§2.5).
    MalformedTrack = 0x7, "MALFORMED_TRACK", "§9.12";
}

code_table! {
    /// PUBLISH_ERROR codes (§13.1.4, meanings in §9.15).
    PublishErrorCode, "§13.1.4";
    /// An implementation specific or generic error.
    InternalError = 0x0, "INTERNAL_ERROR", "§9.15";
    /// The publisher is not authorized to publish the namespace or track.
    Unauthorized = 0x1, "UNAUTHORIZED", "§9.15";
    /// Not established before an implementation specific timeout.
    Timeout = 0x2, "TIMEOUT", "§9.15";
    /// The endpoint does not support PUBLISH.
    NotSupported = 0x3, "NOT_SUPPORTED", "§9.15";
    /// The namespace or track is not of interest.
    Uninterested = 0x4, "UNINTERESTED", "§9.15";
}

code_table! {
    /// FETCH_ERROR codes (§13.1.5, meanings in §9.18).
    FetchErrorCode, "§13.1.5";
    /// An implementation specific or generic error.
    InternalError = 0x0, "INTERNAL_ERROR", "§9.18";
    /// The subscriber is not authorized to fetch from the track.
    Unauthorized = 0x1, "UNAUTHORIZED", "§9.18";
    /// Not completed before an implementation specific timeout.
    Timeout = 0x2, "TIMEOUT", "§9.18";
    /// The endpoint does not support FETCH.
    NotSupported = 0x3, "NOT_SUPPORTED", "§9.18";
    /// The track is not available at the publisher.
    TrackDoesNotExist = 0x4, "TRACK_DOES_NOT_EXIST", "§9.18";
    /// End before start, start beyond the Largest Location, or no objects published yet.
    InvalidRange = 0x5, "INVALID_RANGE", "§9.18";
    /// No objects exist between Start and End.
    NoObjects = 0x6, "NO_OBJECTS", "§9.18";
    /// A Joining FETCH named no active subscription.
    InvalidJoiningRequestId = 0x7, "INVALID_JOINING_REQUEST_ID", "§9.18";
    /// The range contains objects with unknown status.
    UnknownStatusInRange = 0x8, "UNKNOWN_STATUS_IN_RANGE", "§9.18";
    /// A relay detected the track was malformed (§2.5).
    MalformedTrack = 0x9, "MALFORMED_TRACK", "§9.18";
    /// Invalid Auth Token serialization (§9.2.1.1).
    MalformedAuthToken = 0x10, "MALFORMED_AUTH_TOKEN", "§9.18";
    /// The authorization token has expired (§9.2.1.1).
    ExpiredAuthToken = 0x12, "EXPIRED_AUTH_TOKEN", "§9.18";
}

code_table! {
    /// PUBLISH_NAMESPACE_ERROR codes (§13.1.6, "ANNOUNCE_ERROR Codes"; meanings in §9.25).
    PublishNamespaceErrorCode, "§13.1.6";
    /// An implementation specific or generic error.
    InternalError = 0x0, "INTERNAL_ERROR", "§9.25";
    /// Not authorized to announce the namespace.
    Unauthorized = 0x1, "UNAUTHORIZED", "§9.25";
    /// Not completed before an implementation specific timeout.
    Timeout = 0x2, "TIMEOUT", "§9.25";
    /// The endpoint does not support PUBLISH_NAMESPACE.
    NotSupported = 0x3, "NOT_SUPPORTED", "§9.25";
    /// The namespace is not of interest.
    Uninterested = 0x4, "UNINTERESTED", "§9.25";
    /// Invalid Auth Token serialization (§9.2.1.1).
    MalformedAuthToken = 0x10, "MALFORMED_AUTH_TOKEN", "§9.25";
    /// The authorization token has expired (§9.2.1.1).
    ExpiredAuthToken = 0x12, "EXPIRED_AUTH_TOKEN", "§9.25";
}

code_table! {
    /// SUBSCRIBE_NAMESPACE_ERROR codes (§13.1.7, meanings in §9.30).
    SubscribeNamespaceErrorCode, "§13.1.7";
    /// An implementation specific or generic error.
    InternalError = 0x0, "INTERNAL_ERROR", "§9.30";
    /// Not authorized to subscribe to the namespace prefix.
    Unauthorized = 0x1, "UNAUTHORIZED", "§9.30";
    /// Not completed before an implementation specific timeout.
    Timeout = 0x2, "TIMEOUT", "§9.30";
    /// The endpoint does not support SUBSCRIBE_NAMESPACE.
    NotSupported = 0x3, "NOT_SUPPORTED", "§9.30";
    /// The namespace prefix is not available for subscription.
    NamespacePrefixUnknown = 0x4, "NAMESPACE_PREFIX_UNKNOWN", "§9.30";
    /// The prefix overlaps another SUBSCRIBE_NAMESPACE in the session.
    NamespacePrefixOverlap = 0x5, "NAMESPACE_PREFIX_OVERLAP", "§9.30";
    /// Invalid Auth Token serialization (§9.2.1.1).
    MalformedAuthToken = 0x10, "MALFORMED_AUTH_TOKEN", "§9.30";
    /// The authorization token has expired (§9.2.1.1).
    ExpiredAuthToken = 0x12, "EXPIRED_AUTH_TOKEN", "§9.30";
}

code_table! {
    /// Data stream RESET_STREAM / STOP_SENDING codes (§13.1.8, meanings in §10.4.3).
    ResetCode, "§13.1.8";
    /// An implementation specific error.
    InternalError = 0x0, "INTERNAL_ERROR", "§10.4.3";
    /// UNSUBSCRIBE, FETCH_CANCEL or STOP_SENDING, or the publisher ended the subscription.
    Cancelled = 0x1, "CANCELLED", "§10.4.3";
    /// The delivery timeout was exceeded.
    DeliveryTimeout = 0x2, "DELIVERY_TIMEOUT", "§10.4.3";
    /// The publisher's session is being closed.
    SessionClosed = 0x3, "SESSION_CLOSED", "§10.4.3";
}

/// The Error Code of any *_ERROR message, as sent: what a request handler rejects with. Each
/// family's table converts into it; [`RequestErrorCode::raw`] sends a value no table names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestErrorCode(u64);

impl RequestErrorCode {
    /// INTERNAL_ERROR (0x0), the same in every request error table (§13.1.2-§13.1.7).
    pub const INTERNAL_ERROR: Self = RequestErrorCode(0x0);
    /// UNAUTHORIZED (0x1), the same in every request error table (§13.1.2-§13.1.7).
    pub const UNAUTHORIZED: Self = RequestErrorCode(0x1);
    /// TIMEOUT (0x2), the same in every request error table (§13.1.2-§13.1.7).
    pub const TIMEOUT: Self = RequestErrorCode(0x2);
    /// NOT_SUPPORTED (0x3), the same in every request error table (§13.1.2-§13.1.7).
    pub const NOT_SUPPORTED: Self = RequestErrorCode(0x3);
    /// MALFORMED_AUTH_TOKEN (0x10) in the SUBSCRIBE, FETCH, PUBLISH_NAMESPACE and
    /// SUBSCRIBE_NAMESPACE error tables; PUBLISH_ERROR's table (§13.1.4) does not define 0x10.
    pub const MALFORMED_AUTH_TOKEN: Self = RequestErrorCode(0x10);

    /// A wire value taken as is (e.g. a code a peer sent, passed on).
    pub const fn raw(code: u64) -> Self {
        RequestErrorCode(code)
    }

    /// The wire value.
    pub const fn code(self) -> u64 {
        self.0
    }
}

impl From<RequestErrorCode> for u64 {
    fn from(c: RequestErrorCode) -> u64 {
        c.0
    }
}

macro_rules! into_request_error {
    ($($ty:ident),*) => {$(
        impl From<$ty> for RequestErrorCode {
            fn from(c: $ty) -> Self {
                RequestErrorCode(c.code())
            }
        }
    )*};
}

into_request_error!(
    SubscribeErrorCode,
    PublishErrorCode,
    FetchErrorCode,
    PublishNamespaceErrorCode,
    SubscribeNamespaceErrorCode
);

/// The draft's name of `code` in the error table of message type `ty`: a *_ERROR type, or the
/// request it answers (SUBSCRIBE names SUBSCRIBE_ERROR's table). `None` when that table does not
/// define the value, or `ty` has no error reply.
pub fn request_error_name(ty: MessageType, code: u64) -> Option<&'static str> {
    use MessageType as M;
    let err = match ty.error_type() {
        Some(e) => e,
        None => ty,
    };
    match err {
        M::SubscribeError | M::TrackStatusError => SubscribeErrorCode::from_code(code).name(),
        M::PublishError => PublishErrorCode::from_code(code).name(),
        M::FetchError => FetchErrorCode::from_code(code).name(),
        M::PublishNamespaceError => PublishNamespaceErrorCode::from_code(code).name(),
        M::SubscribeNamespaceError => SubscribeNamespaceErrorCode::from_code(code).name(),
        _ => None,
    }
}

/// The draft's name of session termination code `code` (§13.1.1), if it defines one.
pub fn session_code_name(code: u64) -> Option<&'static str> {
    SessionErrorCode::from_code(code).map(SessionErrorCode::name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageType as M;

    /// Every table row of §13.1.2–§13.1.8, copied by hand from the draft: (table, code, name).
    #[test]
    fn tables_match_section_13_1() {
        let rows: &[(M, &[(u64, &str)])] = &[
            (
                M::SubscribeError,
                &[
                    (0x0, "INTERNAL_ERROR"),
                    (0x1, "UNAUTHORIZED"),
                    (0x2, "TIMEOUT"),
                    (0x3, "NOT_SUPPORTED"),
                    (0x4, "TRACK_DOES_NOT_EXIST"),
                    (0x5, "INVALID_RANGE"),
                    (0x10, "MALFORMED_AUTH_TOKEN"),
                    (0x12, "EXPIRED_AUTH_TOKEN"),
                ],
            ),
            (
                M::PublishError,
                &[
                    (0x0, "INTERNAL_ERROR"),
                    (0x1, "UNAUTHORIZED"),
                    (0x2, "TIMEOUT"),
                    (0x3, "NOT_SUPPORTED"),
                    (0x4, "UNINTERESTED"),
                ],
            ),
            (
                M::FetchError,
                &[
                    (0x0, "INTERNAL_ERROR"),
                    (0x1, "UNAUTHORIZED"),
                    (0x2, "TIMEOUT"),
                    (0x3, "NOT_SUPPORTED"),
                    (0x4, "TRACK_DOES_NOT_EXIST"),
                    (0x5, "INVALID_RANGE"),
                    (0x6, "NO_OBJECTS"),
                    (0x7, "INVALID_JOINING_REQUEST_ID"),
                    (0x8, "UNKNOWN_STATUS_IN_RANGE"),
                    (0x9, "MALFORMED_TRACK"),
                    (0x10, "MALFORMED_AUTH_TOKEN"),
                    (0x12, "EXPIRED_AUTH_TOKEN"),
                ],
            ),
            (
                M::PublishNamespaceError,
                &[
                    (0x0, "INTERNAL_ERROR"),
                    (0x1, "UNAUTHORIZED"),
                    (0x2, "TIMEOUT"),
                    (0x3, "NOT_SUPPORTED"),
                    (0x4, "UNINTERESTED"),
                    (0x10, "MALFORMED_AUTH_TOKEN"),
                    (0x12, "EXPIRED_AUTH_TOKEN"),
                ],
            ),
            (
                M::SubscribeNamespaceError,
                &[
                    (0x0, "INTERNAL_ERROR"),
                    (0x1, "UNAUTHORIZED"),
                    (0x2, "TIMEOUT"),
                    (0x3, "NOT_SUPPORTED"),
                    (0x4, "NAMESPACE_PREFIX_UNKNOWN"),
                    (0x5, "NAMESPACE_PREFIX_OVERLAP"),
                    (0x10, "MALFORMED_AUTH_TOKEN"),
                    (0x12, "EXPIRED_AUTH_TOKEN"),
                ],
            ),
        ];
        for (ty, table) in rows {
            for code in 0..0x20u64 {
                let want = table.iter().find(|(c, _)| *c == code).map(|(_, n)| *n);
                assert_eq!(
                    request_error_name(*ty, code),
                    want,
                    "{} 0x{code:x}",
                    ty.name()
                );
            }
        }
        // §9.22: TRACK_STATUS_ERROR is populated as SUBSCRIBE_ERROR; requests name their reply's table.
        for code in 0..0x20u64 {
            let sub = request_error_name(M::SubscribeError, code);
            assert_eq!(request_error_name(M::TrackStatusError, code), sub);
            assert_eq!(request_error_name(M::TrackStatus, code), sub);
            assert_eq!(request_error_name(M::Subscribe, code), sub);
        }
        assert_eq!(request_error_name(M::PublishDone, 0x2), None);

        let done: Vec<_> = PublishDoneCode::KNOWN
            .iter()
            .map(|c| (c.code(), c.name().unwrap()))
            .collect();
        assert_eq!(
            done,
            [
                (0x0, "INTERNAL_ERROR"),
                (0x1, "UNAUTHORIZED"),
                (0x2, "TRACK_ENDED"),
                (0x3, "SUBSCRIPTION_ENDED"),
                (0x4, "GOING_AWAY"),
                (0x5, "EXPIRED"),
                (0x6, "TOO_FAR_BEHIND"),
                (0x7, "MALFORMED_TRACK"),
            ]
        );
        let reset: Vec<_> = ResetCode::KNOWN
            .iter()
            .map(|c| (c.code(), c.name().unwrap()))
            .collect();
        assert_eq!(
            reset,
            [
                (0x0, "INTERNAL_ERROR"),
                (0x1, "CANCELLED"),
                (0x2, "DELIVERY_TIMEOUT"),
                (0x3, "SESSION_CLOSED")
            ]
        );
        assert_eq!(session_code_name(0x4), Some("INVALID_REQUEST_ID"));
        // The codes every request table shares (§13.1.2-§13.1.7).
        let shared = [
            RequestErrorCode::INTERNAL_ERROR,
            RequestErrorCode::UNAUTHORIZED,
            RequestErrorCode::TIMEOUT,
            RequestErrorCode::NOT_SUPPORTED,
        ];
        for (ty, _) in rows {
            let names: Vec<_> = shared
                .iter()
                .map(|c| request_error_name(*ty, c.code()))
                .collect();
            let want = ["INTERNAL_ERROR", "UNAUTHORIZED", "TIMEOUT", "NOT_SUPPORTED"].map(Some);
            assert_eq!(names, want, "{}", ty.name());
        }
        assert_eq!(session_code_name(0x1A), Some("MALFORMED_AUTHORITY"));
        assert_eq!(session_code_name(0xA), None);
    }

    #[test]
    fn unknown_values_round_trip_and_compare_by_value() {
        for v in [0x4, 0x11, 0x13, u64::MAX] {
            assert_eq!(FetchErrorCode::from_code(v).code(), v);
            assert_eq!(PublishDoneCode::from(v).code(), v);
            assert_eq!(u64::from(ResetCode::from(v)), v);
        }
        assert_eq!(FetchErrorCode::Other(0x11).name(), None);
        assert_eq!(FetchErrorCode::Other(0x11).to_string(), "0x11");
        // A known value built as Other is the same code and reads as its name.
        assert_eq!(
            SubscribeErrorCode::Other(0x4),
            SubscribeErrorCode::TrackDoesNotExist
        );
        assert_eq!(
            SubscribeErrorCode::Other(0x4).name(),
            Some("TRACK_DOES_NOT_EXIST")
        );
        assert_eq!(PublishDoneCode::GoingAway.to_string(), "GOING_AWAY (0x4)");
        assert_eq!(PublishDoneCode::GoingAway.section(), Some("§9.12"));
        assert_eq!(
            RequestErrorCode::from(SubscribeErrorCode::TrackDoesNotExist).code(),
            PublishDoneCode::GoingAway.code()
        );
    }
}
