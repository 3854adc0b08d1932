//! Locations, track names, reason phrases and the small enums shared by many messages.

use crate::blob::Blob;
use crate::codec::{
    bounded_capacity, put_len_bytes, put_u8, put_varint, read_count, read_len_bytes, read_u8,
    Encoding,
};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::limits::*;
use crate::varint;
use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A Group and Object ID pair, ordered by group then object (§1.4.1).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct Location {
    /// Group ID.
    pub group: u64,
    /// Object ID within the group.
    pub object: u64,
}

impl Location {
    /// A location.
    pub const fn new(group: u64, object: u64) -> Self {
        Location { group, object }
    }

    /// The first location after a track's Largest Location, {0, 0} when it has none yet: where
    /// a Largest Object subscription starts (§9.7).
    pub fn after_largest(largest: Option<Location>) -> Location {
        largest.map_or(Location::new(0, 0), |l| {
            Location::new(l.group, l.object.saturating_add(1))
        })
    }

    /// Reads Group (i), Object (i).
    pub fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Ok(Location {
            group: varint::read(buf)?,
            object: varint::read(buf)?,
        })
    }

    /// Writes Group (i), Object (i).
    pub fn encode<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_varint(buf, self.group, enc)?;
        put_varint(buf, self.object, enc)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}, {}}}", self.group, self.object)
    }
}

/// An ordered tuple of byte fields naming a namespace or a namespace prefix (§2.4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrackNamespace(pub Vec<Blob>);

impl TrackNamespace {
    /// A namespace from text fields, e.g. `["moq-test", "interop"]`.
    pub fn from_strs<S: AsRef<str>>(fields: &[S]) -> Self {
        TrackNamespace(fields.iter().map(|f| Blob::from(f.as_ref())).collect())
    }

    /// Parses `a/b/c` into fields (an empty string is the empty tuple).
    pub fn from_path(path: &str) -> Self {
        if path.is_empty() {
            return TrackNamespace::default();
        }
        TrackNamespace(path.split('/').map(Blob::from).collect())
    }

    /// The fields.
    pub fn fields(&self) -> &[Blob] {
        &self.0
    }

    /// Total bytes of the fields.
    pub fn byte_len(&self) -> usize {
        self.0.iter().map(|f| f.len()).sum()
    }

    /// Whether `self` is a prefix of (or equal to) `other`, field by field.
    pub fn is_prefix_of(&self, other: &TrackNamespace) -> bool {
        self.0.len() <= other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| a == b)
    }

    /// Reads a tuple of `min..=32` fields, each at most 4,096 bytes.
    pub fn decode<B: Buf>(buf: &mut B, min_fields: usize) -> Result<Self, DecodeError> {
        let n = read_count(buf)?;
        if n < min_fields as u64 || n > MAX_NAMESPACE_FIELDS as u64 {
            return Err(DecodeError::invalid(
                Rule::NamespaceFieldCount,
                format!("{n} namespace fields, allowed {min_fields}..={MAX_NAMESPACE_FIELDS}"),
            ));
        }
        let mut fields = Vec::with_capacity(bounded_capacity(buf, n));
        let mut total = 0usize;
        for _ in 0..n {
            let f = read_len_bytes(
                buf,
                MAX_FULL_TRACK_NAME,
                Rule::FullTrackNameTooLong,
                "namespace field",
            )?;
            total += f.len();
            if total > MAX_FULL_TRACK_NAME {
                return Err(DecodeError::invalid(
                    Rule::FullTrackNameTooLong,
                    format!("namespace fields total {total} bytes, maximum {MAX_FULL_TRACK_NAME}"),
                ));
            }
            fields.push(Blob(f));
        }
        Ok(TrackNamespace(fields))
    }

    /// Writes the tuple, checking `min..=32` fields.
    pub fn encode<B: BufMut>(
        &self,
        buf: &mut B,
        min_fields: usize,
        enc: Encoding,
    ) -> Result<(), EncodeError> {
        let n = self.0.len();
        if n < min_fields || n > MAX_NAMESPACE_FIELDS {
            return Err(EncodeError::limit(
                Rule::NamespaceFieldCount,
                format!("{n} namespace fields, allowed {min_fields}..={MAX_NAMESPACE_FIELDS}"),
            ));
        }
        if self.byte_len() > MAX_FULL_TRACK_NAME {
            return Err(EncodeError::limit(
                Rule::FullTrackNameTooLong,
                format!("namespace is {} bytes", self.byte_len()),
            ));
        }
        put_varint(buf, n as u64, enc)?;
        for f in &self.0 {
            put_len_bytes(buf, f, MAX_FULL_TRACK_NAME, Rule::FullTrackNameTooLong, enc)?;
        }
        Ok(())
    }
}

impl fmt::Display for TrackNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write!(f, "{field}")?;
        }
        Ok(())
    }
}

/// Reads a Track Name (varint length + bytes) for `ns`, enforcing the 4,096-byte full name limit.
pub fn decode_track_name<B: Buf>(buf: &mut B, ns: &TrackNamespace) -> Result<Blob, DecodeError> {
    let budget = MAX_FULL_TRACK_NAME - ns.byte_len().min(MAX_FULL_TRACK_NAME);
    let len = varint::read(buf)?;
    if len > budget as u64 {
        return Err(DecodeError::invalid(
            Rule::FullTrackNameTooLong,
            format!(
                "full track name {} bytes, maximum {MAX_FULL_TRACK_NAME}",
                ns.byte_len() as u64 + len
            ),
        ));
    }
    crate::codec::read_exact(buf, len as usize).map(Blob)
}

/// Writes a Track Name, enforcing the 4,096-byte full name limit together with `ns`.
pub fn encode_track_name<B: BufMut>(
    buf: &mut B,
    ns: &TrackNamespace,
    name: &Blob,
    enc: Encoding,
) -> Result<(), EncodeError> {
    let total = ns.byte_len() + name.len();
    if total > MAX_FULL_TRACK_NAME {
        return Err(EncodeError::limit(
            Rule::FullTrackNameTooLong,
            format!("full track name {total} bytes"),
        ));
    }
    put_len_bytes(
        buf,
        name,
        MAX_FULL_TRACK_NAME,
        Rule::FullTrackNameTooLong,
        enc,
    )
}

/// Reads a Reason Phrase (at most 1,024 bytes, §1.4.3).
pub fn decode_reason<B: Buf>(buf: &mut B) -> Result<Blob, DecodeError> {
    read_len_bytes(
        buf,
        MAX_REASON_PHRASE,
        Rule::ReasonPhraseTooLong,
        "reason phrase",
    )
    .map(Blob)
}

/// Writes a Reason Phrase (at most 1,024 bytes).
pub fn encode_reason<B: BufMut>(buf: &mut B, r: &Blob, enc: Encoding) -> Result<(), EncodeError> {
    put_len_bytes(buf, r, MAX_REASON_PHRASE, Rule::ReasonPhraseTooLong, enc)
}

/// The order in which groups are delivered (§7, §9.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GroupOrder {
    /// 0x0: use the original publisher's order (requests only).
    #[default]
    Original,
    /// 0x1: ascending group IDs.
    Ascending,
    /// 0x2: descending group IDs.
    Descending,
}

impl GroupOrder {
    /// The wire byte.
    pub fn code(self) -> u8 {
        match self {
            GroupOrder::Original => 0,
            GroupOrder::Ascending => 1,
            GroupOrder::Descending => 2,
        }
    }

    /// The order a request resolves to: this one, or the publisher's when this is Original
    /// (§9.7, §9.16).
    pub fn or_publisher(self, publisher: GroupOrder) -> GroupOrder {
        match self {
            GroupOrder::Original => publisher,
            o => o,
        }
    }

    /// Reads a group order; 0 is accepted only when `allow_original`.
    pub fn decode<B: Buf>(buf: &mut B, allow_original: bool) -> Result<Self, DecodeError> {
        match read_u8(buf)? {
            0 if allow_original => Ok(GroupOrder::Original),
            1 => Ok(GroupOrder::Ascending),
            2 => Ok(GroupOrder::Descending),
            v => Err(DecodeError::invalid(
                Rule::InvalidGroupOrder,
                format!(
                    "group order {v}, allowed {}",
                    if allow_original { "0..=2" } else { "1..=2" }
                ),
            )),
        }
    }

    /// Writes the group order; 0 is refused unless `allow_original`.
    pub fn encode<B: BufMut>(self, buf: &mut B, allow_original: bool) -> Result<(), EncodeError> {
        if self == GroupOrder::Original && !allow_original {
            return Err(EncodeError::limit(
                Rule::InvalidGroupOrder,
                "group order 0 is not allowed in this message",
            ));
        }
        put_u8(buf, self.code())
    }
}
