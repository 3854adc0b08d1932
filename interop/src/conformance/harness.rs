//! What the checks share: an [`Endpoint`] (one connection to the relay that answers every
//! request the relay sends and logs what arrived), a [`DirectSub`] (a subscription read straight
//! off the data streams, so header types, extension bytes and statuses are seen as they arrived),
//! publishing helpers (a [`RawPublisher`] answering the relay's SUBSCRIBE itself lives in
//! `harness/upstream.rs`) and the close-code expectations.

pub use super::directsub::{subscribe, DirectSub, Got, StreamEnd, SubOpts};
use super::{refused, Env, Verdict};
use crate::cases::{describe_error, Failure};
use bytes::Bytes;
use moqlink_model::codes::PublishErrorCode;
use moqlink_model::codes::SubscribeErrorCode;
use moqlink_model::control::*;
use moqlink_model::data::ObjectStatus;
use moqlink_model::params::VersionParameters;
use moqlink_model::{Location, SessionErrorCode, TrackNamespace};
use moqlink_transport::client::{connect, AnySession};
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::session::{
    IncomingEvent, IncomingRequest, NamespacePublication, SessionClose, SessionConfig, SessionError,
};
use moqlink_transport::track::{Object, SubgroupInfo, TrackConfig, TrackName, TrackProducer};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
pub use upstream::{subscribe_ok, upstream_subscribe, write_data, RawPublisher};

mod upstream;

/// How long a check waits for an answer.
const ANSWER: Duration = Duration::from_secs(3);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits until `pred` holds on a state that bumps `changed`, at most `limit`.
pub(super) async fn wait_state(
    changed: &watch::Sender<u64>,
    limit: Duration,
    mut pred: impl FnMut() -> bool,
) -> bool {
    let mut rx = changed.subscribe();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if pred() {
            return true;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            _ => return pred(),
        }
    }
}

/// One control message the relay sent to an endpoint.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When it arrived.
    pub at: Instant,
    /// The message.
    pub msg: ControlMessage,
}

/// A SUBSCRIBE this endpoint answered with SUBSCRIBE_OK from one of its tracks.
#[derive(Debug, Clone)]
pub struct Served {
    /// The relay's SUBSCRIBE.
    pub subscribe: Subscribe,
    /// When the subscription ended (UNSUBSCRIBE, track end or session end).
    pub ended: Option<Instant>,
}

#[derive(Default)]
struct Shared {
    tracks: Mutex<HashMap<TrackName, TrackProducer>>,
    intercepts: Mutex<HashMap<MessageType, mpsc::UnboundedSender<IncomingRequest>>>,
    log: Mutex<Vec<Seen>>,
    served: Mutex<Vec<Served>>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// One connection to the relay: answers SUBSCRIBE, TRACK_STATUS and FETCH from the tracks it
/// serves (TRACK_DOES_NOT_EXIST otherwise), SUBSCRIBE_NAMESPACE and PUBLISH_NAMESPACE with OK,
/// PUBLISH with UNINTERESTED, unless a check intercepts that request type.
pub struct Endpoint {
    /// The session.
    pub session: AnySession,
    /// The connection ID reported in the YAML block.
    pub id: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    /// Connects with the default session settings; the connection ID goes under `key`.
    pub async fn connect(env: &Env, key: &'static str) -> Result<Endpoint, Failure> {
        Self::connect_with(env, key, env.ctx.session.clone()).await
    }

    /// Connects with `cfg` (e.g. a small request window).
    pub async fn connect_with(
        env: &Env,
        key: &'static str,
        cfg: SessionConfig,
    ) -> Result<Endpoint, Failure> {
        Self::connect_via(env, key, &env.ctx.client, cfg).await
    }

    /// Connects through `client` (e.g. one with a small receive window).
    pub async fn connect_via(
        env: &Env,
        key: &'static str,
        client: &moqlink_transport::endpoint::Client,
        cfg: SessionConfig,
    ) -> Result<Endpoint, Failure> {
        let role = key.trim_end_matches("_connection_id");
        env.step(format!("SERVER_SETUP on the {role} connection"));
        let (session, events) = connect(client, &env.ctx.relay, cfg).await.map_err(|e| {
            Failure::new(
                "SERVER_SETUP",
                e.to_string(),
                format!("{role} connection: setup did not complete"),
            )
        })?;
        let id = crate::cases::connection_id();
        env.record.connection(key, &id);
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(answer(session.clone(), events, shared.clone()));
        Ok(Endpoint {
            session,
            id,
            shared,
            task,
        })
    }

    /// Connects through a client whose connection-level receive window is `window` bytes, so
    /// the relay is held back by flow control while the check reads nothing.
    pub async fn connect_windowed(
        env: &Env,
        key: &'static str,
        window: u32,
    ) -> Result<Endpoint, Failure> {
        let client = env.ctx.client.with_receive_window(window);
        Self::connect_via(env, key, &client, env.ctx.session.clone()).await
    }

    /// Subscribes to `name` (default options) in a task of its own, for checks that must answer
    /// the relay's upstream SUBSCRIBE before the subscriber's SUBSCRIBE_OK can arrive.
    pub fn subscribe_later(&self, name: TrackName) -> JoinHandle<Result<DirectSub, SessionError>> {
        let session = self.session.clone();
        tokio::spawn(async move { DirectSub::subscribe(&session, &name, SubOpts::default()).await })
    }

    /// SUBSCRIBEs to `name` with `params` (Largest Object, Forward 1) and requires SUBSCRIBE_OK;
    /// a refusal fails with `why`.
    pub async fn subscribe_with(
        &self,
        env: &Env,
        name: &TrackName,
        params: VersionParameters,
        why: &str,
    ) -> Result<SubscribeOk, Verdict> {
        env.step("SUBSCRIBE_OK");
        let mut req = self
            .session
            .request(|request_id| super::raw::subscribe_for(request_id, name, params))
            .await
            .map_err(|e| Failure::new("SUBSCRIBE sent", describe(&e), "local session"))?;
        match within(ANSWER, "SUBSCRIBE_OK", req.reply()).await? {
            Ok(ControlMessage::SubscribeOk(ok)) => Ok(ok),
            Ok(other) => Err(Failure::new(
                "SUBSCRIBE_OK",
                other.message_type().name(),
                "unexpected reply",
            )
            .into()),
            Err(e) => Err(refused(e, "SUBSCRIBE_OK", why)),
        }
    }

    /// Serves SUBSCRIBE, TRACK_STATUS and standalone FETCH for `track`'s name from `track`.
    pub fn serve(&self, track: &TrackProducer) {
        lock(&self.shared.tracks).insert(track.name().clone(), track.clone());
    }

    /// Hands requests of `kind` to the returned receiver instead of answering them.
    pub fn intercept(&self, kind: MessageType) -> mpsc::UnboundedReceiver<IncomingRequest> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.shared.intercepts).insert(kind, tx);
        rx
    }

    /// Everything the relay sent on the control stream after SETUP.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.log).clone()
    }

    /// The messages of type `kind` the relay sent.
    pub fn seen_of(&self, kind: MessageType) -> Vec<ControlMessage> {
        lock(&self.shared.log)
            .iter()
            .filter(|s| s.msg.message_type() == kind)
            .map(|s| s.msg.clone())
            .collect()
    }

    /// What the relay sent, one line per message (for diagnostics).
    pub fn seen_text(&self) -> String {
        let log = lock(&self.shared.log);
        if log.is_empty() {
            return "nothing".into();
        }
        log.iter()
            .map(|s| describe_message(&s.msg))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Waits until the relay sent a message matching `pred`, at most `limit`.
    pub async fn wait_seen(&self, limit: Duration, pred: impl Fn(&ControlMessage) -> bool) -> bool {
        let shared = self.shared.clone();
        wait_state(&self.shared.changed, limit, || {
            lock(&shared.log).iter().any(|s| pred(&s.msg))
        })
        .await
    }

    /// The SUBSCRIBEs served from this endpoint's tracks.
    pub fn served(&self) -> Vec<Served> {
        lock(&self.shared.served).clone()
    }

    /// Waits until the served subscriptions satisfy `pred`, at most `limit`.
    pub async fn wait_served(&self, limit: Duration, pred: impl Fn(&[Served]) -> bool) -> bool {
        let shared = self.shared.clone();
        wait_state(&self.shared.changed, limit, || pred(&lock(&shared.served))).await
    }

    /// Sends PUBLISH_NAMESPACE and requires PUBLISH_NAMESPACE_OK.
    pub async fn announce(
        &self,
        env: &Env,
        ns: TrackNamespace,
    ) -> Result<NamespacePublication<AnyConnection>, Verdict> {
        env.step(format!("PUBLISH_NAMESPACE_OK for {ns}"));
        let answer = within(
            Duration::from_secs(3),
            "PUBLISH_NAMESPACE_OK",
            self.session
                .publish_namespace(ns.clone(), VersionParameters::new()),
        )
        .await?;
        answer.map_err(|e| {
            refused(
                e,
                "PUBLISH_NAMESPACE_OK",
                &format!("the relay did not accept PUBLISH_NAMESPACE {ns}"),
            )
        })
    }

    /// Fails if the relay closed this session.
    pub fn still_open(&self, role: &str) -> Result<(), Failure> {
        match self.session.close_reason() {
            None => Ok(()),
            Some(c) => Err(Failure::new(
                format!("the {role} session open"),
                c.to_string(),
                format!("the relay closed the {role} session"),
            )),
        }
    }

    /// Lets queued messages go out, then closes with NO_ERROR.
    pub async fn close(self) {
        self.session
            .close_gracefully(SessionErrorCode::NoError, "", Duration::from_millis(100))
            .await;
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.session.close(SessionErrorCode::NoError, "");
        self.task.abort();
    }
}

/// One line for a control message: its type and the name or request it is about.
pub fn describe_message(msg: &ControlMessage) -> String {
    use ControlMessage as M;
    let kind = msg.message_type().name();
    match msg {
        M::Subscribe(m) | M::TrackStatus(m) => format!("{kind} {}/{}", m.namespace, m.name),
        M::Publish(m) => format!("{kind} {}/{}", m.namespace, m.name),
        M::PublishNamespace(m) => format!("{kind} {}", m.namespace),
        M::PublishNamespaceDone(m) => format!("{kind} {}", m.namespace),
        M::SubscribeNamespace(m) => format!("{kind} prefix {:?}", m.namespace_prefix.to_string()),
        M::SubscribeUpdate(m) => format!(
            "{kind} for {} (start {}, forward {})",
            m.subscription_request_id, m.start, m.forward
        ),
        M::Unsubscribe(m) => format!("{kind} {}", m.request_id),
        _ => kind.to_string(),
    }
}

async fn answer(
    session: AnySession,
    mut events: mpsc::Receiver<IncomingEvent>,
    shared: Arc<Shared>,
) {
    while let Some(ev) = events.recv().await {
        let msg = match &ev {
            IncomingEvent::Notice(m) => (**m).clone(),
            IncomingEvent::Request(r) => r.message.clone(),
        };
        tracing::debug!(msg = %describe_message(&msg), "from the relay");
        lock(&shared.log).push(Seen {
            at: Instant::now(),
            msg,
        });
        shared.bump();
        if let IncomingEvent::Request(req) = ev {
            let req = *req;
            let to_check = lock(&shared.intercepts)
                .get(&req.message.message_type())
                .cloned();
            let req = match to_check {
                Some(tx) => match tx.send(req) {
                    Ok(()) => continue,
                    Err(mpsc::error::SendError(req)) => req,
                },
                None => req,
            };
            tokio::spawn(handle(session.clone(), req, shared.clone()));
        }
    }
}

async fn handle(session: AnySession, req: IncomingRequest, shared: Arc<Shared>) {
    use ControlMessage as M;
    // The track a SUBSCRIBE, TRACK_STATUS or standalone FETCH names, if served here.
    let track =
        TrackName::requested_by(&req.message).and_then(|n| lock(&shared.tracks).get(&n).cloned());
    let result = match &req.message {
        M::Subscribe(m) => match &track {
            Some(track) => {
                let subscribe = m.clone();
                match session.serve_subscribe(req, track).await {
                    Ok(Some(task)) => {
                        let index = {
                            let mut served = lock(&shared.served);
                            served.push(Served {
                                subscribe,
                                ended: None,
                            });
                            served.len() - 1
                        };
                        shared.bump();
                        let _ = task.await;
                        if let Some(s) = lock(&shared.served).get_mut(index) {
                            s.ended = Some(Instant::now());
                        }
                        shared.bump();
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                }
            }
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
        M::PublishNamespace(m) => {
            let ok = M::PublishNamespaceOk(RequestRef {
                request_id: m.request_id,
            });
            req.responder.accept(ok).await
        }
        M::Publish(_) => {
            req.responder
                .reject(
                    PublishErrorCode::Uninterested,
                    "this endpoint takes no PUBLISH",
                )
                .await
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

/// Awaits `fut` for at most `limit`; on timeout fails with "`expected` within N ms".
pub async fn within<T>(
    limit: Duration,
    expected: &str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Failure> {
    crate::cases::within(limit, expected, fut).await
}

/// A publisher connection that announced the check's namespace and serves its tracks.
pub struct Publisher {
    /// The connection.
    pub ep: Endpoint,
    /// The tracks it serves, in the order named.
    pub tracks: Vec<TrackProducer>,
    /// The namespace publication (dropping it sends PUBLISH_NAMESPACE_DONE).
    pub ns: Option<NamespacePublication<AnyConnection>>,
}

impl Publisher {
    /// Connects, serves tracks `names` in the check's namespace, and announces it.
    pub async fn start(env: &Env, names: &[&str]) -> Result<Publisher, Verdict> {
        let ep = Endpoint::connect(env, "publisher_connection_id").await?;
        let tracks: Vec<TrackProducer> = names
            .iter()
            .map(|n| {
                let t = TrackProducer::new(env.track(n), TrackConfig::default());
                ep.serve(&t);
                t
            })
            .collect();
        let ns = ep.announce(env, env.namespace()).await?;
        Ok(Publisher {
            ep,
            tracks,
            ns: Some(ns),
        })
    }

    /// The first track.
    pub fn track(&self) -> &TrackProducer {
        &self.tracks[0]
    }

    /// Waits until the relay's upstream SUBSCRIBEs were answered `n` times.
    pub async fn upstream(&self, env: &Env, n: usize) -> Result<(), Failure> {
        env.step("the relay's SUBSCRIBE at the publisher");
        if self
            .ep
            .wait_served(Duration::from_secs(3), |s| s.len() >= n)
            .await
        {
            return Ok(());
        }
        Err(Failure::new(
            format!("{n} SUBSCRIBE(s) from the relay at the publisher"),
            format!("publisher received: {}", self.ep.seen_text()),
            "the relay answered the subscriber without subscribing upstream",
        ))
    }
}

/// A publisher of track `t` and a subscriber already subscribed through the relay, the
/// relay's upstream SUBSCRIBE answered.
pub async fn relayed(env: &Env) -> Result<(Publisher, Endpoint, DirectSub), Verdict> {
    relayed_with(env, SubOpts::default()).await
}

/// [`relayed`], the subscriber's SUBSCRIBE made with `opts`.
pub async fn relayed_with(
    env: &Env,
    opts: SubOpts,
) -> Result<(Publisher, Endpoint, DirectSub), Verdict> {
    let p = Publisher::start(env, &["t"]).await?;
    let s = Endpoint::connect(env, "subscriber_connection_id").await?;
    let sub = subscribe(env, &s, &env.track("t"), opts).await?;
    p.upstream(env, 1).await?;
    Ok((p, s, sub))
}

/// A run-unique payload for object `g`.`o`.
pub fn payload(env: &Env, g: u64, o: u64) -> Bytes {
    Bytes::from(format!("{} {} g{g} o{o}", env.run, env.check))
}

/// The pause after each group a check writes: groups follow each other like live media, so a
/// relay that skips to the newest group when several arrive at once still forwards each.
pub const GROUP_PACING: Duration = Duration::from_millis(25);

/// Writes objects `ids` of group `g` on one subgroup (ID 0, priority 128), finishes it, and
/// pauses [`GROUP_PACING`].
pub async fn write_group(env: &Env, track: &TrackProducer, g: u64, ids: std::ops::Range<u64>) {
    let mut sg = track.create_subgroup(SubgroupInfo::new(g, 0, 128));
    for o in ids {
        let _ = sg.write(Object::new(o, payload(env, g, o)));
    }
    sg.finish();
    tokio::time::sleep(GROUP_PACING).await;
}

/// Compares the normal objects received with `want`: duplicates, unexpected, wrong payloads,
/// then missing ones.
pub fn problems(env: &Env, got: &[Got], want: &[(u64, u64)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for o in got.iter().filter(|o| o.status == ObjectStatus::Normal) {
        let loc = (o.group, o.id);
        if !seen.insert(loc) {
            out.push(format!("duplicate object {}.{}", o.group, o.id));
        } else if !want.contains(&loc) {
            out.push(format!("unexpected {o}"));
        } else if o.payload != payload(env, o.group, o.id) {
            out.push(format!("{o}: payload differs from what was published"));
        }
    }
    for (g, o) in want {
        if !seen.contains(&(*g, *o)) {
            out.push(format!("missing object {g}.{o}"));
        }
    }
    out
}

/// Fails with the first problem, counting the rest.
pub fn verdict(problems: &[String], expected: &str, message: &str) -> Result<(), Failure> {
    match problems.first() {
        None => Ok(()),
        Some(first) => Err(Failure::new(
            expected,
            if problems.len() > 1 {
                format!("{first} (and {} more problem(s))", problems.len() - 1)
            } else {
                first.clone()
            },
            message,
        )),
    }
}

/// Locations `g`.`o` for every group in `groups` and object in `objects`.
pub fn locations(groups: std::ops::Range<u64>, objects: std::ops::Range<u64>) -> Vec<(u64, u64)> {
    groups
        .flat_map(|g| objects.clone().map(move |o| (g, o)))
        .collect()
}

/// The locations received, as `g.o` text.
pub fn listing(got: &[Got]) -> String {
    if got.is_empty() {
        return "no objects".into();
    }
    let items: Vec<String> = got
        .iter()
        .map(|o| format!("{}.{}", o.group, o.id))
        .collect();
    format!("objects {}", items.join(" "))
}

/// Waits until the subscriber's `sub` has `n` objects, `what` (e.g. "objects 0.0 and 0.1"),
/// which the check builds on; fails with what arrived and `why`.
pub async fn objects_relayed(
    env: &Env,
    sub: &DirectSub,
    n: usize,
    what: &str,
    why: &str,
) -> Result<(), Failure> {
    env.step(format!("{what} at the subscriber"));
    if sub.wait_count(n, ANSWER).await {
        return Ok(());
    }
    Err(Failure::new(
        format!("{what} relayed"),
        listing(&sub.objects()),
        why,
    ))
}

/// Waits for `session` to be closed by the relay with `code`; passes with what arrived.
pub async fn expect_close(
    env: &Env,
    session: &AnySession,
    code: SessionErrorCode,
    limit: Duration,
    after: &str,
) -> Result<String, Failure> {
    env.step(format!(
        "the relay closing the session with {}",
        code.name()
    ));
    let expected = format!("session closed with {} (0x{:x})", code.name(), code.code());
    match tokio::time::timeout(limit, session.closed()).await {
        Ok(c) if c.by_peer && c.code == code.code() => Ok(format!(
            "{after}: relay closed with {} ({:?})",
            code.name(),
            c.reason
        )),
        Ok(c) => Err(Failure::new(
            expected,
            describe_close(&c),
            format!("{after}: the relay did not close with {}", code.name()),
        )),
        Err(_) => Err(Failure::new(
            expected,
            format!("session still open {} ms later", limit.as_millis()),
            format!("{after}: the relay did not close the session"),
        )),
    }
}

/// [`expect_close`], with `rule` (the draft's requirement) added to a failure's message.
pub async fn expect_close_citing(
    env: &Env,
    session: &AnySession,
    code: SessionErrorCode,
    after: &str,
    rule: &str,
) -> Result<String, Failure> {
    expect_close(env, session, code, ANSWER, after)
        .await
        .map_err(|f| Failure {
            message: format!("{}; {rule}", f.message),
            ..f
        })
}

/// Sends SUBSCRIBE_UPDATE for `sub` (Start `start`, End Group `end_group`, priority 128,
/// Forward 1), which breaks a rule: the relay must close `s`'s session with PROTOCOL_VIOLATION.
pub async fn update_must_close(
    env: &Env,
    s: &Endpoint,
    sub: &DirectSub,
    start: Location,
    end_group: Option<u64>,
    after: &str,
) -> Result<String, Failure> {
    sub.update(start, end_group, 128, true)
        .await
        .map_err(|e| Failure::new("SUBSCRIBE_UPDATE sent", describe(&e), "local session"))?;
    expect_close(
        env,
        &s.session,
        SessionErrorCode::ProtocolViolation,
        ANSWER,
        after,
    )
    .await
}

/// How a session end reads: the relay's close code, or how the session ended without one.
pub fn describe_close(c: &SessionClose) -> String {
    if c.by_peer {
        c.to_string()
    } else {
        format!(
            "the session ended without a session close code from the relay (seen here as {} \
             (0x{:x}): {})",
            c.code_name(),
            c.code,
            c.reason
        )
    }
}

/// How a request error reads.
pub fn describe(e: &SessionError) -> String {
    describe_error(e)
}

/// Bytes as lowercase hex.
pub fn hex(b: &[u8]) -> String {
    if b.is_empty() {
        return "(none)".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
