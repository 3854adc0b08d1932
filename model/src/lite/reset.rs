//! Stream reset codes as moq-dev puts them on the wire.
//!
//! moq-dev's transports (web-transport-quinn over `web-transport-proto`) carry every
//! RESET_STREAM / STOP_SENDING code in WebTransport's slice of the HTTP/3 error space, even on a
//! raw QUIC `moql` connection: application code `n` (a `u32`) travels as
//! `0x52e4a40fa8db + n + n / 0x1e`, skipping the reserved codepoints `0x1f * N + 0x21` of HTTP/3
//! (draft-ietf-webtrans-http3 §4.3). [`to_code`] and [`from_code`] convert. Connection close codes
//! are not mapped.
//!
//! The application codes themselves differ between moq-dev releases (the texts define none):
//!
//! | condition | moq-lite 0.13 (relay/clock 0.10.5): `Error::to_code` | moq-net 0.3 (relay 0.17.10): `StreamError::to_code` |
//! |---|---|---|
//! | cancelled (nobody reads any more) | 0 (wire `…a8db`) | 1 (wire `…a8dc`) |
//! | internal / unclassified | — | 0 |
//! | old group | 2 | 0x34 |
//! | timeout | 3 | 0x2 (delivery timeout) |
//! | decode error | 5 | 0x12 (malformed track) |
//! | not found | 13 | 0x33 |
//! | application code `a` | `a + 64` | `a + 64` |
//!
//! The two constant sets below list them all. moq-lite 0.13 uses the same numbers to close the
//! session (unmapped); moq-net 0.3 closes sessions with draft-14's codes (0x3 protocol violation,
//! 0x15 version negotiation failed, ...).

/// The first code of WebTransport's range in the HTTP/3 error space (application code 0).
pub const WEBTRANSPORT_FIRST: u64 = 0x52e4_a40f_a8db;
/// The last code of the range (application code `u32::MAX`).
pub const WEBTRANSPORT_LAST: u64 = 0x52e5_ac98_3162;

/// The QUIC error code that carries application stream code `app`.
pub const fn to_code(app: u32) -> u64 {
    WEBTRANSPORT_FIRST + app as u64 + app as u64 / 0x1e
}

/// The application stream code a QUIC error code carries: `None` outside the WebTransport range
/// and for its reserved codepoints (`(code - first) % 0x1f == 0x1e`). moq-dev's decoder does not
/// skip the reserved ones: it maps `…a8f9` to 30 like `…a8fa` (DISAGREEMENTS L11).
pub const fn from_code(code: u64) -> Option<u32> {
    if code < WEBTRANSPORT_FIRST || code > WEBTRANSPORT_LAST {
        return None;
    }
    let offset = code - WEBTRANSPORT_FIRST;
    if offset % 0x1f == 0x1e {
        return None;
    }
    Some((offset - offset / 0x1f) as u32)
}

/// moq-lite 0.13.1 `Error::to_code` (moq-relay 0.10.5, moq-clock 0.10.5): stream resets, stop
/// sending and session close all use these.
pub mod moq_lite_0_13 {
    /// Cancelled: the normal end of an unwanted stream.
    pub const CANCEL: u32 = 0;
    /// A required extension is missing.
    pub const REQUIRED_EXTENSION: u32 = 1;
    /// The group is older than the latest one.
    pub const OLD: u32 = 2;
    /// Took too long.
    pub const TIMEOUT: u32 = 3;
    /// Transport error.
    pub const TRANSPORT: u32 = 4;
    /// A message could not be decoded.
    pub const DECODE: u32 = 5;
    /// Not authorized.
    pub const UNAUTHORIZED: u32 = 6;
    /// No common version.
    pub const VERSION: u32 = 9;
    /// Unexpected stream type.
    pub const UNEXPECTED_STREAM: u32 = 10;
    /// A varint was out of range.
    pub const BOUNDS_EXCEEDED: u32 = 11;
    /// Duplicate broadcast, track or ID.
    pub const DUPLICATE: u32 = 12;
    /// Broadcast or track not found.
    pub const NOT_FOUND: u32 = 13;
    /// Frame size disagrees with its content.
    pub const WRONG_SIZE: u32 = 14;
    /// Protocol violation.
    pub const PROTOCOL_VIOLATION: u32 = 15;
    /// Unexpected message.
    pub const UNEXPECTED_MESSAGE: u32 = 16;
    /// Unsupported.
    pub const UNSUPPORTED: u32 = 17;
    /// Too large.
    pub const TOO_LARGE: u32 = 18;
    /// Too many parameters.
    pub const TOO_MANY_PARAMETERS: u32 = 19;
    /// Invalid role.
    pub const INVALID_ROLE: u32 = 20;
    /// Application codes start here (`app + 64`).
    pub const APP_BASE: u32 = 64;
}

/// moq-net 0.3.18 `StreamError::to_code` (moq-relay 0.17.10): stream resets and stop sending.
pub mod moq_net_0_3 {
    /// Internal error.
    pub const INTERNAL: u32 = 0x0;
    /// Cancelled.
    pub const CANCEL: u32 = 0x1;
    /// Delivery timeout.
    pub const DELIVERY_TIMEOUT: u32 = 0x2;
    /// The session closed (the reason travels on the session close).
    pub const SESSION_CLOSED: u32 = 0x3;
    /// Going away.
    pub const GOING_AWAY: u32 = 0x4;
    /// The subscriber fell too far behind.
    pub const TOO_FAR_BEHIND: u32 = 0x5;
    /// Malformed track.
    pub const MALFORMED_TRACK: u32 = 0x12;
    /// Control message timeout.
    pub const CONTROL_TIMEOUT: u32 = 0x31;
    /// Group too large.
    pub const GROUP_TOO_LARGE: u32 = 0x32;
    /// Broadcast or track not found.
    pub const NOT_FOUND: u32 = 0x33;
    /// The group is older than the latest one.
    pub const OLD: u32 = 0x34;
    /// Evicted from the cache.
    pub const EVICTED: u32 = 0x35;
    /// No route to the broadcast.
    pub const UNROUTABLE: u32 = 0x36;
    /// Frame size disagrees with its content.
    pub const WRONG_SIZE: u32 = 0x37;
    /// Frame too large.
    pub const FRAME_TOO_LARGE: u32 = 0x38;
    /// Timestamp mismatch.
    pub const TIMESTAMP_MISMATCH: u32 = 0x39;
    /// Application codes start here (`app + 64`).
    pub const APP_BASE: u32 = 64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_matches_moq_dev() {
        assert_eq!(to_code(0), 0x52e4a40fa8db);
        assert_eq!(to_code(29), 0x52e4a40fa8f8);
        assert_eq!(to_code(30), 0x52e4a40fa8fa);
        assert_eq!(to_code(u32::MAX), WEBTRANSPORT_LAST);
        assert_eq!(from_code(0x52e4a40fa8f9), None);
        assert_eq!(from_code(WEBTRANSPORT_FIRST - 1), None);
        assert_eq!(from_code(WEBTRANSPORT_LAST + 1), None);
        for n in (0..2000u32).chain([u32::MAX - 1, u32::MAX]) {
            assert_eq!(from_code(to_code(n)), Some(n), "{n}");
        }
    }
}
