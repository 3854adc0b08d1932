//! One connection to the relay with a task that answers every request the relay sends:
//! SUBSCRIBE / TRACK_STATUS / FETCH from the tracks this connection serves (TRACK_DOES_NOT_EXIST
//! otherwise), SUBSCRIBE_NAMESPACE with SUBSCRIBE_NAMESPACE_OK, PUBLISH_NAMESPACE with
//! PUBLISH_NAMESPACE_OK. PUBLISH and PUBLISH_NAMESPACE can be routed to the case instead.

use super::{lock, Ctx, Failure, Record};
use moqlink_model::codes::PublishErrorCode;
use moqlink_model::codes::SubscribeErrorCode;
use moqlink_model::control::{ControlMessage, FetchKind, RequestRef};
use moqlink_model::{Blob, SessionErrorCode, TrackNamespace};
use moqlink_transport::client::AnySession;
use moqlink_transport::session::{IncomingEvent, IncomingRequest, SessionClose};
use moqlink_transport::track::{TrackName, TrackProducer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long a closing connection lets queued control messages reach the wire.
const SETTLE: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Shared {
    tracks: Mutex<HashMap<TrackName, TrackProducer>>,
    requests: Mutex<Option<mpsc::Sender<IncomingRequest>>>,
    seen: Mutex<Vec<String>>,
}

/// A session to the relay whose incoming requests are always answered.
pub struct Peer {
    /// The session.
    pub session: AnySession,
    /// The connection ID reported in the YAML block.
    pub id: String,
    shared: Arc<Shared>,
    served: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Peer {
    /// Connects, records the connection ID under `key`, and starts answering requests.
    pub async fn connect(ctx: &Ctx, record: &Record, key: &'static str) -> Result<Peer, Failure> {
        let role = key.trim_end_matches("connection_id").trim_end_matches('_');
        let role = if role.is_empty() { "the" } else { role };
        record.step(format!("SERVER_SETUP on {role} connection"));
        let (session, events, id) = ctx.connect().await.map_err(|e| {
            Failure::new(
                "SERVER_SETUP",
                e.to_string(),
                format!("{role} connection: setup did not complete"),
            )
        })?;
        record.connection(key, &id);
        tracing::info!(%id, role, version = %session.version(), "connected");
        let shared = Arc::new(Shared::default());
        let (served_tx, served) = watch::channel(0u64);
        let task = tokio::spawn(answer(
            session.clone(),
            events,
            shared.clone(),
            Arc::new(served_tx),
        ));
        Ok(Peer {
            session,
            id,
            shared,
            served,
            task,
        })
    }

    /// Serves SUBSCRIBE, TRACK_STATUS and FETCH for `track`'s name from `track`.
    pub fn serve(&self, track: &TrackProducer) {
        lock(&self.shared.tracks).insert(track.name().clone(), track.clone());
    }

    /// Hands PUBLISH and PUBLISH_NAMESPACE requests to the returned receiver instead of the
    /// default answers (the receiver must answer them).
    pub fn take_requests(&self) -> mpsc::Receiver<IncomingRequest> {
        let (tx, rx) = mpsc::channel(16);
        *lock(&self.shared.requests) = Some(tx);
        rx
    }

    /// How many SUBSCRIBEs this connection answered with SUBSCRIBE_OK so far.
    pub fn subscribes_served(&self) -> u64 {
        *self.served.borrow()
    }

    /// Waits until at least `n` SUBSCRIBEs were answered with SUBSCRIBE_OK.
    pub async fn wait_served(&self, n: u64) {
        let mut rx = self.served.clone();
        let _ = rx.wait_for(|v| *v >= n).await;
    }

    /// What the relay sent on this connection's control stream, in order (for diagnostics).
    pub fn seen(&self) -> String {
        let seen = lock(&self.shared.seen);
        if seen.is_empty() {
            "nothing".into()
        } else {
            seen.join(", ")
        }
    }

    /// Lets queued messages go out, then closes with NO_ERROR; fails if the relay ended the
    /// session first.
    pub async fn close(self) -> Result<(), Failure> {
        tokio::time::sleep(SETTLE).await;
        if let Some(c) = self.session.close_reason() {
            return Err(Failure::new(
                "the session open until the client closes it with NO_ERROR",
                describe_close(&c),
                format!("connection {} ended before the case closed it", self.id),
            ));
        }
        self.session.close(SessionErrorCode::NoError, "");
        Ok(())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.session.close(SessionErrorCode::NoError, "");
        self.task.abort();
    }
}

/// How a session end reads in the YAML block.
pub fn describe_close(c: &SessionClose) -> String {
    c.to_string()
}

/// `moq-test/interop/test-track` for a namespace and track name.
fn full(ns: &TrackNamespace, name: &Blob) -> String {
    format!("{ns}/{name}")
}

/// One line per request or notice, e.g. `SUBSCRIBE moq-test/interop/test-track`.
fn describe(msg: &ControlMessage) -> String {
    use ControlMessage as M;
    let kind = msg.message_type().name();
    match msg {
        M::Subscribe(m) | M::TrackStatus(m) => format!("{kind} {}", full(&m.namespace, &m.name)),
        M::Publish(m) => format!("{kind} {}", full(&m.namespace, &m.name)),
        M::PublishNamespace(m) => format!("{kind} {}", m.namespace),
        M::SubscribeNamespace(m) => format!("{kind} prefix {:?}", m.namespace_prefix.to_string()),
        M::PublishNamespaceDone(m) => format!("{kind} {}", m.namespace),
        M::Fetch(f) => match &f.fetch {
            FetchKind::Standalone {
                namespace, name, ..
            } => format!("{kind} {}", full(namespace, name)),
            _ => format!("{kind} (joining)"),
        },
        _ => kind.to_string(),
    }
}

async fn answer(
    session: AnySession,
    mut events: mpsc::Receiver<IncomingEvent>,
    shared: Arc<Shared>,
    served: Arc<watch::Sender<u64>>,
) {
    while let Some(ev) = events.recv().await {
        match ev {
            IncomingEvent::Notice(msg) => {
                tracing::debug!(msg = %describe(&msg), "notice from the relay");
                lock(&shared.seen).push(describe(&msg));
            }
            IncomingEvent::Request(req) => {
                let what = describe(&req.message);
                tracing::debug!(request = %what, "request from the relay");
                lock(&shared.seen).push(what);
                tokio::spawn(handle(
                    session.clone(),
                    *req,
                    shared.clone(),
                    served.clone(),
                ));
            }
        }
    }
}

async fn handle(
    session: AnySession,
    req: IncomingRequest,
    shared: Arc<Shared>,
    served: Arc<watch::Sender<u64>>,
) {
    use ControlMessage as M;
    // The track a SUBSCRIBE, TRACK_STATUS or standalone FETCH names, if served here.
    let track =
        TrackName::requested_by(&req.message).and_then(|n| lock(&shared.tracks).get(&n).cloned());
    let result = match &req.message {
        M::Subscribe(_) => match &track {
            Some(track) => match session.serve_subscribe(req, track).await {
                Ok(Some(_)) => {
                    served.send_modify(|n| *n += 1);
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
            None => {
                req.responder
                    .reject(SubscribeErrorCode::TrackDoesNotExist, "no such track")
                    .await
            }
        },
        M::TrackStatus(_) => session.serve_track_status(req, track.as_ref()).await,
        // Joining fetches name a subscription served here; the session finds it.
        M::Fetch(_) => session.serve_fetch(req, track.as_ref()).await,
        M::SubscribeNamespace(m) => {
            let ok = M::SubscribeNamespaceOk(RequestRef {
                request_id: m.request_id,
            });
            req.responder.accept(ok).await
        }
        M::Publish(_) | M::PublishNamespace(_) => {
            let to_case = lock(&shared.requests).clone();
            let req = match to_case {
                Some(tx) => match tx.send(req).await {
                    Ok(()) => return,
                    Err(mpsc::error::SendError(req)) => req,
                },
                None => req,
            };
            match &req.message {
                M::PublishNamespace(m) => {
                    let ok = M::PublishNamespaceOk(RequestRef {
                        request_id: m.request_id,
                    });
                    req.responder.accept(ok).await
                }
                _ => {
                    req.responder
                        .reject(
                            PublishErrorCode::Uninterested,
                            "this client subscribed to nothing",
                        )
                        .await
                }
            }
        }
        other => {
            let name = other.message_type().name();
            req.responder.not_supported(name).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "answering the relay failed");
    }
}
