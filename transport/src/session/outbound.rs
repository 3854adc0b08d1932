//! Control messages encoded when they are queued, not when they are written: a message that
//! cannot be encoded (a name built from another peer's input, an ID past 2^62-1) is refused to
//! the caller that built it, and the session it was meant for keeps going.

use super::SessionError;
use bytes::{Bytes, BytesMut};
use moqlink_model::control::{ControlMessage, MessageType};
use moqlink_model::{Encoding, Version};

/// One control message, encoded and ready for the control stream.
pub(crate) struct Outbound {
    pub(crate) kind: MessageType,
    pub(crate) id: Option<u64>,
    pub(crate) bytes: Bytes,
}

impl Outbound {
    /// Encodes `msg`; an unencodable message is the caller's error, never the session's.
    pub(crate) fn encode(msg: &ControlMessage) -> Result<Outbound, SessionError> {
        let mut buf = BytesMut::new();
        msg.encode(&mut buf, Encoding::new(Version::DRAFT_14))
            .map_err(|e| SessionError::Unencodable {
                kind: msg.message_type().name(),
                reason: e.to_string(),
            })?;
        tracing::trace!(msg = ?msg, "encoded");
        Ok(Outbound {
            kind: msg.message_type(),
            id: msg.request_id(),
            bytes: buf.freeze(),
        })
    }
}

/// Queues `msg` without waiting: when the queue is full, a task sends it once there is room
/// (for answers that must not be lost, such as MAX_REQUEST_ID and a dropped request's error).
pub(crate) fn queue_soon(out: &tokio::sync::mpsc::Sender<Outbound>, msg: &ControlMessage) {
    let Ok(msg) = Outbound::encode(msg) else {
        return;
    };
    if let Err(tokio::sync::mpsc::error::TrySendError::Full(msg)) = out.try_send(msg) {
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            let out = out.clone();
            h.spawn(async move {
                let _ = out.send(msg).await;
            });
        }
    }
}
