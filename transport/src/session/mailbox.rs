//! Where the control read loop leaves messages for one request (replies, SUBSCRIBE_UPDATE,
//! UNSUBSCRIBE, PUBLISH_DONE, FETCH_CANCEL...). The read loop never waits on a request's holder,
//! so the queue is bounded; past it, SUBSCRIBE_UPDATEs are coalesced (each states the whole
//! subscription, so the latest supersedes the ones before) and up to 8 other messages (the ones
//! that end a request among them) still get through, in order; past that, a holder that does not
//! read loses what its peer repeats.

use moqlink_model::control::ControlMessage;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Messages queued for a request before the overflow takes over. The queue holds boxes: tokio
/// allocates a whole block of 32 slots with the channel, 4.4 KiB per request for unboxed
/// messages against 256 B boxed (follow-ups are rare; every subscription has a mailbox).
const QUEUE: usize = 32;
/// Messages the overflow holds (SUBSCRIBE_UPDATEs coalesced into one).
const OVERFLOW: usize = 8;

/// The read loop's end of a request's mailbox.
#[derive(Clone)]
pub(crate) struct Postbox {
    tx: mpsc::Sender<Box<ControlMessage>>,
    overflow: Arc<Mutex<VecDeque<ControlMessage>>>,
}

/// The request holder's end.
pub(crate) struct Mailbox {
    rx: mpsc::Receiver<Box<ControlMessage>>,
    overflow: Arc<Mutex<VecDeque<ControlMessage>>>,
}

/// A new mailbox for one request.
pub(crate) fn mailbox() -> (Postbox, Mailbox) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let overflow = Arc::new(Mutex::new(VecDeque::new()));
    (
        Postbox {
            tx,
            overflow: overflow.clone(),
        },
        Mailbox { rx, overflow },
    )
}

fn lock(
    m: &Mutex<VecDeque<ControlMessage>>,
) -> std::sync::MutexGuard<'_, VecDeque<ControlMessage>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Postbox {
    /// Leaves `msg` without waiting.
    pub(crate) fn deliver(&self, msg: ControlMessage) {
        let mut over = lock(&self.overflow);
        // Once anything overflowed, later messages queue behind it, keeping the order.
        let msg = if over.is_empty() {
            match self.tx.try_send(Box::new(msg)) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(m)) => *m,
            }
        } else {
            msg
        };
        if matches!(msg, ControlMessage::SubscribeUpdate(_)) {
            over.retain(|m| !matches!(m, ControlMessage::SubscribeUpdate(_)));
        }
        if over.len() >= OVERFLOW {
            // One peer can repeat follow-ups at will: not a warning a line each.
            tracing::debug!(
                msg = msg.message_type().name(),
                "follow-up dropped: its request's holder does not read"
            );
            return;
        }
        over.push_back(msg);
    }
}

impl Mailbox {
    /// The next message; `None` once the request's route is gone and everything was read.
    pub(crate) async fn next(&mut self) -> Option<ControlMessage> {
        match self.rx.try_recv() {
            Ok(m) => return Some(*m),
            Err(mpsc::error::TryRecvError::Empty) => {
                if let Some(m) = lock(&self.overflow).pop_front() {
                    return Some(m);
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => {
                return lock(&self.overflow).pop_front();
            }
        }
        // Empty queue and overflow: the next message can only come through the queue.
        match self.rx.recv().await {
            Some(m) => Some(*m),
            None => lock(&self.overflow).pop_front(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moqlink_model::control::{RequestRef, SubscribeUpdate};
    use moqlink_model::Location;

    fn update(priority: u8) -> ControlMessage {
        ControlMessage::SubscribeUpdate(SubscribeUpdate {
            request_id: 2,
            subscription_request_id: 0,
            start: Location::new(0, 0),
            end_group: None,
            subscriber_priority: priority,
            forward: true,
            parameters: Default::default(),
        })
    }

    #[tokio::test]
    async fn a_flood_of_updates_never_pushes_out_the_unsubscribe_behind_it() {
        let (post, mut mail) = mailbox();
        for p in 0..200u8 {
            post.deliver(update(p));
        }
        let end = ControlMessage::Unsubscribe(RequestRef { request_id: 0 });
        post.deliver(end.clone());
        drop(post);
        let mut got = Vec::new();
        while let Some(m) = mail.next().await {
            got.push(m);
        }
        // The first 32 in order, then the latest update, then UNSUBSCRIBE.
        assert_eq!(got.len(), QUEUE + 2, "{got:?}");
        assert_eq!(got[0], update(0));
        assert_eq!(got[QUEUE - 1], update(QUEUE as u8 - 1));
        assert_eq!(got[QUEUE], update(199));
        assert_eq!(got[QUEUE + 1], end);
    }
}
