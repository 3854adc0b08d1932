//! An incremental reader for the control stream: bytes in, whole messages out.

use super::ControlMessage;
use crate::error::DecodeError;
use crate::pending::Pending;
use crate::version::Version;
use bytes::Bytes;

/// Reads framed control messages from a growing buffer.
#[derive(Debug, Clone)]
pub struct ControlReader {
    buf: Pending,
    version: Version,
}

impl ControlReader {
    /// A reader for the negotiated `version`.
    pub fn new(version: Version) -> Self {
        ControlReader {
            buf: Pending::default(),
            version,
        }
    }

    /// Switches the version once SETUP has chosen one.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// Appends received bytes (zero-copy when nothing is pending).
    pub fn push(&mut self, data: Bytes) {
        self.buf.push(data);
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the unread bytes (e.g. to hand the stream to a moq-lite reader after SETUP).
    pub fn take_buffered(&mut self) -> Bytes {
        self.buf.take()
    }

    /// The next whole message, `Ok(None)` until enough bytes arrived. A message is at most
    /// 65,535 bytes of payload, so the buffer stays bounded.
    pub fn next_message(&mut self) -> Result<Option<ControlMessage>, DecodeError> {
        let Some(head) = self.buf.ready() else {
            return Ok(None);
        };
        let mut view = head.clone();
        match ControlMessage::decode(&mut view, self.version) {
            Ok(msg) => {
                self.buf.consume(view);
                Ok(Some(msg))
            }
            Err(DecodeError::Short) => {
                let at_least = head.len() + 1;
                let total = frame_len(head).unwrap_or(at_least).max(at_least);
                self.buf.wait_for(total);
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
