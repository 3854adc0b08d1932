//! The `Message Length (i)` framing every moq-lite message shares, and the field helpers the
//! message bodies use (UTF-8 strings, versions).

use crate::blob::Blob;
use crate::codec::{decode_exact, put_len_bytes, put_varint, read_len_bytes, Encoding, Sizer};
use crate::error::{DecodeError, EncodeError, Rule};
use crate::varint;
use crate::version::Version;
use bytes::{Buf, BufMut, Bytes};

/// The largest Message Length of any message: moq-dev's receivers refuse bodies above 64 MiB
/// (moq-net 0.3 `MAX_MESSAGE_SIZE`). The texts set no limit; moqlink's per-message limits
/// ([`Message::MAX_LENGTH`]) are far lower, so a peer cannot make a reader buffer megabytes
/// for a message whose fields take a few bytes ([`Rule::LiteMessageTooLarge`], local limits).
pub const MAX_MESSAGE_LENGTH: usize = 64 * 1024 * 1024;

/// Limit for messages carrying one or two paths or names (ANNOUNCE_PLEASE, ANNOUNCE, SUBSCRIBE):
/// twice draft-14's 4,096-byte Full Track Name (§2.4.1), as a margin.
pub const MAX_PATH_MESSAGE: usize = 8 * 1024;
/// Limit for the session handshake messages (versions and extensions).
pub const MAX_SESSION_MESSAGE: usize = 16 * 1024;
/// Limit for ANNOUNCE_INIT, which lists every active broadcast under a prefix.
pub const MAX_ANNOUNCE_INIT: usize = 1024 * 1024;

/// A moq-lite message body: what follows its `Message Length (i)`.
pub trait Message: Sized {
    /// The texts' name, e.g. `SUBSCRIBE`.
    const NAME: &'static str;

    /// The largest Message Length read or written for this message.
    const MAX_LENGTH: usize;

    /// Whether [`Message::MAX_LENGTH`] is the most the fields can take (GROUP, SUBSCRIBE_UPDATE,
    /// SUBSCRIBE_OK): a longer Message Length is then a [`Rule::LiteMessageLength`] violation,
    /// refused as soon as it is read. Otherwise the limit is local ([`Rule::LiteMessageTooLarge`]).
    const FIXED_FIELDS: bool = false;

    /// Reads the body; `body` holds exactly Message Length bytes. Running out inside a field
    /// or leaving bytes over is reported as [`Rule::LiteMessageLength`] by [`decode_message`].
    fn decode_body(body: &mut Bytes, v: Version) -> Result<Self, DecodeError>;

    /// Writes the body (without the length).
    fn encode_body<B: BufMut>(&self, buf: &mut B, enc: Encoding) -> Result<(), EncodeError>;
}

/// Reads `Message Length (i)` and a body of exactly that length. `Short` until the whole
/// message is in `buf`; a length above the message's [`Message::MAX_LENGTH`] fails as soon as it
/// is read.
pub fn decode_message<T: Message, B: Buf>(buf: &mut B, v: Version) -> Result<T, DecodeError> {
    let len = varint::read(buf)?;
    let max = T::MAX_LENGTH.min(MAX_MESSAGE_LENGTH);
    if len > max as u64 && T::FIXED_FIELDS {
        return Err(DecodeError::invalid(
            Rule::LiteMessageLength,
            format!(
                "Message Length {len} exceeds the {max} bytes the fields of {} take",
                T::NAME
            ),
        ));
    }
    if len > max as u64 {
        return Err(DecodeError::invalid(
            Rule::LiteMessageTooLarge,
            format!(
                "Message Length {len} exceeds the {max}-byte limit for {}",
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
    let max = T::MAX_LENGTH.min(MAX_MESSAGE_LENGTH);
    if len > max {
        return Err(EncodeError::limit(
            Rule::LiteMessageTooLarge,
            format!("{} body of {len} bytes exceeds the limit {max}", T::NAME),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lite::{AnnounceInit, BiStreamType, ControlReader, GroupReader, LiteMessage};

    fn too_large(e: DecodeError, limit: usize, name: &str) {
        assert_eq!(e.rule(), Rule::LiteMessageTooLarge);
        let text = e.to_string();
        assert!(
            text.contains(&format!("{limit}-byte limit for {name}")),
            "names the limit: {text}"
        );
    }

    /// Issue 12: a GROUP header whose Message Length is above the 16 bytes its two varints can
    /// take is refused when the length is read (the body could only leave bytes over,
    /// lite_message_length), not buffered up to 64 MiB.
    #[test]
    fn group_header_length_is_limited() {
        let mut r = GroupReader::new(Version::LITE_02);
        // 00 Group stream; Message Length 17; no body yet.
        r.push(Bytes::from_static(&[0x00, 0x11]));
        let e = r.next_event().unwrap_err();
        assert_eq!(e.rule(), Rule::LiteMessageLength);
        assert!(
            e.to_string().contains("16 bytes the fields of GROUP take"),
            "{e}"
        );
        // 16 (two 8-byte varints) waits for its body.
        let mut r = GroupReader::new(Version::LITE_02);
        r.push(Bytes::from_static(&[0x00, 0x10]));
        assert_eq!(r.next_event(), Ok(None));
        assert_eq!(r.buffered(), 1);
    }

    /// SUBSCRIBE and SUBSCRIBE_OK have their own limits; each is refused as its length is read.
    #[test]
    fn control_message_lengths_are_limited() {
        let mut r = ControlReader::accept(Version::LITE_01);
        // 02 Subscribe stream; Message Length 8,193 (0x6001).
        r.push(Bytes::from_static(&[0x02, 0x60, 0x01]));
        too_large(r.next_message().unwrap_err(), MAX_PATH_MESSAGE, "SUBSCRIBE");
        // SUBSCRIBE_OK's fields take at most one byte: Message Length 256 (0x4100) is refused.
        let mut r = ControlReader::response(Version::LITE_01, BiStreamType::Subscribe);
        r.push(Bytes::from_static(&[0x41, 0x00]));
        let e = r.next_message().unwrap_err();
        assert_eq!(e.rule(), Rule::LiteMessageLength);
    }

    /// A large ANNOUNCE_INIT (many broadcasts) stays readable: its limit is its own.
    #[test]
    fn announce_init_of_many_suffixes_is_read() {
        let init = AnnounceInit {
            suffixes: (0..2000).map(|i| format!("room/{i:06}").into()).collect(),
        };
        let mut wire = Vec::new();
        LiteMessage::AnnounceInit(init.clone())
            .encode(&mut wire, Encoding::new(Version::LITE_02))
            .unwrap();
        assert!(wire.len() > MAX_SESSION_MESSAGE);
        let mut r = ControlReader::response(Version::LITE_02, BiStreamType::Announce);
        r.push(Bytes::from(wire));
        assert_eq!(r.next_message(), Ok(Some(LiteMessage::AnnounceInit(init))));
    }
}
