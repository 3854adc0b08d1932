//! Object extension headers (§10.2.1.2, §11), kept byte-exact for forwarding.

use crate::codec::{put_slice, put_varint, read_exact, Encoding, Sizer};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::params::{KeyValuePair, KvValue};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Extension header type: Immutable Extensions (§11.2).
pub const IMMUTABLE_EXTENSIONS: u64 = 0x0B;
/// Extension header type: Prior Group ID Gap (§11.1).
pub const PRIOR_GROUP_ID_GAP: u64 = 0x3C;
/// Extension header type: Prior Object ID Gap (§11.3).
pub const PRIOR_OBJECT_ID_GAP: u64 = 0x3E;

/// An object's extension headers: the exact bytes received, validated as key-value pairs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Extensions {
    raw: Bytes,
}

/// Why an extension could not be read as its type defines (a malformed track, §2.5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed extension header: {0}")]
pub struct MalformedExtension(pub String);

fn parse_pairs(mut b: Bytes) -> Result<Vec<KeyValuePair>, DecodeError> {
    let mut out = Vec::new();
    while b.has_remaining() {
        out.push(KeyValuePair::decode(&mut b)?);
    }
    Ok(out)
}

impl Extensions {
    /// No extensions.
    pub fn empty() -> Self {
        Extensions::default()
    }

    /// Builds the block from pairs (minimal encoding).
    pub fn from_pairs(pairs: &[KeyValuePair]) -> Result<Self, EncodeError> {
        let mut out = BytesMut::new();
        for p in pairs {
            p.encode(&mut out, Encoding::default())?;
        }
        Ok(Extensions { raw: out.freeze() })
    }

    /// Wraps received bytes after checking they are whole key-value pairs.
    pub fn from_raw(raw: Bytes) -> Result<Self, DecodeError> {
        parse_pairs(raw.clone()).map_err(|e| {
            e.short_as(
                Rule::ExtensionHeadersLength,
                "a key-value pair crosses the end of the extension headers",
            )
        })?;
        Ok(Extensions { raw })
    }

    /// The bytes as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The pairs in wire order.
    pub fn pairs(&self) -> Vec<KeyValuePair> {
        // Validated on construction, so parsing cannot fail.
        parse_pairs(self.raw.clone()).unwrap_or_default()
    }

    /// Values of every pair with `key`, in order.
    pub fn get_all(&self, key: u64) -> Vec<KvValue> {
        self.pairs()
            .into_iter()
            .filter(|p| p.key == key)
            .map(|p| p.value)
            .collect()
    }

    fn single_varint(&self, key: u64, name: &str) -> Result<Option<u64>, MalformedExtension> {
        match self.get_all(key).as_slice() {
            [] => Ok(None),
            [KvValue::Varint(v)] => Ok(Some(*v)),
            [_] => Err(MalformedExtension(format!("{name} is not a varint"))),
            _ => Err(MalformedExtension(format!("{name} appears more than once"))),
        }
    }

    /// Prior Group ID Gap (0x3C): groups before this one that will never exist.
    pub fn prior_group_id_gap(&self) -> Result<Option<u64>, MalformedExtension> {
        self.single_varint(PRIOR_GROUP_ID_GAP, "Prior Group ID Gap")
    }

    /// Prior Object ID Gap (0x3E): objects before this one that will never exist.
    pub fn prior_object_id_gap(&self) -> Result<Option<u64>, MalformedExtension> {
        self.single_varint(PRIOR_OBJECT_ID_GAP, "Prior Object ID Gap")
    }

    /// The key-value pairs inside Immutable Extensions (0xB), if present.
    pub fn immutable(&self) -> Result<Option<Vec<KeyValuePair>>, MalformedExtension> {
        let values = self.get_all(IMMUTABLE_EXTENSIONS);
        let bytes = match values.as_slice() {
            [] => return Ok(None),
            [KvValue::Bytes(b)] => b.0.clone(),
            _ => {
                return Err(MalformedExtension(
                    "Immutable Extensions appears more than once".into(),
                ))
            }
        };
        let inner = parse_pairs(bytes)
            .map_err(|e| MalformedExtension(format!("Immutable Extensions: {e}")))?;
        if inner.iter().any(|p| p.key == IMMUTABLE_EXTENSIONS) {
            return Err(MalformedExtension(
                "Immutable Extensions contains another Immutable Extensions".into(),
            ));
        }
        Ok(Some(inner))
    }

    /// Reads Extension Headers Length (i) and the block.
    pub fn decode_block<B: Buf>(b: &mut B) -> Result<Self, DecodeError> {
        let len = crate::varint::read(b)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Short)?;
        Extensions::from_raw(read_exact(b, len)?)
    }

    fn write_pairs<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        if enc.wide_varints {
            for p in self.pairs() {
                p.encode(b, enc)?;
            }
            Ok(())
        } else {
            put_slice(b, &self.raw)
        }
    }

    /// Writes Extension Headers Length (i) and the block (received bytes, unless widening).
    pub fn encode_block<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        let mut sizer = Sizer::default();
        self.write_pairs(&mut sizer, enc)?;
        put_varint(b, sizer.len() as u64, enc)?;
        self.write_pairs(b, enc)
    }
}

impl Serialize for Extensions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.pairs().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Extensions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<KeyValuePair>::deserialize(d)?;
        Extensions::from_pairs(&pairs).map_err(serde::de::Error::custom)
    }
}
