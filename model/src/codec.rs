//! The `Encode`/`Decode` traits, encoding options and the byte-level helpers every element uses.

use crate::error::{DecodeError, EncodeError, Rule};
use crate::varint;
use crate::version::Version;
use bytes::{buf::UninitSlice, Buf, BufMut, Bytes};
use std::mem::MaybeUninit;

/// How to encode: the negotiated version, and whether to widen every varint to 8 bytes
/// (the draft allows any varint width; the wide form exercises decoders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Encoding {
    /// The negotiated version.
    pub version: Version,
    /// Write every varint in its 8-byte form.
    pub wide_varints: bool,
}

impl Encoding {
    /// Minimal encoding for `version`.
    pub fn new(version: Version) -> Self {
        Encoding {
            version,
            wide_varints: false,
        }
    }

    /// Every varint widened to 8 bytes.
    pub fn wide(version: Version) -> Self {
        Encoding {
            version,
            wide_varints: true,
        }
    }
}

/// A wire element that can be read from any `Buf`.
pub trait Decode: Sized {
    /// Reads the element; `Short` when the buffer ends inside it.
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError>;
}

/// A wire element that can be written to any `BufMut`.
pub trait Encode {
    /// Writes the element.
    fn encode<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError>;

    /// Bytes [`Encode::encode`] writes, counted without a buffer.
    fn encoded_len(&self, enc: Encoding) -> Result<usize, EncodeError> {
        let mut sizer = Sizer::default();
        self.encode(&mut sizer, enc)?;
        Ok(sizer.len())
    }
}

/// A `BufMut` that only counts what is written, so length prefixes need no temporary buffer.
pub struct Sizer {
    len: usize,
    scratch: [MaybeUninit<u8>; 64],
}

impl Default for Sizer {
    fn default() -> Self {
        Sizer {
            len: 0,
            scratch: [MaybeUninit::uninit(); 64],
        }
    }
}

impl Sizer {
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

// SAFETY: `chunk_mut` hands out a scratch area that is never read; `advance_mut` only counts.
#[allow(unsafe_code)]
unsafe impl BufMut for Sizer {
    fn remaining_mut(&self) -> usize {
        usize::MAX - self.len
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        self.len += cnt;
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        UninitSlice::uninit(&mut self.scratch)
    }

    fn put_slice(&mut self, src: &[u8]) {
        self.len += src.len();
    }

    fn put_u8(&mut self, _n: u8) {
        self.len += 1;
    }

    fn put_bytes(&mut self, _val: u8, cnt: usize) {
        self.len += cnt;
    }
}

/// `Short` unless `n` more bytes are available.
pub fn need<B: Buf>(buf: &B, n: usize) -> Result<(), DecodeError> {
    if buf.remaining() < n {
        Err(DecodeError::Short)
    } else {
        Ok(())
    }
}

/// Reads one byte.
pub fn read_u8<B: Buf>(buf: &mut B) -> Result<u8, DecodeError> {
    need(buf, 1)?;
    Ok(buf.get_u8())
}

/// Reads an 8-bit 0/1 flag; any other value breaks `rule`.
pub fn read_bool<B: Buf>(buf: &mut B, rule: Rule, field: &str) -> Result<bool, DecodeError> {
    match read_u8(buf)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(DecodeError::invalid(
            rule,
            format!("{field} = {v}, must be 0 or 1"),
        )),
    }
}

/// Reads exactly `len` bytes, zero-copy when the buffer is `Bytes`.
pub fn read_exact<B: Buf>(buf: &mut B, len: usize) -> Result<Bytes, DecodeError> {
    need(buf, len)?;
    Ok(buf.copy_to_bytes(len))
}

/// Reads a varint length, checks it against `max` (breaking `rule`), then that many bytes.
pub fn read_len_bytes<B: Buf>(
    buf: &mut B,
    max: usize,
    rule: Rule,
    what: &str,
) -> Result<Bytes, DecodeError> {
    let len = varint::read(buf)?;
    if len > max as u64 {
        return Err(DecodeError::invalid(
            rule,
            format!("{what} length {len} exceeds the maximum {max}"),
        ));
    }
    read_exact(buf, len as usize)
}

/// Reads a varint count, to be used only as an upper bound together with the bytes present.
pub fn read_count<B: Buf>(buf: &mut B) -> Result<u64, DecodeError> {
    varint::read(buf)
}

/// Capacity to reserve for `count` elements of at least one byte each: never more than the bytes
/// that could hold them, nor more than [`MAX_RESERVE`] (an element may be far larger than its
/// wire bytes; the vector grows past this as elements actually decode).
pub fn bounded_capacity<B: Buf>(buf: &B, count: u64) -> usize {
    usize::try_from(count)
        .unwrap_or(usize::MAX)
        .min(buf.remaining())
        .min(MAX_RESERVE)
}

/// The most elements reserved ahead of decoding them.
pub const MAX_RESERVE: usize = 64;

/// Writes a varint.
pub fn put_varint<B: BufMut>(buf: &mut B, v: u64, enc: Encoding) -> Result<(), EncodeError> {
    varint::write(buf, v, enc)
}

/// Writes one byte.
pub fn put_u8<B: BufMut>(buf: &mut B, v: u8) -> Result<(), EncodeError> {
    if buf.remaining_mut() < 1 {
        return Err(EncodeError::BufferFull);
    }
    buf.put_u8(v);
    Ok(())
}

/// Writes raw bytes.
pub fn put_slice<B: BufMut>(buf: &mut B, v: &[u8]) -> Result<(), EncodeError> {
    if buf.remaining_mut() < v.len() {
        return Err(EncodeError::BufferFull);
    }
    buf.put_slice(v);
    Ok(())
}

/// Writes a varint length then the bytes, checking the length against `max`.
pub fn put_len_bytes<B: BufMut>(
    buf: &mut B,
    v: &[u8],
    max: usize,
    rule: Rule,
    enc: Encoding,
) -> Result<(), EncodeError> {
    if v.len() > max {
        return Err(EncodeError::limit(
            rule,
            format!("length {} exceeds the maximum {max}", v.len()),
        ));
    }
    put_varint(buf, v.len() as u64, enc)?;
    put_slice(buf, v)
}

/// Runs `f` on exactly `len` bytes of `buf`: running out inside, or leftover bytes, break `rule`.
pub fn decode_exact<B: Buf, T>(
    buf: &mut B,
    len: usize,
    rule: Rule,
    what: &str,
    f: impl FnOnce(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut block = read_exact(buf, len)?;
    let v = f(&mut block).map_err(|e| e.short_as(rule, &format!("{what} ends inside a field")))?;
    if block.has_remaining() {
        return Err(DecodeError::invalid(
            rule,
            format!("{} bytes left over after {what}", block.remaining()),
        ));
    }
    Ok(v)
}
