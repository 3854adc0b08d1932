//! Opaque bytes on the wire, shown as text when they are readable.

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::Deref;

/// Opaque bytes (a namespace field, track name, reason phrase, payload...). Serializes as a string
/// when the bytes are UTF-8 with no control character, else as `{"hex": "..."}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Blob(pub Bytes);

impl Blob {
    /// Empty bytes.
    pub const EMPTY: Blob = Blob(Bytes::new());

    /// Wraps bytes without copying.
    pub fn new(b: impl Into<Bytes>) -> Self {
        Blob(b.into())
    }

    /// The bytes as text when they are readable.
    pub fn as_text(&self) -> Option<&str> {
        let s = std::str::from_utf8(&self.0).ok()?;
        if s.chars().any(char::is_control) {
            None
        } else {
            Some(s)
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Blob {
    fn from(s: &str) -> Self {
        Blob(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Blob {
    fn from(s: String) -> Self {
        Blob(Bytes::from(s))
    }
}

impl From<Bytes> for Blob {
    fn from(b: Bytes) -> Self {
        Blob(b)
    }
}

impl From<Vec<u8>> for Blob {
    fn from(b: Vec<u8>) -> Self {
        Blob(Bytes::from(b))
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_text() {
            Some(s) => write!(f, "{s:?}"),
            None => write!(f, "0x{}", hex::encode(&self.0)),
        }
    }
}

impl fmt::Display for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_text() {
            Some(s) => f.write_str(s),
            None => write!(f, "0x{}", hex::encode(&self.0)),
        }
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_text() {
            Some(text) => s.serialize_str(text),
            None => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("hex", &hex::encode(&self.0))?;
                m.end()
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BlobRepr {
    Text(String),
    Hex { hex: String },
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match BlobRepr::deserialize(d)? {
            BlobRepr::Text(s) => Ok(Blob::from(s)),
            BlobRepr::Hex { hex } => hex::decode(hex)
                .map(Blob::from)
                .map_err(serde::de::Error::custom),
        }
    }
}
