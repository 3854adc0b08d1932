//! Upstream subscriptions: a track the relay carries is fed by a SUBSCRIBE to every publisher
//! whose namespace matches (§8.4), merged into one shared track (objects from several
//! publishers are written once), joined by publishers that announce later, and released when
//! the last downstream subscriber leaves.

use super::registry::{Origin, Route, TrackEntry};
use super::serve::{upstream_route, Shared};
use moqlink_model::codes::{RequestErrorCode, SubscribeErrorCode};
use moqlink_model::control::MessageType;
use moqlink_model::Location;
use moqlink_transport::session::SessionError;
use moqlink_transport::track::{TrackName, TrackProducer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a publisher has to answer the relay's SUBSCRIBE or FETCH.
pub(crate) const UPSTREAM_ANSWER: Duration = Duration::from_secs(10);

/// The publisher's answer to a request the relay forwarded, or, when none came within
/// [`UPSTREAM_ANSWER`], a refusal of kind `kind` (e.g. FETCH_ERROR) with INTERNAL_ERROR that says so: a publisher
/// that never answers must not leave the downstream request unanswered.
pub(crate) async fn upstream_answer<T>(
    kind: MessageType,
    answer: impl std::future::Future<Output = Result<T, SessionError>>,
) -> Result<T, SessionError> {
    tokio::time::timeout(UPSTREAM_ANSWER, answer)
        .await
        .unwrap_or_else(|_| {
            Err(SessionError::Rejected {
                kind,
                code: RequestErrorCode::INTERNAL_ERROR.code(),
                reason: format!("publisher did not answer within {UPSTREAM_ANSWER:?}"),
            })
        })
}

/// The track for a downstream subscription: the live entry, or a new one subscribed upstream
/// at every publisher of a matching namespace (or the upstream relay), waiting briefly for one
/// to appear. Answers once the first publisher accepted, or with the first refusal when all
/// refused.
pub(crate) async fn track_for(
    shared: &Arc<Shared>,
    name: &TrackName,
    upstream: bool,
) -> Result<Acquired, (RequestErrorCode, String)> {
    let registry = &shared.registry;
    let deadline = tokio::time::Instant::now() + shared.config.namespace_wait;
    loop {
        // Registered before checking, so a notify_waiters() in between is not missed.
        let notified = registry.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(t) = registry.track(name) {
            return Ok(Acquired::existing(t));
        }
        // Only publishers whose credentials cover this very namespace are asked (§8.4): one
        // allowed to announce `live` is not a publisher of `live/vip` if a rule protects it.
        let rules = &shared.config.auth;
        let mut routes =
            registry.routes_for(&name.namespace, |r| r.may_publish(rules, &name.namespace));
        if routes.is_empty() && upstream && shared.config.upstream.is_some() {
            routes.extend(upstream_route(shared, &name.namespace).await);
        }
        if !routes.is_empty() {
            let lock = registry.track_lock(name);
            let _guard = lock.lock().await;
            if let Some(t) = registry.track(name) {
                return Ok(Acquired::existing(t));
            }
            let producer = TrackProducer::new(name.clone(), shared.config.track.clone());
            let entry = TrackEntry::new(producer, Origin::Upstream);
            let (tx, mut rx) = mpsc::channel(routes.len());
            for route in routes {
                let (shared, name, entry, tx) =
                    (shared.clone(), name.clone(), entry.clone(), tx.clone());
                tokio::spawn(async move {
                    // A publisher that never answers must not hold the SUBSCRIBE (and the
                    // track's lock) forever.
                    let r = tokio::time::timeout(
                        UPSTREAM_ANSWER,
                        subscribe_upstream(&shared, &name, &entry, route),
                    )
                    .await
                    .unwrap_or_else(|_| {
                        Err((
                            RequestErrorCode::INTERNAL_ERROR,
                            format!("publisher did not answer within {UPSTREAM_ANSWER:?}"),
                        ))
                    });
                    let _ = tx.send(r).await;
                });
            }
            drop(tx);
            let mut first_error = None;
            while let Some(r) = rx.recv().await {
                match r {
                    Ok(largest) => {
                        registry.add_track(name.clone(), entry.clone());
                        return Ok(Acquired {
                            entry,
                            opened: Some(largest),
                        });
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            entry.close_upstreams();
            return Err(first_error.unwrap_or((
                RequestErrorCode::INTERNAL_ERROR,
                "no publisher answered".into(),
            )));
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            // The same code in FETCH_ERROR's and TRACK_STATUS_ERROR's tables (§13.1.2, §13.1.5).
            let code = SubscribeErrorCode::TrackDoesNotExist.into();
            return Err((code, format!("no publisher for {name}")));
        }
    }
}

/// Subscribes to `name` at `route`'s publisher into `entry`, and ends the entry's track when
/// this was its last live upstream and it ended.
async fn subscribe_upstream(
    shared: &Arc<Shared>,
    name: &TrackName,
    entry: &Arc<TrackEntry>,
    route: Route,
) -> Result<Option<Location>, (RequestErrorCode, String)> {
    let (keepalive, ended, largest) = match route.publisher.subscribe(name, &entry.producer).await {
        Ok(s) => s,
        Err(SessionError::Rejected { code, reason, .. }) => {
            return Err((RequestErrorCode::raw(code), reason))
        }
        Err(e) => return Err((RequestErrorCode::INTERNAL_ERROR, format!("upstream: {e}"))),
    };
    if !entry.add_upstream(route.session_id, keepalive) {
        return Ok(largest);
    }
    tracing::debug!(track = %name, publisher = route.session_id, "upstream subscription added");
    let (shared, name, entry) = (shared.clone(), name.clone(), entry.clone());
    tokio::spawn(async move {
        let end = ended.await;
        if entry.upstream_ended(route.session_id, end) {
            shared.registry.remove_track(&name, &entry);
        }
    });
    Ok(largest)
}

/// A publisher announced `route`: it also gets a SUBSCRIBE for every active upstream track
/// under its namespace (§8.4).
pub(crate) fn join_route(shared: &Arc<Shared>, route: &Route) {
    for (name, entry) in shared.registry.upstream_tracks_under(&route.namespace) {
        if entry.has_upstream(route.session_id)
            || !route.may_publish(&shared.config.auth, &name.namespace)
        {
            continue;
        }
        let (shared, route) = (shared.clone(), route.clone());
        tokio::spawn(async move {
            tracing::info!(track = %name, publisher = route.session_id, "new publisher joins an active track");
            if let Err((code, reason)) = subscribe_upstream(&shared, &name, &entry, route).await {
                tracing::debug!(track = %name, code = code.code(), %reason, "joining publisher refused");
            }
        });
    }
}

/// The track for a new downstream subscription, counted as one of its readers: like
/// [`track_for`], but an entry whose last reader is just closing it is not joined (it would
/// never receive another object); the track is looked up, or subscribed, afresh.
pub(crate) async fn acquire_track(
    shared: &Arc<Shared>,
    name: &TrackName,
    upstream: bool,
) -> Result<Acquired, (RequestErrorCode, String)> {
    loop {
        let got = track_for(shared, name, upstream).await?;
        if got.entry.acquire() {
            return Ok(got);
        }
        shared.registry.remove_track(name, &got.entry);
    }
}

/// A track for a downstream subscription, and whether this request opened it.
pub(crate) struct Acquired {
    /// The shared track.
    pub(crate) entry: Arc<TrackEntry>,
    /// Set when this request's upstream SUBSCRIBE created the track: the Largest Location the
    /// upstream publisher reported (none for moq-lite, or when nothing was published yet).
    /// Everything the track holds came after it, for this request.
    pub(crate) opened: Option<Option<Location>>,
}

impl Acquired {
    fn existing(entry: Arc<TrackEntry>) -> Self {
        Acquired {
            entry,
            opened: None,
        }
    }
}

/// One downstream subscription ended; the last one releases the upstream subscriptions.
pub(crate) fn release(shared: &Shared, name: &TrackName, entry: &Arc<TrackEntry>) {
    if entry.release() {
        shared.registry.remove_track(name, entry);
    }
}
