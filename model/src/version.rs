//! Protocol versions offered in CLIENT_SETUP and selected in SERVER_SETUP (§9.3.1).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A 32-bit MoQ version number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(pub u32);

impl Version {
    /// draft-ietf-moq-transport-14: 0xff000000 + 14.
    pub const DRAFT_14: Version = Version(0xff00_000e);
    /// draft-ietf-moq-transport-16, offered beside draft-14 by some peers.
    pub const DRAFT_16: Version = Version(0xff00_0010);
    /// moq-lite-01.
    pub const LITE_01: Version = Version(0xff0d_ad01);
    /// moq-lite-02.
    pub const LITE_02: Version = Version(0xff0d_ad02);

    /// A short human name, e.g. `draft-14`, `lite-02`, or the hex number.
    pub fn label(self) -> String {
        match self {
            Version::LITE_01 => "lite-01".into(),
            Version::LITE_02 => "lite-02".into(),
            Version(v) if v & 0xffff_0000 == 0xff00_0000 => format!("draft-{}", v & 0xffff),
            Version(v) => format!("0x{v:08x}"),
        }
    }

    /// Whether this is a moq-lite version.
    pub fn is_lite(self) -> bool {
        self.0 & 0xffff_ff00 == 0xff0d_ad00
    }
}

impl Default for Version {
    fn default() -> Self {
        Version::DRAFT_14
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "draft-14" | "14" => return Ok(Version::DRAFT_14),
            "draft-16" | "16" => return Ok(Version::DRAFT_16),
            "lite-01" | "moq-lite-01" => return Ok(Version::LITE_01),
            "lite-02" | "moq-lite-02" => return Ok(Version::LITE_02),
            _ => {}
        }
        let hex = s
            .strip_prefix("0x")
            .ok_or_else(|| format!("unknown version {s:?}"))?;
        u32::from_str_radix(hex, 16)
            .map(Version)
            .map_err(|e| format!("bad version {s:?}: {e}"))
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
