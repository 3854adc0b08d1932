//! The control stream after SETUP: a writer task, a reader task that checks every message
//! against the session rules and routes it, and a watcher for the connection's end.

use super::ids::Violation;
use super::incoming::{IncomingEvent, IncomingRequest};
use super::outbound::Outbound;
use super::setup::{read_message, ReadFailure};
use super::tokens::TokenOutcome;
use super::{Inner, Role, SessionClose};
use crate::connection::{Connection, RecvStream, SendStream};
use crate::qlog::Dir;
use moqlink_model::codes::RequestErrorCode;
use moqlink_model::control::*;
use moqlink_model::SessionErrorCode;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How long a finished control stream waits for the peer's connection close.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// Starts the writer, reader and watcher tasks of a session.
pub(crate) fn spawn<C: Connection>(
    inner: Arc<Inner<C>>,
    send: C::Send,
    recv: C::Recv,
    reader: ControlReader,
    out_rx: mpsc::Receiver<Outbound>,
    incoming: mpsc::Sender<IncomingEvent>,
) {
    let closed = inner.close.subscribe();
    tokio::spawn(writer(inner.clone(), send, out_rx, closed));
    tokio::spawn(read_loop(inner.clone(), recv, reader, incoming));
    tokio::spawn(async move {
        let e = inner.conn.closed().await;
        let c: SessionClose = (&e).into();
        inner.close(c.code, &c.reason, c.by_peer);
    });
}

async fn writer<C: Connection>(
    inner: Arc<Inner<C>>,
    mut send: C::Send,
    mut out_rx: mpsc::Receiver<Outbound>,
    mut closed: tokio::sync::watch::Receiver<Option<SessionClose>>,
) {
    loop {
        // A close before this task first ran is seen here, not only as a later change.
        if closed.borrow_and_update().is_some() {
            break;
        }
        let msg = tokio::select! {
            m = out_rx.recv() => match m { Some(m) => m, None => break },
            _ = closed.changed() => break,
        };
        tracing::debug!(msg = msg.kind.name(), id = ?msg.id, "send");
        if let Some(q) = &inner.qlog {
            q.control(Dir::Created, send.stream_id().unwrap_or(0), &msg.bytes);
        }
        if let Err(e) = send.write_chunk(msg.bytes).await {
            if inner.closed_state().is_none() {
                let reason = format!("writing {}: {e}", msg.kind.name());
                inner.close(SessionErrorCode::InternalError.code(), &reason, false);
            }
            break;
        }
    }
    // §3.3: the control stream is never finished while the session lives (a peer that sees it
    // end must close with PROTOCOL_VIOLATION). The session's close closes the connection
    // before this task wakes, and a QUIC stream dropped after that sends nothing. (The queue
    // cannot end while `inner` holds its sender, so closing here is only a safeguard.)
    if inner.closed_state().is_none() {
        inner.close(SessionErrorCode::NoError.code(), "session dropped", false);
    }
    drop(send);
}

async fn read_loop<C: Connection>(
    inner: Arc<Inner<C>>,
    mut recv: C::Recv,
    mut reader: ControlReader,
    incoming: mpsc::Sender<IncomingEvent>,
) {
    loop {
        let msg = match read_message(&mut recv, &mut reader).await {
            Ok(m) => m,
            Err(ReadFailure::Violation(e)) => {
                inner.close(e.code().code(), &e.to_string(), false);
                return;
            }
            Err(ReadFailure::Ended(why)) => {
                // Peers often finish the control stream just before closing the connection;
                // give their close a moment to arrive so it is the reason recorded.
                let grace = tokio::time::timeout(CLOSE_GRACE, inner.conn.closed()).await;
                match grace {
                    Ok(e) => {
                        let c: SessionClose = (&e).into();
                        inner.close(c.code, &c.reason, c.by_peer);
                    }
                    // §3.3: closing the control stream is a protocol violation.
                    Err(_) => inner.close(SessionErrorCode::ProtocolViolation.code(), &why, false),
                }
                return;
            }
            Err(ReadFailure::Connection(c)) => {
                inner.close(c.code, &c.reason, c.by_peer);
                return;
            }
        };
        tracing::debug!(msg = msg.message_type().name(), id = ?msg.request_id(), "recv");
        if let Some(q) = &inner.qlog {
            q.control_msg(Dir::Parsed, recv.stream_id().unwrap_or(0), &msg);
        }
        tracing::trace!(?msg);
        if let Err(v) = handle(&inner, msg, &incoming).await {
            inner.violation(&v);
            return;
        }
    }
}

fn violation(code: SessionErrorCode, reason: impl Into<String>) -> Violation {
    Violation::new(code, reason)
}

/// Applies one received message to the session.
async fn handle<C: Connection>(
    inner: &Arc<Inner<C>>,
    msg: ControlMessage,
    incoming: &mpsc::Sender<IncomingEvent>,
) -> Result<(), Violation> {
    use ControlMessage as M;
    match msg {
        M::ClientSetup(_) | M::ServerSetup(_) => Err(violation(
            SessionErrorCode::ProtocolViolation,
            "SETUP received after setup",
        )),
        M::Goaway(g) => {
            let mut st = inner.state();
            if st.goaway_received.is_some() {
                return Err(violation(
                    SessionErrorCode::ProtocolViolation,
                    "second GOAWAY (§9.4)",
                ));
            }
            if inner.role == Role::Server && !g.new_session_uri.is_empty() {
                return Err(violation(
                    SessionErrorCode::ProtocolViolation,
                    "GOAWAY with a New Session URI sent to a server (§9.4)",
                ));
            }
            tracing::info!(uri = %g.new_session_uri, "peer sent GOAWAY");
            st.goaway_received = Some(g.new_session_uri);
            drop(st);
            inner.credit.notify_waiters();
            Ok(())
        }
        M::MaxRequestId(m) => {
            inner.state().local.on_max_request_id(m.max_request_id)?;
            inner.credit.notify_waiters();
            Ok(())
        }
        M::RequestsBlocked(b) => {
            tracing::debug!(
                max = b.max_request_id,
                "peer is blocked on our MAX_REQUEST_ID"
            );
            Ok(())
        }
        M::SubscribeUpdate(u) => {
            let followup = {
                let mut st = inner.state();
                st.peer.on_request(u.request_id)?;
                // SUBSCRIBE_UPDATE has no reply; its ID is used up at once.
                let grant = st.peer.on_finished();
                let known = st.local.issued(inner.role, u.subscription_request_id)
                    || st.peer.issued(u.subscription_request_id);
                if !known {
                    return Err(violation(
                        SessionErrorCode::ProtocolViolation,
                        format!(
                            "SUBSCRIBE_UPDATE for request {} which never existed (§9.10)",
                            u.subscription_request_id
                        ),
                    ));
                }
                if let Some(max) = grant {
                    let _ = Outbound::encode(&M::MaxRequestId(MaxRequestId {
                        max_request_id: max,
                    }))
                    .map(|m| inner.out.try_send(m));
                }
                st.routes.get(&u.subscription_request_id).cloned()
            };
            if let Some(route) = followup {
                route.deliver(M::SubscribeUpdate(u));
            }
            Ok(())
        }
        msg if msg.message_type().is_request() => new_request(inner, msg, incoming).await,
        M::PublishNamespaceDone(_) | M::PublishNamespaceCancel(_) | M::UnsubscribeNamespace(_) => {
            // No Request ID limits these: a peer must not stall this loop through an
            // application that reads its events slowly.
            if let Err(e) = incoming.try_send(IncomingEvent::Notice(Box::new(msg))) {
                tracing::warn!(error = %e, "notice dropped: the event queue is full");
            }
            Ok(())
        }
        msg => route_followup(inner, msg).await,
    }
}

/// A new request from the peer: check its ID, register its route, hand it to the application
/// (or answer NOT_SUPPORTED when nobody listens).
async fn new_request<C: Connection>(
    inner: &Arc<Inner<C>>,
    msg: ControlMessage,
    incoming: &mpsc::Sender<IncomingEvent>,
) -> Result<(), Violation> {
    let id = msg.request_id().unwrap_or_default();
    let (post, rx) = super::mailbox::mailbox();
    let (goaway_sent, tokens) = {
        let mut st = inner.state();
        st.peer.on_request(id)?;
        st.routes.insert(id, post);
        let tokens = match request_parameters(&msg) {
            Some(p) => st.tokens.apply(p.auth_tokens())?,
            None => TokenOutcome::Tokens(Vec::new()),
        };
        (st.goaway_sent, tokens)
    };
    let kind = msg.message_type();
    let mut req = IncomingRequest::new(msg, id, rx, inner.clone());
    match tokens {
        TokenOutcome::Tokens(t) => req.tokens = t,
        TokenOutcome::Reject(reason) => {
            // §9.2.1.1: a message naming an unregistered alias is rejected
            // (MALFORMED_AUTH_TOKEN; see DISAGREEMENTS.md D13). PUBLISH_ERROR's table has no
            // 0x10 (§13.1.4); the same value goes there too.
            let _ = req
                .responder
                .reject(RequestErrorCode::MALFORMED_AUTH_TOKEN, &reason)
                .await;
            return Ok(());
        }
    }
    if goaway_sent {
        // §9.4: after GOAWAY a publisher may refuse new requests.
        let _ = req
            .responder
            .reject(RequestErrorCode::INTERNAL_ERROR, "session is going away")
            .await;
        return Ok(());
    }
    if let Err(mpsc::error::SendError(IncomingEvent::Request(req))) =
        incoming.send(IncomingEvent::Request(Box::new(req))).await
    {
        let _ = req.responder.not_supported(kind.name()).await;
    }
    Ok(())
}

/// The version-specific parameters of a request message.
fn request_parameters(msg: &ControlMessage) -> Option<&moqlink_model::params::VersionParameters> {
    use ControlMessage as M;
    match msg {
        M::Subscribe(m) | M::TrackStatus(m) => Some(&m.parameters),
        M::Publish(m) => Some(&m.parameters),
        M::Fetch(m) => Some(&m.parameters),
        M::PublishNamespace(m) => Some(&m.parameters),
        M::SubscribeNamespace(m) => Some(&m.parameters),
        M::SubscribeUpdate(m) => Some(&m.parameters),
        _ => None,
    }
}

/// A message referring to an existing request: deliver it to whoever holds that request.
async fn route_followup<C: Connection>(
    inner: &Arc<Inner<C>>,
    msg: ControlMessage,
) -> Result<(), Violation> {
    use ControlMessage as M;
    let id = msg.request_id().unwrap_or_default();
    let is_reply = msg.message_type().is_reply();
    let route = {
        let mut st = inner.state();
        let ours = st.local.issued(inner.role, id);
        let theirs = st.peer.issued(id);
        if is_reply && !ours {
            return Err(violation(
                SessionErrorCode::InvalidRequestId,
                format!(
                    "{} for request ID {id}, which this endpoint never sent",
                    msg.message_type().name()
                ),
            ));
        }
        if !ours && !theirs {
            return Err(violation(
                SessionErrorCode::InvalidRequestId,
                format!(
                    "{} for request ID {id}, which never existed",
                    msg.message_type().name()
                ),
            ));
        }
        if is_reply && !st.answered.insert(id) {
            return Err(violation(
                SessionErrorCode::ProtocolViolation,
                format!(
                    "a second answer ({}) to request ID {id} (§5.1, §6.2)",
                    msg.message_type().name()
                ),
            ));
        }
        st.routes.get(&id).cloned()
    };
    match route {
        Some(r) => r.deliver(msg),
        None => {
            tracing::debug!(
                msg = msg.message_type().name(),
                id,
                "message for a finished request"
            );
            // A subscription or fetch the peer accepted after this side gave up waiting (the
            // request was dropped) would otherwise be served to nobody: end it.
            let end = match msg {
                M::SubscribeOk(_) => Some(M::Unsubscribe(RequestRef { request_id: id })),
                M::FetchOk(_) => Some(M::FetchCancel(RequestRef { request_id: id })),
                _ => None,
            };
            if let Some(end) = end {
                let queued = Outbound::encode(&end).map(|m| inner.out.try_send(m));
                if !matches!(queued, Ok(Ok(()))) {
                    tracing::warn!(id, "could not end a late-accepted request: queue full");
                }
            }
        }
    }
    Ok(())
}
