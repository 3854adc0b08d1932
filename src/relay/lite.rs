//! moq-lite sessions in the relay: broadcasts a lite client announces become routes, lite
//! SUBSCRIBEs read the same shared tracks as draft-14 subscriptions, and lite ANNOUNCE_PLEASE is
//! answered from the registry — so each profile can consume what the other publishes.

use super::registry::{NsEvent, Publisher, Route};
use super::serve::Shared;
use super::upstream::{join_route, release, track_for};
use moqlink_model::Blob;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::lite::{
    namespace_of, path_of, LiteAnnounceRequest, LiteEvent, LiteSession, LiteSubscribeRequest,
};
use std::sync::Arc;
use tokio::sync::mpsc;

type Lite = LiteSession<AnyConnection>;

/// Serves one lite session until it ends.
pub(crate) async fn serve_lite(
    shared: Arc<Shared>,
    id: u64,
    session: Lite,
    mut events: mpsc::Receiver<LiteEvent<AnyConnection>>,
) {
    // Learn what the client publishes: ANNOUNCE_PLEASE with the empty prefix, as moq-dev's
    // relays do.
    let (s, sh) = (session.clone(), shared.clone());
    tokio::spawn(async move {
        let Ok(mut rx) = s.announce_please(&Blob::EMPTY).await else {
            return;
        };
        while let Some((path, active)) = rx.recv().await {
            let namespace = namespace_of(&path);
            if active {
                tracing::info!(session = id, broadcast = %path, "lite ANNOUNCE active");
                let route = Route {
                    session_id: id,
                    publisher: Publisher::Lite(s.clone()),
                    namespace,
                };
                sh.registry.add_route(route.clone());
                join_route(&sh, &route);
            } else {
                tracing::info!(session = id, broadcast = %path, "lite ANNOUNCE ended");
                sh.registry.remove_route(id, &namespace);
            }
        }
    });
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(LiteEvent::Subscribe(req)) => {
                    tokio::spawn(subscribe(shared.clone(), req));
                }
                Some(LiteEvent::AnnouncePlease(req)) => {
                    tokio::spawn(announce(shared.clone(), id, req));
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

async fn subscribe(shared: Arc<Shared>, req: LiteSubscribeRequest<AnyConnection>) {
    let name = req.name();
    tracing::info!(track = %name, "lite SUBSCRIBE");
    let entry = match track_for(&shared, &name, true).await {
        Ok(e) => e,
        Err((code, reason)) => {
            req.reject(&format!("0x{code:x} {reason}"));
            return;
        }
    };
    entry.acquire();
    tracing::debug!(track = %name, "serving lite SUBSCRIBE");
    match req.serve(&entry.producer).await {
        Ok(task) => {
            let _ = task.await;
        }
        Err(e) => tracing::debug!(error = %e, "lite SUBSCRIBE_OK not sent"),
    }
    release(&shared, &name, &entry);
}

async fn announce(shared: Arc<Shared>, id: u64, req: LiteAnnounceRequest<AnyConnection>) {
    let prefix = namespace_of(&req.prefix);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let current = shared.registry.add_ns_subscriber(id, prefix.clone(), tx);
    let paths: Vec<Blob> = current
        .iter()
        .filter_map(|ev| match ev {
            NsEvent::Namespace(ns) => Some(path_of(ns)),
            _ => None,
        })
        .collect();
    let mut announcer = match req.respond(&paths).await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(error = %e, "ANNOUNCE_INIT not sent");
            shared.registry.remove_ns_subscriber(id, &prefix);
            return;
        }
    };
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(NsEvent::Namespace(ns)) => {
                    if announcer.announce(&path_of(&ns), true).await.is_err() { break }
                }
                Some(NsEvent::NamespaceDone(ns)) => {
                    if announcer.announce(&path_of(&ns), false).await.is_err() { break }
                }
                Some(NsEvent::Track(_)) => {}
                None => break,
            },
            _ = announcer.closed() => break,
        }
    }
    shared.registry.remove_ns_subscriber(id, &prefix);
}
