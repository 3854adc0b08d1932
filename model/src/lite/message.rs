//! The `Message Length (i)` framing every moq-lite message shares, and the field helpers the
//! message bodies use (UTF-8 strings, versions).

use crate::blob::Blob;
use crate::codec::{decode_exact, put_len_bytes, put_varint, read_len_bytes, Encoding, Sizer};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::varint;
use crate::version::Version;
use bytes::{Buf, BufMut, Bytes};

/// The largest Message Length accepted or sent: moq-dev's receivers refuse bodies above 64 MiB
/// (moq-net 0.3 `MAX_MESSAGE_SIZE`). The texts set no limit; this one is local
/// ([`Rule::LiteMessageTooLarge`]).
pub const MAX_MESSAGE_LENGTH: usize = 64 * 1024 * 1024;

/// A moq-lite message body: what follows its `Message Length (i)`.
pub trait Message: Sized {
    /// The texts' name, e.g. `SUBSCRIBE`.
    const NAME: &'static str;

    /// Reads the body; `body` holds exactly Message Length bytes. Running out inside a field
    /// or leaving bytes over is reported as [`Rule::LiteMessageLength`] by [`decode_message`].
    fn decode_body(body: &mut Bytes, v: Version) -> Result<Self, DecodeError>;

    /// Writes the body (without the length).
    fn encode_body<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError>;
}

/// Reads `Message Length (i)` and a body of exactly that length. `Short` until the whole
/// message is in `buf`; a length above [`MAX_MESSAGE_LENGTH`] fails as soon as it is read.
pub fn decode_message<T: Message, B: Buf>(buf: &mut B, v: Version) -> Result<T, DecodeError> {
    let len = varint::read(buf)?;
    if len > MAX_MESSAGE_LENGTH as u64 {
        return Err(DecodeError::invalid(
            Rule::LiteMessageTooLarge,
            format!(
                "{} Message Length {len} exceeds the limit {MAX_MESSAGE_LENGTH}",
                T::NAME
            ),
        ));
    }
    decode_exact(
        buf,
        len as usize,
        Rule::LiteMessageLength,
        T::NAME,
        |body| T::decode_body(body, v),
    )
}

/// Writes `Message Length (i)` and the body.
pub fn encode_message<T: Message, B: BufMut>(
    msg: &T,
    buf: &mut B,
    enc: Encoding,
) -> Result<(), EncodeError> {
    let mut sizer = Sizer::default();
    msg.encode_body(&mut sizer, enc)?;
    let len = sizer.len();
    if len > MAX_MESSAGE_LENGTH {
        return Err(EncodeError::limit(
            Rule::LiteMessageTooLarge,
            format!(
                "{} body of {len} bytes exceeds the limit {MAX_MESSAGE_LENGTH}",
                T::NAME
            ),
        ));
    }
    put_varint(buf, len as u64, enc)?;
    msg.encode_body(buf, enc)
}

/// Implements [`crate::Decode`] / [`crate::Encode`] for length-framed lite messages.
macro_rules! framed {
    ($($ty:ty),* $(,)?) => {$(
        impl crate::codec::Decode for $ty {
            fn decode<B: bytes::Buf>(
                buf: &mut B,
                v: crate::version::Version,
            ) -> Result<Self, crate::error::DecodeError> {
                crate::lite::message::decode_message(buf, v)
            }
        }

        impl crate::codec::Encode for $ty {
            fn encode<B: bytes::BufMut>(
                &self,
                buf: &mut B,
                enc: crate::codec::Encoding,
            ) -> Result<(), crate::error::EncodeError> {
                crate::lite::message::encode_message(self, buf, enc)
            }
        }
    )*};
}
pub(crate) use framed;

/// Reads a string field (`(s)`: varint length + UTF-8 bytes), zero-copy.
pub(crate) fn read_text(b: &mut Bytes, what: &str) -> Result<Blob, DecodeError> {
    let bytes = read_len_bytes(b, MAX_MESSAGE_LENGTH, Rule::LiteMessageLength, what)?;
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(DecodeError::invalid(
            Rule::LiteInvalidUtf8,
            format!("{what} is not UTF-8 (byte {})", e.valid_up_to()),
        ));
    }
    Ok(Blob(bytes))
}

/// Writes a string field; refuses bytes that are not UTF-8, as a receiver would.
pub(crate) fn put_text<B: BufMut>(
    buf: &mut B,
    v: &Blob,
    what: &str,
    enc: Encoding,
) -> Result<(), EncodeError> {
    if std::str::from_utf8(v).is_err() {
        return Err(EncodeError::limit(
            Rule::LiteInvalidUtf8,
            format!("{what} is not UTF-8"),
        ));
    }
    put_len_bytes(buf, v, MAX_MESSAGE_LENGTH, Rule::LiteMessageTooLarge, enc)
}

/// Reads a version number (a varint that must fit in 32 bits).
pub(crate) fn read_version<B: Buf>(b: &mut B) -> Result<Version, DecodeError> {
    let v = varint::read(b)?;
    u32::try_from(v).map(Version).map_err(|_| {
        DecodeError::invalid(
            Rule::VersionOutOfRange,
            format!("version 0x{v:x} does not fit in 32 bits"),
        )
    })
}

/// Writes a version number.
pub(crate) fn put_version<B: BufMut>(
    b: &mut B,
    v: Version,
    enc: Encoding,
) -> Result<(), EncodeError> {
    put_varint(b, u64::from(v.0), enc)
}
