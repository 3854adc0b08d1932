//! Handles for requests in flight: what the application answers (peer requests) and awaits
//! (its own requests). Every peer request gets an answer: a [`Responder`] dropped unanswered
//! sends the matching *_ERROR with INTERNAL_ERROR.

use super::mailbox::Mailbox;
use super::outbound::{queue_soon, Outbound};
use super::{Inner, SessionError};
use crate::connection::Connection;
use moqlink_model::codes::RequestErrorCode;
use moqlink_model::control::*;
use moqlink_model::Blob;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the session hands the application.
///
/// Both variants are boxed: the event queue is a tokio channel, which allocates 32 slots with
/// every session (7.4 KiB per session unboxed, 512 B boxed).
#[derive(Debug)]
pub enum IncomingEvent {
    /// A new request from the peer, to be answered.
    Request(Box<IncomingRequest>),
    /// A message about namespaces that names no request (PUBLISH_NAMESPACE_DONE,
    /// PUBLISH_NAMESPACE_CANCEL, UNSUBSCRIBE_NAMESPACE).
    Notice(Box<ControlMessage>),
}

/// Lets a route guard release its request without knowing the connection type.
pub(crate) trait RouteOwner: Send + Sync {
    fn finish(&self, id: u64, peer_request: bool);
}

impl<C: Connection> RouteOwner for Inner<C> {
    fn finish(&self, id: u64, peer_request: bool) {
        let grant = {
            let mut st = self.state();
            st.routes.remove(&id);
            if peer_request {
                st.peer.on_finished()
            } else {
                None
            }
        };
        if let Some(max) = grant {
            if self.closed_state().is_none() {
                let msg = ControlMessage::MaxRequestId(MaxRequestId {
                    max_request_id: max,
                });
                queue_soon(&self.out, &msg);
            }
        }
    }
}

/// Messages that arrive for one request ID after the request itself (replies, updates,
/// UNSUBSCRIBE, PUBLISH_DONE, FETCH_CANCEL...). Dropping it ends the request.
pub struct Followups {
    id: u64,
    rx: Mailbox,
    owner: Arc<dyn RouteOwner>,
    peer_request: bool,
}

impl std::fmt::Debug for Followups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Followups({})", self.id)
    }
}

impl Followups {
    /// The request ID.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next message for this request; `None` once the session ends.
    pub async fn next(&mut self) -> Option<ControlMessage> {
        self.rx.next().await
    }
}

impl Drop for Followups {
    fn drop(&mut self) {
        self.owner.finish(self.id, self.peer_request);
    }
}

/// Answers one peer request.
pub struct Responder {
    id: u64,
    kind: MessageType,
    out: mpsc::Sender<Outbound>,
    answered: bool,
    /// Where the answer is counted.
    stats: Option<Arc<crate::stats::RequestStats>>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Responder({} {})", self.kind.name(), self.id)
    }
}

/// Builds the *_ERROR answering `request` with `code` and `reason`.
pub fn error_message(
    request: MessageType,
    id: u64,
    code: u64,
    reason: &str,
) -> Option<ControlMessage> {
    let e = RequestError {
        request_id: id,
        error_code: code,
        reason: Blob::from(truncate(reason, moqlink_model::limits::MAX_REASON_PHRASE)),
    };
    Some(match request.error_type()? {
        MessageType::SubscribeError => ControlMessage::SubscribeError(e),
        MessageType::PublishError => ControlMessage::PublishError(e),
        MessageType::FetchError => ControlMessage::FetchError(e),
        MessageType::TrackStatusError => ControlMessage::TrackStatusError(e),
        MessageType::PublishNamespaceError => ControlMessage::PublishNamespaceError(e),
        _ => ControlMessage::SubscribeNamespaceError(e),
    })
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Responder {
    pub(crate) fn new(id: u64, kind: MessageType, out: mpsc::Sender<Outbound>) -> Self {
        Responder {
            id,
            kind,
            out,
            answered: false,
            stats: None,
        }
    }

    /// The request ID being answered.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The request's type.
    pub fn kind(&self) -> MessageType {
        self.kind
    }

    /// Sends the success reply (e.g. SUBSCRIBE_OK).
    pub async fn accept(mut self, reply: ControlMessage) -> Result<(), SessionError> {
        self.answer(reply, None).await
    }

    /// Sends the matching *_ERROR with `code` (from the request's table in
    /// [`moqlink_model::codes`]) and `reason`.
    pub async fn reject(
        mut self,
        code: impl Into<RequestErrorCode>,
        reason: &str,
    ) -> Result<(), SessionError> {
        let code = code.into().code();
        match error_message(self.kind, self.id, code, reason) {
            Some(msg) => self.answer(msg, Some(code)).await,
            None => {
                self.answered = true;
                Ok(())
            }
        }
    }

    /// Queues `msg` as the answer. The request counts as answered only once the message is
    /// queued: a caller that gives up while the queue is full drops the responder, which then
    /// answers INTERNAL_ERROR instead of leaving the request unanswered.
    async fn answer(&mut self, msg: ControlMessage, code: Option<u64>) -> Result<(), SessionError> {
        let msg = Outbound::encode(&msg)?;
        let permit = self
            .out
            .reserve()
            .await
            .map_err(|_| SessionError::Unexpected("session closed".into()))?;
        self.answered = true;
        permit.send(msg);
        if let Some(s) = &self.stats {
            s.answered(self.kind, code);
        }
        Ok(())
    }

    /// Answers NOT_SUPPORTED.
    pub async fn not_supported(self, what: &str) -> Result<(), SessionError> {
        let reason = format!("{what} is not supported here");
        self.reject(RequestErrorCode::NOT_SUPPORTED, &reason).await
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let Some(msg) = error_message(
            self.kind,
            self.id,
            RequestErrorCode::INTERNAL_ERROR.code(),
            "request dropped unanswered",
        ) else {
            return;
        };
        queue_soon(&self.out, &msg);
        if let Some(s) = &self.stats {
            s.answered(self.kind, Some(RequestErrorCode::INTERNAL_ERROR.code()));
        }
    }
}

/// A new request from the peer.
#[derive(Debug)]
pub struct IncomingRequest {
    /// The request.
    pub message: ControlMessage,
    /// Answers it.
    pub responder: Responder,
    /// Later messages for the same request ID; keep it while the request lives.
    pub followups: Followups,
    /// The request's AUTHORIZATION TOKENs, aliases resolved (§9.2.1.1).
    pub tokens: Vec<super::AuthToken>,
}

impl IncomingRequest {
    pub(crate) fn new<C: Connection>(
        message: ControlMessage,
        id: u64,
        rx: Mailbox,
        inner: Arc<Inner<C>>,
    ) -> Self {
        let mut responder = Responder::new(id, message.message_type(), inner.out.clone());
        responder.stats = inner.request_stats.clone();
        IncomingRequest {
            message,
            responder,
            followups: Followups {
                id,
                rx,
                owner: inner,
                peer_request: true,
            },
            tokens: Vec::new(),
        }
    }
}

/// A request this endpoint made: its ID and the replies that arrive for it.
#[derive(Debug)]
pub struct OutgoingRequest {
    /// Replies and later messages for the request.
    pub followups: Followups,
}

impl OutgoingRequest {
    pub(crate) fn new<C: Connection>(id: u64, rx: Mailbox, inner: Arc<Inner<C>>) -> Self {
        OutgoingRequest {
            followups: Followups {
                id,
                rx,
                owner: inner,
                peer_request: false,
            },
        }
    }

    /// The request ID.
    pub fn id(&self) -> u64 {
        self.followups.id
    }

    /// Waits for the reply; a *_ERROR becomes [`SessionError::Rejected`].
    pub async fn reply(&mut self) -> Result<ControlMessage, SessionError> {
        match self.followups.next().await {
            Some(msg) => match &msg {
                ControlMessage::SubscribeError(e)
                | ControlMessage::PublishError(e)
                | ControlMessage::FetchError(e)
                | ControlMessage::TrackStatusError(e)
                | ControlMessage::PublishNamespaceError(e)
                | ControlMessage::SubscribeNamespaceError(e) => Err(SessionError::Rejected {
                    kind: msg.message_type(),
                    code: e.error_code,
                    reason: e.reason.to_string(),
                }),
                _ => Ok(msg),
            },
            None => Err(SessionError::Unexpected(
                "session ended before the reply".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn filler() -> ControlMessage {
        ControlMessage::MaxRequestId(MaxRequestId { max_request_id: 1 })
    }

    fn queued(m: ControlMessage) -> Outbound {
        Outbound::encode(&m).unwrap()
    }

    /// The message a queued entry carries, decoded from its bytes.
    fn decoded(o: Option<Outbound>) -> Option<ControlMessage> {
        let mut reader = ControlReader::new(moqlink_model::Version::DRAFT_14);
        reader.push(o?.bytes);
        reader.next_message().unwrap()
    }

    /// Every request gets an answer: an accept abandoned while the control queue is full must
    /// not leave the request unanswered.
    #[tokio::test]
    async fn an_abandoned_accept_answers_internal_error() {
        let (tx, mut rx) = mpsc::channel(1);
        tx.send(queued(filler())).await.unwrap();
        let responder = Responder::new(4, MessageType::Subscribe, tx);
        let gave_up = tokio::time::timeout(Duration::from_millis(20), responder.accept(filler()))
            .await
            .is_err();
        assert!(gave_up, "the queue was full, accept cannot have finished");
        assert_eq!(decoded(rx.recv().await), Some(filler()));
        match tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .map(decoded)
        {
            Ok(Some(ControlMessage::SubscribeError(e))) => {
                assert_eq!(
                    (e.request_id, e.error_code),
                    (4, RequestErrorCode::INTERNAL_ERROR.code())
                );
            }
            other => panic!("expected SUBSCRIBE_ERROR INTERNAL_ERROR, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_accepted_request_gets_only_its_reply() {
        let (tx, mut rx) = mpsc::channel(1);
        let responder = Responder::new(2, MessageType::Subscribe, tx);
        responder.accept(filler()).await.unwrap();
        assert_eq!(decoded(rx.recv().await), Some(filler()));
        assert!(rx.recv().await.is_none(), "no error after the reply");
    }
}
