//! The relay's one request path. Every request either protocol makes — draft-14 SUBSCRIBE,
//! FETCH, TRACK_STATUS, PUBLISH_NAMESPACE, PUBLISH, SUBSCRIBE_NAMESPACE; moq-lite SUBSCRIBE,
//! ANNOUNCE, ANNOUNCE_PLEASE — becomes an [`Ask`], and [`admit`] decides it: the name must be
//! one draft-14 can carry, the session's credentials must allow the action on the namespace,
//! and the session must be within its limits. What serves a request takes the [`Permit`], which
//! only `admit` makes, so no protocol path can reach the registry without passing here.

use super::auth::{Action, AuthRules, Credentials};
use moqlink_model::codes::RequestErrorCode;
use moqlink_model::limits::{MAX_FULL_TRACK_NAME, MAX_NAMESPACE_FIELDS, MIN_NAMESPACE_FIELDS};
use moqlink_model::TrackNamespace;
use moqlink_transport::session::AuthToken;
use moqlink_transport::track::TrackName;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The namespace of a request that names none.
static EMPTY: TrackNamespace = TrackNamespace(Vec::new());

/// What one session may hold at once. Every field is a count of concurrent things; a request
/// beyond it is refused with INTERNAL_ERROR and a reason naming the limit.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Namespaces published (PUBLISH_NAMESPACE, moq-lite ANNOUNCE); default 256.
    pub namespaces: usize,
    /// Namespace subscriptions (SUBSCRIBE_NAMESPACE, moq-lite ANNOUNCE_PLEASE); default 32.
    pub namespace_subscriptions: usize,
    /// Track subscriptions (SUBSCRIBE, moq-lite SUBSCRIBE); default 1024.
    pub subscriptions: usize,
    /// FETCHes in progress; default 64.
    pub fetches: usize,
    /// Tracks PUBLISHed; default 256.
    pub published_tracks: usize,
    /// Namespace events queued per namespace subscription; past it the subscription is
    /// resynchronised from the registry instead of queueing more; default 1024.
    pub namespace_events: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            namespaces: 256,
            namespace_subscriptions: 32,
            subscriptions: 1024,
            fetches: 64,
            published_tracks: 256,
            namespace_events: 1024,
        }
    }
}

/// A request, whichever protocol asked.
#[derive(Debug, Clone)]
pub(crate) enum Ask {
    /// Subscribe to a track (draft-14 SUBSCRIBE, moq-lite SUBSCRIBE).
    Subscribe(TrackName),
    /// Fetch past objects of a track (standalone FETCH).
    Fetch(TrackName),
    /// Fetch what precedes one of the session's own subscriptions (joining FETCH, §9.16.2):
    /// authorized with that subscription, counted with the fetches.
    JoiningFetch,
    /// A track's status (TRACK_STATUS).
    TrackStatus(TrackName),
    /// Publish a track (PUBLISH).
    Publish(TrackName),
    /// Publish a namespace (PUBLISH_NAMESPACE, moq-lite ANNOUNCE).
    PublishNamespace(TrackNamespace),
    /// Learn namespaces under a prefix (SUBSCRIBE_NAMESPACE, moq-lite ANNOUNCE_PLEASE).
    SubscribeNamespace(TrackNamespace),
}

impl Ask {
    fn kind(&self) -> Kind {
        match self {
            Ask::Subscribe(_) => Kind::Subscriptions,
            Ask::Fetch(_) | Ask::JoiningFetch => Kind::Fetches,
            Ask::TrackStatus(_) => Kind::None,
            Ask::Publish(_) => Kind::PublishedTracks,
            Ask::PublishNamespace(_) => Kind::Namespaces,
            Ask::SubscribeNamespace(_) => Kind::NamespaceSubscriptions,
        }
    }

    fn action(&self) -> Action {
        match self {
            Ask::Publish(_) | Ask::PublishNamespace(_) => Action::Publish,
            _ => Action::Subscribe,
        }
    }

    fn namespace(&self) -> &TrackNamespace {
        match self {
            Ask::Subscribe(t) | Ask::Fetch(t) | Ask::TrackStatus(t) | Ask::Publish(t) => {
                &t.namespace
            }
            Ask::PublishNamespace(n) | Ask::SubscribeNamespace(n) => n,
            Ask::JoiningFetch => &EMPTY,
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Subscriptions,
    Fetches,
    PublishedTracks,
    Namespaces,
    NamespaceSubscriptions,
    None,
}

const KINDS: usize = 5;

/// Why a request was refused: the request error code and reason phrase to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: RequestErrorCode,
    pub(crate) reason: String,
}

/// What the whole relay holds right now: sessions whose request-path state is alive, and the
/// requests admitted and not yet released (for tests and soak checks).
#[derive(Debug, Default)]
pub struct LiveCounts {
    sessions: AtomicUsize,
    held: [AtomicUsize; KINDS],
    /// Requests refused by the authorization rules.
    denials: AtomicU64,
    /// Requests refused at a per-session limit, by kind (as `held`).
    limit_hits: [AtomicU64; KINDS],
}

impl LiveCounts {
    /// Sessions whose state (any task serving them) is still alive.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::Acquire)
    }

    /// Track subscriptions held (draft-14 and moq-lite SUBSCRIBE).
    pub fn subscriptions(&self) -> usize {
        self.held[0].load(Ordering::Acquire)
    }

    /// Requests of every kind held (subscriptions, fetches, namespaces...).
    pub fn requests(&self) -> usize {
        self.held.iter().map(|h| h.load(Ordering::Acquire)).sum()
    }

    /// Requests refused by the authorization rules so far.
    pub fn denials(&self) -> u64 {
        self.denials.load(Ordering::Relaxed)
    }

    /// Requests refused at a per-session limit so far, by limit.
    pub fn limit_hits(&self) -> [(&'static str, u64); KINDS] {
        std::array::from_fn(|i| (LIMIT_NAMES[i], self.limit_hits[i].load(Ordering::Relaxed)))
    }
}

/// The per-session limits, in `held` order ([`SessionLimits`] field names).
const LIMIT_NAMES: [&str; KINDS] = [
    "subscriptions",
    "fetches",
    "published_tracks",
    "namespaces",
    "namespace_subscriptions",
];

/// One session as the request path sees it: who it is and what it holds.
#[derive(Debug)]
pub(crate) struct Peer {
    /// The relay's session ID.
    pub(crate) id: u64,
    /// What the session presented at connection and SETUP.
    pub(crate) credentials: Credentials,
    held: Arc<[AtomicUsize; KINDS]>,
    live: Arc<LiveCounts>,
}

impl Peer {
    /// A session with its connection-time credentials, counted in `live` while it exists.
    pub(crate) fn new(id: u64, credentials: Credentials, live: Arc<LiveCounts>) -> Arc<Self> {
        live.sessions.fetch_add(1, Ordering::AcqRel);
        Arc::new(Peer {
            id,
            credentials,
            held: Arc::new(Default::default()),
            live,
        })
    }
}

impl Peer {
    /// Requests the session holds now (subscriptions, fetches, namespaces...).
    pub(crate) fn open_requests(&self) -> usize {
        self.held.iter().map(|h| h.load(Ordering::Relaxed)).sum()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.live.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The relay's leave to serve one admitted request; dropping it frees the session's slot.
#[derive(Debug)]
pub(crate) struct Permit {
    held: Option<(Arc<[AtomicUsize; KINDS]>, Arc<LiveCounts>, usize)>,
    /// The credentials the request was admitted with (session ones plus the request's own).
    pub(crate) credentials: Credentials,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((held, live, i)) = self.held.take() {
            held[i].fetch_sub(1, Ordering::AcqRel);
            live.held[i].fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Whether `name` is one draft-14 can carry (§2.4.1): 1 to 32 namespace fields and at most
/// 4096 bytes in all. moq-lite paths have no such limits; names past them are refused where
/// they enter, never forwarded to a draft-14 peer.
pub(crate) fn carriable(namespace: &TrackNamespace, name: &[u8]) -> Result<(), String> {
    let fields = namespace.fields().len();
    if !(MIN_NAMESPACE_FIELDS..=MAX_NAMESPACE_FIELDS).contains(&fields) {
        return Err(format!(
            "a namespace has {MIN_NAMESPACE_FIELDS} to {MAX_NAMESPACE_FIELDS} fields (§2.4.1), this one {fields}"
        ));
    }
    let len: usize = namespace.fields().iter().map(|f| f.len()).sum::<usize>() + name.len();
    if len > MAX_FULL_TRACK_NAME {
        return Err(format!(
            "a full track name has at most {MAX_FULL_TRACK_NAME} bytes (§2.4.1), this one {len}"
        ));
    }
    Ok(())
}

/// Decides a request: valid name, authorized, within the session's limits. `tokens` are the
/// request's own AUTHORIZATION_TOKENs (draft-14), checked with the session's credentials.
pub(crate) fn admit(
    rules: &AuthRules,
    limits: &SessionLimits,
    peer: &Peer,
    ask: &Ask,
    tokens: &[AuthToken],
) -> Result<Permit, Refusal> {
    let refuse = |code, reason: String| Err(Refusal { code, reason });
    match ask {
        Ask::Subscribe(t) | Ask::Fetch(t) | Ask::TrackStatus(t) | Ask::Publish(t) => {
            if let Err(why) = carriable(&t.namespace, &t.name) {
                return refuse(RequestErrorCode::NOT_SUPPORTED, why);
            }
        }
        Ask::PublishNamespace(ns) => {
            if let Err(why) = carriable(ns, &[]) {
                return refuse(RequestErrorCode::NOT_SUPPORTED, why);
            }
        }
        // A prefix may be empty (moq-lite ANNOUNCE_PLEASE ""); what it reveals is checked per
        // namespace.
        Ask::SubscribeNamespace(ns) if ns.fields().len() > MAX_NAMESPACE_FIELDS => {
            return refuse(
                RequestErrorCode::NOT_SUPPORTED,
                "a prefix has at most 32 fields (§9.28)".into(),
            );
        }
        Ask::SubscribeNamespace(_) | Ask::JoiningFetch => {}
    }
    let credentials = if tokens.is_empty() {
        peer.credentials.clone()
    } else {
        peer.credentials.with_tokens(tokens)
    };
    let allowed = match ask {
        Ask::JoiningFetch => true,
        Ask::SubscribeNamespace(prefix) => rules.may_subscribe_under(prefix, &credentials),
        other => rules.allows(other.action(), other.namespace(), &credentials),
    };
    if !allowed {
        peer.live.denials.fetch_add(1, Ordering::Relaxed);
        return refuse(
            RequestErrorCode::UNAUTHORIZED,
            "not authorized for this namespace".into(),
        );
    }
    let (i, max, what) = match ask.kind() {
        Kind::Subscriptions => (0, limits.subscriptions, "subscriptions"),
        Kind::Fetches => (1, limits.fetches, "fetches"),
        Kind::PublishedTracks => (2, limits.published_tracks, "published tracks"),
        Kind::Namespaces => (3, limits.namespaces, "published namespaces"),
        Kind::NamespaceSubscriptions => {
            (4, limits.namespace_subscriptions, "namespace subscriptions")
        }
        Kind::None => {
            return Ok(Permit {
                held: None,
                credentials,
            })
        }
    };
    let taken = peer.held[i].fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        (n < max).then_some(n + 1)
    });
    if taken.is_err() {
        peer.live.limit_hits[i].fetch_add(1, Ordering::Relaxed);
        return refuse(
            RequestErrorCode::INTERNAL_ERROR,
            format!("limit reached: at most {max} {what} per session"),
        );
    }
    peer.live.held[i].fetch_add(1, Ordering::AcqRel);
    Ok(Permit {
        held: Some((peer.held.clone(), peer.live.clone(), i)),
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use moqlink_model::Blob;

    fn ns(p: &str) -> TrackNamespace {
        TrackNamespace::from_path(p)
    }

    #[test]
    fn names_draft_14_cannot_carry_are_refused() {
        let rules = AuthRules::default();
        let limits = SessionLimits::default();
        let peer = Peer::new(1, Credentials::default(), Default::default());
        let empty = Ask::PublishNamespace(TrackNamespace::default());
        let e = admit(&rules, &limits, &peer, &empty, &[]).unwrap_err();
        assert_eq!(e.code, RequestErrorCode::NOT_SUPPORTED);
        let deep = TrackNamespace((0..33).map(|i| Blob::from(format!("f{i}"))).collect());
        let sub = Ask::Subscribe(TrackName {
            namespace: deep,
            name: Blob::from("t"),
        });
        assert!(admit(&rules, &limits, &peer, &sub, &[]).is_err());
        let long = Ask::Subscribe(TrackName {
            namespace: ns("a"),
            name: Blob::from(vec![b'x'; 4096]),
        });
        assert!(admit(&rules, &limits, &peer, &long, &[]).is_err());
        let fits = Ask::Subscribe(TrackName {
            namespace: ns("a"),
            name: Blob::from(vec![b'x'; 4095]),
        });
        assert!(admit(&rules, &limits, &peer, &fits, &[]).is_ok());
        let all = Ask::SubscribeNamespace(TrackNamespace::default());
        assert!(admit(&rules, &limits, &peer, &all, &[]).is_ok());
    }

    #[test]
    fn a_session_holds_at_most_its_limit_and_a_dropped_permit_frees_a_slot() {
        let rules = AuthRules::default();
        let limits = SessionLimits {
            subscriptions: 2,
            ..Default::default()
        };
        let peer = Peer::new(1, Credentials::default(), Default::default());
        let other = Peer::new(2, Credentials::default(), Default::default());
        let ask = Ask::Subscribe(TrackName::new("a", "t"));
        let p1 = admit(&rules, &limits, &peer, &ask, &[]).unwrap();
        let _p2 = admit(&rules, &limits, &peer, &ask, &[]).unwrap();
        let e = admit(&rules, &limits, &peer, &ask, &[]).unwrap_err();
        assert_eq!(e.code, RequestErrorCode::INTERNAL_ERROR);
        assert!(e.reason.contains("at most 2 subscriptions"), "{}", e.reason);
        // Another session has its own count; other kinds are counted apart.
        assert!(admit(&rules, &limits, &other, &ask, &[]).is_ok());
        let fetch = Ask::Fetch(TrackName::new("a", "t"));
        assert!(admit(&rules, &limits, &peer, &fetch, &[]).is_ok());
        drop(p1);
        assert!(admit(&rules, &limits, &peer, &ask, &[]).is_ok());
    }
}
