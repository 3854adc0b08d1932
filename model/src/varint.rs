//! QUIC variable-length integers (RFC 9000 §16), as used throughout draft-14 (§1.4).

use crate::codec::{need, Encoding};
use crate::error::{DecodeError, EncodeError};
use crate::limits::MAX_VARINT;
use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};

/// A 62-bit unsigned integer that travels as a QUIC varint.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct VarInt(u64);

impl VarInt {
    /// The largest value: 2^62 - 1.
    pub const MAX: VarInt = VarInt(MAX_VARINT);

    /// Wraps a value, failing when it exceeds 2^62 - 1.
    pub fn new(value: u64) -> Result<Self, EncodeError> {
        if value > MAX_VARINT {
            Err(EncodeError::VarintRange(value))
        } else {
            Ok(VarInt(value))
        }
    }

    /// The value.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Bytes the minimal encoding takes.
    pub fn size(self) -> usize {
        size(self.0)
    }

    /// Reads one varint.
    pub fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        read(buf).map(VarInt)
    }

    /// Writes the varint (minimal, or 8 bytes when `enc.wide_varints`).
    pub fn encode<B: BufMut>(self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        write(buf, self.0, enc)
    }
}

impl From<u32> for VarInt {
    fn from(v: u32) -> Self {
        VarInt(u64::from(v))
    }
}

impl TryFrom<u64> for VarInt {
    type Error = EncodeError;
    fn try_from(v: u64) -> Result<Self, EncodeError> {
        VarInt::new(v)
    }
}

/// Bytes the minimal encoding of `v` takes (8 for anything above 2^30 - 1).
pub fn size(v: u64) -> usize {
    if v < (1 << 6) {
        1
    } else if v < (1 << 14) {
        2
    } else if v < (1 << 30) {
        4
    } else {
        8
    }
}

/// Reads one varint; `Short` when the buffer ends inside it.
#[inline]
pub fn read<B: Buf>(buf: &mut B) -> Result<u64, DecodeError> {
    // Fast path: the whole varint is in the first contiguous chunk (always so for `&[u8]` and
    // `Bytes`), read straight from it.
    let chunk = buf.chunk();
    if let Some(&first) = chunk.first() {
        let len = 1usize << (first >> 6);
        if let Some(b) = chunk.get(..len) {
            let v = match *b {
                [a] => u64::from(a),
                [a, b] => u64::from(u16::from_be_bytes([a & 0x3f, b])),
                [a, b, c, d] => u64::from(u32::from_be_bytes([a & 0x3f, b, c, d])),
                [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a & 0x3f, b, c, d, e, f, g, h]),
                // Lengths are 1, 2, 4 or 8: not reached, and safe if it were.
                _ => return read_split(buf),
            };
            buf.advance(len);
            return Ok(v);
        }
    }
    read_split(buf)
}

/// The varint of [`read`] across chunk boundaries (or a short buffer).
#[cold]
fn read_split<B: Buf>(buf: &mut B) -> Result<u64, DecodeError> {
    need(buf, 1)?;
    let first = buf.chunk()[0];
    let len = 1usize << (first >> 6);
    need(buf, len)?;
    let v = match len {
        1 => u64::from(buf.get_u8()),
        2 => u64::from(buf.get_u16() & 0x3fff),
        4 => u64::from(buf.get_u32() & 0x3fff_ffff),
        _ => buf.get_u64() & 0x3fff_ffff_ffff_ffff,
    };
    Ok(v)
}

/// Writes `v` as a varint: minimal, or always 8 bytes when `enc.wide_varints`.
pub fn write<B: BufMut>(buf: &mut B, v: u64, enc: Encoding) -> Result<(), EncodeError> {
    if v > MAX_VARINT {
        return Err(EncodeError::VarintRange(v));
    }
    let len = if enc.wide_varints { 8 } else { size(v) };
    if buf.remaining_mut() < len {
        return Err(EncodeError::BufferFull);
    }
    match len {
        1 => buf.put_u8(v as u8),
        2 => buf.put_u16(0x4000 | v as u16),
        4 => buf.put_u32(0x8000_0000 | v as u32),
        _ => buf.put_u64(0xc000_0000_0000_0000 | v),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9000_examples() {
        // RFC 9000 Appendix A.1 sample encodings.
        for (hex, value) in [
            ("c2197c5eff14e88c", 151_288_809_941_952_652u64),
            ("9d7f3e7d", 494_878_333),
            ("7bbd", 15_293),
            ("25", 37),
            ("4025", 37),
        ] {
            let bytes = hex::decode(hex).unwrap();
            let mut b = &bytes[..];
            assert_eq!(read(&mut b).unwrap(), value, "{hex}");
            assert!(b.is_empty());
        }
    }

    #[test]
    fn short_inside_varint() {
        let mut b: &[u8] = &[0x9d, 0x7f, 0x3e];
        assert_eq!(read(&mut b), Err(DecodeError::Short));
        let mut e: &[u8] = &[];
        assert_eq!(read(&mut e), Err(DecodeError::Short));
    }

    #[test]
    fn rejects_values_above_62_bits() {
        let mut out = Vec::new();
        assert_eq!(
            write(&mut out, 1 << 62, Encoding::default()),
            Err(EncodeError::VarintRange(1 << 62))
        );
    }
}
