//! Broadcast discovery on the Announce stream: ANNOUNCE_PLEASE, ANNOUNCE_INIT, ANNOUNCE
//! (moq-lite §Announce).

use super::message::{framed, put_text, read_text, Message};
use crate::blob::Blob;
use crate::codec::{bounded_capacity, put_u8, put_varint, read_count, read_u8, Encoding};
use crate::error::{peer_text, DecodeError, EncodeError, Rule};
use crate::version::Version;
use bytes::{BufMut, Bytes};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// ANNOUNCE_PLEASE: `Broadcast Path Prefix (s)`. The subscriber's only message on an Announce
/// stream; the publisher answers with ANNOUNCE_INIT and then ANNOUNCEs. moq-dev relays open one
/// with an empty prefix to every client (`01 | 01 00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncePlease {
    /// Broadcasts whose path starts with these bytes are wanted (byte-wise match).
    pub prefix: Blob,
}

impl Message for AnnouncePlease {
    const NAME: &'static str = "ANNOUNCE_PLEASE";
    const MAX_LENGTH: usize = super::message::MAX_PATH_MESSAGE;

    fn decode_body(b: &mut Bytes, _: Version) -> Result<Self, DecodeError> {
        Ok(AnnouncePlease {
            prefix: read_text(b, "ANNOUNCE_PLEASE prefix")?,
        })
    }

    fn encode_body<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_text(b, &self.prefix, "ANNOUNCE_PLEASE prefix", enc)
    }
}

/// ANNOUNCE_INIT: `Suffix Count (i)`, `Broadcast Path Suffix (s)`…: every active broadcast under
/// the prefix when the request arrived, as suffixes of it. No suffix may repeat
/// ([`Rule::LiteDuplicateSuffix`]; moq-dev closes with `Duplicate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceInit {
    /// Active broadcast path suffixes (prefix + suffix = path).
    pub suffixes: Vec<Blob>,
}

impl Message for AnnounceInit {
    const NAME: &'static str = "ANNOUNCE_INIT";
    const MAX_LENGTH: usize = super::message::MAX_ANNOUNCE_INIT;

    fn decode_body(b: &mut Bytes, _: Version) -> Result<Self, DecodeError> {
        let n = read_count(b)?;
        let mut suffixes = Vec::with_capacity(bounded_capacity(b, n));
        let mut seen = HashSet::new();
        for _ in 0..n {
            let s = read_text(b, "ANNOUNCE_INIT suffix")?;
            if !seen.insert(s.clone()) {
                return Err(DecodeError::invalid(
                    Rule::LiteDuplicateSuffix,
                    format!("suffix {} appears twice in ANNOUNCE_INIT", peer_text(&s)),
                ));
            }
            suffixes.push(s);
        }
        Ok(AnnounceInit { suffixes })
    }

    fn encode_body<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        let mut seen = HashSet::new();
        if let Some(dup) = self.suffixes.iter().find(|s| !seen.insert(*s)) {
            return Err(EncodeError::limit(
                Rule::LiteDuplicateSuffix,
                format!("suffix {} appears twice in ANNOUNCE_INIT", peer_text(dup)),
            ));
        }
        put_varint(b, self.suffixes.len() as u64, enc)?;
        for s in &self.suffixes {
            put_text(b, s, "ANNOUNCE_INIT suffix", enc)?;
        }
        Ok(())
    }
}

/// The status of an ANNOUNCE. One byte on the wire, as moq-dev writes it; the texts say
/// `(i)`, which encodes 0 and 1 as the same byte (DISAGREEMENTS L7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AnnounceStatus {
    /// 0: the broadcast is no longer available.
    Ended,
    /// 1: the broadcast is available.
    Active,
}

impl AnnounceStatus {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            AnnounceStatus::Ended => 0,
            AnnounceStatus::Active => 1,
        }
    }
}

/// ANNOUNCE: `Announce Status (8)`, `Broadcast Path Suffix (s)`. A change after ANNOUNCE_INIT;
/// statuses of one path alternate (a session-level check, not a wire one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// Active or ended.
    pub status: AnnounceStatus,
    /// The broadcast path suffix.
    pub suffix: Blob,
}

impl Message for Announce {
    const NAME: &'static str = "ANNOUNCE";
    const MAX_LENGTH: usize = super::message::MAX_PATH_MESSAGE;

    fn decode_body(b: &mut Bytes, _: Version) -> Result<Self, DecodeError> {
        let status = match read_u8(b)? {
            0 => AnnounceStatus::Ended,
            1 => AnnounceStatus::Active,
            v => {
                return Err(DecodeError::invalid(
                    Rule::LiteAnnounceStatus,
                    format!("announce status {v}, must be 0 (ended) or 1 (active)"),
                ))
            }
        };
        Ok(Announce {
            status,
            suffix: read_text(b, "ANNOUNCE suffix")?,
        })
    }

    fn encode_body<B: BufMut>(&self, b: &mut B, enc: Encoding) -> Result<(), EncodeError> {
        put_u8(b, self.status.code())?;
        put_text(b, &self.suffix, "ANNOUNCE suffix", enc)
    }
}

framed!(AnnouncePlease, AnnounceInit, Announce);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Decode, Encode};

    /// Issue 12: the duplicate-suffix error quotes at most 64 bytes of the suffix, not all of it.
    #[test]
    fn duplicate_suffix_error_is_bounded() {
        let suffix: Blob = "x".repeat(5000).into();
        let init = AnnounceInit {
            suffixes: vec![suffix.clone(), suffix],
        };
        let e = init
            .encode(&mut Vec::new(), Encoding::new(Version::LITE_02))
            .unwrap_err();
        assert!(e.to_string().len() < 300, "{e}");
        // The same bytes on the wire.
        let mut body = Vec::new();
        put_varint(&mut body, 2, Encoding::default()).unwrap();
        for _ in 0..2 {
            put_varint(&mut body, 5000, Encoding::default()).unwrap();
            body.extend_from_slice(&[b'x'; 5000]);
        }
        let mut wire = Vec::new();
        put_varint(&mut wire, body.len() as u64, Encoding::default()).unwrap();
        wire.extend_from_slice(&body);
        let e = AnnounceInit::decode(&mut &wire[..], Version::LITE_02).unwrap_err();
        assert_eq!(e.rule(), Rule::LiteDuplicateSuffix);
        let text = e.to_string();
        assert!(text.len() < 300, "{} bytes: {text:.100}", text.len());
        assert!(text.contains("… (5000 bytes)"), "{text:.200}");
    }
}
