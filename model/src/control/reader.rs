//! An incremental reader for the control stream: bytes in, whole messages out.

use super::ControlMessage;
use crate::error::DecodeError;
use crate::version::Version;
use bytes::{Bytes, BytesMut};

/// Reads framed control messages from a growing buffer.
#[derive(Debug, Clone)]
pub struct ControlReader {
    buf: Bytes,
    version: Version,
    need: usize,
}

impl ControlReader {
    /// A reader for the negotiated `version`.
    pub fn new(version: Version) -> Self {
        ControlReader {
            buf: Bytes::new(),
            version,
            need: 0,
        }
    }

    /// Switches the version once SETUP has chosen one.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// Appends received bytes (zero-copy when nothing is pending).
    pub fn push(&mut self, data: Bytes) {
        if self.buf.is_empty() {
            self.buf = data;
        } else if !data.is_empty() {
            let mut joined = BytesMut::with_capacity(self.buf.len() + data.len());
            joined.extend_from_slice(&self.buf);
            joined.extend_from_slice(&data);
            self.buf = joined.freeze();
        }
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the unread bytes (e.g. to hand the stream to a moq-lite reader after SETUP).
    pub fn take_buffered(&mut self) -> Bytes {
        self.need = 0;
        std::mem::take(&mut self.buf)
    }

    /// The next whole message, `Ok(None)` until enough bytes arrived. A message is at most
    /// 65,535 bytes of payload, so the buffer stays bounded.
    pub fn next_message(&mut self) -> Result<Option<ControlMessage>, DecodeError> {
        if self.buf.is_empty() || self.buf.len() < self.need {
            return Ok(None);
        }
        let mut view = self.buf.clone();
        match ControlMessage::decode(&mut view, self.version) {
            Ok(msg) => {
                self.buf = view;
                self.need = 0;
                Ok(Some(msg))
            }
            Err(DecodeError::Short) => {
                self.need = frame_len(&self.buf).unwrap_or(self.buf.len() + 1);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Checks the stream ended between messages.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::invalid(
                crate::error::Rule::Truncated,
                format!(
                    "control stream ended inside a message ({} bytes)",
                    self.buf.len()
                ),
            ))
        }
    }
}

/// Total bytes of the frame starting at `b`, once its type and length are readable.
fn frame_len(b: &Bytes) -> Option<usize> {
    let mut view = &b[..];
    let before = view.len();
    crate::varint::read(&mut view).ok()?;
    let ty_len = before - view.len();
    let len = u16::from_be_bytes([*view.first()?, *view.get(1)?]);
    Some(ty_len + 2 + usize::from(len))
}
