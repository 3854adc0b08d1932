//! moq-lite sessions in the relay: broadcasts a lite client announces become routes, lite
//! SUBSCRIBEs read the same shared tracks as draft-14 subscriptions, and lite ANNOUNCE_PLEASE is
//! answered from the registry — so each profile can consume what the other publishes. Every
//! one of them goes through the same request path ([`admit`]) as a draft-14 request.

use super::auth::Credentials;
use super::metrics::LiteKind;
use super::registry::{subscribe_filter, NsEvent, NsSubscriber, Publisher, Route};
use super::request::{admit, Ask, Peer, Permit};
use super::serve::Shared;
use super::upstream::{acquire_track, join_route, release};
use moqlink_model::{Blob, TrackNamespace};
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::lite::{
    namespace_of, path_of, LiteAnnounceRequest, LiteAnnouncer, LiteEvent, LiteSession,
    LiteSubscribeRequest,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

type Lite = LiteSession<AnyConnection>;

/// The credentials of a lite session: a token in the URL it connected to (`?jwt=` as moq-dev's
/// clients send it, or `?token=`; the WebTransport path or the PATH setup parameter) and any
/// AUTHORIZATION_TOKEN (USE_VALUE) in its CLIENT_SETUP.
pub(crate) fn lite_credentials(session: &Lite, url_path: Option<&str>) -> Credentials {
    let setup = session.peer_setup();
    let tokens = setup.auth_tokens().filter_map(|t| match t {
        moqlink_model::params::Token::UseValue { token_value, .. } => Some(token_value.to_vec()),
        _ => None,
    });
    Credentials::of_session(url_path.or_else(|| setup_path(setup)), tokens)
}

/// The PATH setup parameter, as text.
pub(crate) fn setup_path(setup: &moqlink_model::params::SetupParameters) -> Option<&str> {
    setup.path().and_then(|p| p.as_text())
}

/// Serves one lite session until it ends.
pub(crate) async fn serve_lite(
    shared: Arc<Shared>,
    peer: Arc<Peer>,
    session: Lite,
    mut events: mpsc::Receiver<LiteEvent<AnyConnection>>,
) {
    let id = peer.id;
    shared.registry.open_session(id);
    // Learn what the client publishes: ANNOUNCE_PLEASE with the empty prefix, as moq-dev's
    // relays do. Each announced broadcast is a PUBLISH_NAMESPACE to the request path.
    let (s, sh, p) = (session.clone(), shared.clone(), peer.clone());
    tokio::spawn(async move {
        let Ok(mut rx) = s.announce_please(&Blob::EMPTY).await else {
            return;
        };
        while let Some((path, active)) = rx.recv().await {
            let namespace = namespace_of(&path);
            if !active {
                tracing::info!(session = id, broadcast = %path, "lite ANNOUNCE ended");
                sh.registry.remove_route(id, &namespace);
                continue;
            }
            let ask = Ask::PublishNamespace(namespace.clone());
            let permit = match admit(&sh.config.auth, &sh.config.limits, &p, &ask, &[]) {
                Ok(permit) => permit,
                Err(r) => {
                    // moq-lite has no answer to an ANNOUNCE: the broadcast is not routed.
                    tracing::info!(session = id, broadcast = %path, reason = %r.reason, "lite ANNOUNCE refused");
                    sh.metrics
                        .lite_answered(LiteKind::Announce, Some(r.code.code()));
                    continue;
                }
            };
            tracing::info!(session = id, broadcast = %path, "lite ANNOUNCE active");
            sh.metrics.lite_answered(LiteKind::Announce, None);
            let route = Route {
                session_id: id,
                publisher: Publisher::Lite(s.clone()),
                namespace,
                credentials: Some(permit.credentials.clone()),
                hold: Arc::new(permit),
            };
            if sh.registry.add_route(route.clone()) {
                join_route(&sh, &route);
            }
        }
    });
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(LiteEvent::Subscribe(req)) => {
                    let ask = Ask::Subscribe(req.name());
                    match admit(&shared.config.auth, &shared.config.limits, &peer, &ask, &[]) {
                        Ok(permit) => {
                            tokio::spawn(subscribe(shared.clone(), req, permit));
                        }
                        Err(r) => {
                            tracing::info!(session = id, track = %req.name(), reason = %r.reason, "lite SUBSCRIBE refused");
                            shared.metrics.lite_answered(LiteKind::Subscribe, Some(r.code.code()));
                            req.reject(&format!("0x{:x} {}", r.code.code(), r.reason));
                        }
                    }
                }
                Some(LiteEvent::AnnouncePlease(req)) => {
                    let prefix = namespace_of(&req.prefix);
                    let ask = Ask::SubscribeNamespace(prefix.clone());
                    match admit(&shared.config.auth, &shared.config.limits, &peer, &ask, &[]) {
                        Ok(permit) => {
                            shared.metrics.lite_answered(LiteKind::AnnouncePlease, None);
                            tokio::spawn(announce(shared.clone(), id, req, prefix, permit));
                        }
                        Err(r) => {
                            tracing::info!(session = id, prefix = %req.prefix, reason = %r.reason, "lite ANNOUNCE_PLEASE refused");
                            shared.metrics.lite_answered(LiteKind::AnnouncePlease, Some(r.code.code()));
                            req.reject(&r.reason);
                        }
                    }
                }
                None => break,
            },
            close = session.closed() => {
                tracing::info!(session = id, %close, "lite session ended");
                break;
            }
        }
    }
    shared.registry.remove_session(id);
}

async fn subscribe(shared: Arc<Shared>, req: LiteSubscribeRequest<AnyConnection>, permit: Permit) {
    let name = req.name();
    tracing::info!(track = %name, "lite SUBSCRIBE");
    let entry = match acquire_track(&shared, &name, true).await {
        Ok(e) => e.entry,
        Err((code, reason)) => {
            let code = code.code();
            shared
                .metrics
                .lite_answered(LiteKind::Subscribe, Some(code));
            req.reject(&format!("0x{code:x} {reason}"));
            return;
        }
    };
    tracing::debug!(track = %name, "serving lite SUBSCRIBE");
    match req.serve(&entry.producer).await {
        Ok(task) => {
            shared.metrics.lite_answered(LiteKind::Subscribe, None);
            let _ = task.await;
        }
        Err(e) => tracing::debug!(error = %e, "lite SUBSCRIBE_OK not sent"),
    }
    release(&shared, &name, &entry);
    drop(permit);
}

/// Answers ANNOUNCE_PLEASE: the namespaces under the prefix the session's credentials allow,
/// then their changes.
async fn announce(
    shared: Arc<Shared>,
    id: u64,
    req: LiteAnnounceRequest<AnyConnection>,
    prefix: TrackNamespace,
    permit: Permit,
) {
    let filter = subscribe_filter(&shared.config.auth, &permit.credentials);
    let (tx, mut rx) = mpsc::channel(shared.config.limits.namespace_events.max(1));
    let lagged = Arc::new(AtomicBool::new(false));
    // moq-lite lets a session hold overlapping Announce streams; each is its own entry.
    let added = shared.registry.add_ns_subscriber(
        NsSubscriber {
            key: 0,
            session_id: id,
            prefix: prefix.clone(),
            filter: filter.clone(),
            tx,
            lagged: lagged.clone(),
            hold: Arc::new(()),
        },
        false,
    );
    let Ok((key, current)) = added else {
        return;
    };
    let mut told: HashSet<Blob> = namespaces(&current).map(path_of).collect();
    let paths: Vec<Blob> = told.iter().cloned().collect();
    let mut announcer = match req.respond(&paths).await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(error = %e, "ANNOUNCE_INIT not sent");
            shared.registry.remove_ns_key(key);
            return;
        }
    };
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let ok = match ev {
                    Some(NsEvent::Namespace(ns)) => tell(&mut announcer, &mut told, path_of(&ns), true).await,
                    Some(NsEvent::NamespaceDone(ns)) => tell(&mut announcer, &mut told, path_of(&ns), false).await,
                    Some(NsEvent::Track(_)) => true,
                    None => false,
                };
                if !ok {
                    break;
                }
                if rx.is_empty() && lagged.swap(false, Ordering::AcqRel) {
                    // Events overflowed the queue: catch up from the registry as it is now.
                    let now = shared.registry.ns_snapshot(id, &prefix, &filter);
                    let live: HashSet<Blob> = namespaces(&now).map(path_of).collect();
                    let gone: Vec<Blob> = told.difference(&live).cloned().collect();
                    let mut ok = true;
                    for p in gone {
                        ok &= tell(&mut announcer, &mut told, p, false).await;
                    }
                    for p in live {
                        ok &= tell(&mut announcer, &mut told, p, true).await;
                    }
                    if !ok {
                        break;
                    }
                }
            },
            _ = announcer.closed() => break,
        }
    }
    shared.registry.remove_ns_key(key);
    drop(permit);
}

fn namespaces(events: &[NsEvent]) -> impl Iterator<Item = &TrackNamespace> {
    events.iter().filter_map(|ev| match ev {
        NsEvent::Namespace(ns) => Some(ns),
        _ => None,
    })
}

/// Tells the lite subscriber `path` became active or ended, once per change.
async fn tell(
    announcer: &mut LiteAnnouncer<AnyConnection>,
    told: &mut HashSet<Blob>,
    path: Blob,
    active: bool,
) -> bool {
    let changed = if active {
        told.insert(path.clone())
    } else {
        told.remove(&path)
    };
    !changed || announcer.announce(&path, active).await.is_ok()
}
