//! The draft's limits as named constants, enforced on decode and on encode.

/// Minimum number of fields in a Track Namespace (§2.4.1).
pub const MIN_NAMESPACE_FIELDS: usize = 1;
/// Maximum number of fields in a Track Namespace or namespace prefix (§2.4.1, §9.28).
pub const MAX_NAMESPACE_FIELDS: usize = 32;
/// Maximum bytes in a Full Track Name: namespace fields plus track name (§2.4.1).
pub const MAX_FULL_TRACK_NAME: usize = 4096;
/// Maximum bytes in a reason phrase (§1.4.3).
pub const MAX_REASON_PHRASE: usize = 1024;
/// Maximum bytes in a GOAWAY New Session URI (§9.4).
pub const MAX_GOAWAY_URI: usize = 8192;
/// Maximum bytes in a key-value pair value (§1.4.2).
pub const MAX_KEY_VALUE: usize = 65_535;
/// Maximum bytes in a control message payload: the Length field is 16 bits (§9).
pub const MAX_CONTROL_PAYLOAD: usize = 65_535;
/// Largest value a QUIC varint carries (RFC 9000 §16).
pub const MAX_VARINT: u64 = (1 << 62) - 1;
/// Default cap on one object's size in a stream reader (a local limit).
pub const DEFAULT_MAX_OBJECT_SIZE: usize = 16 * 1024 * 1024;
