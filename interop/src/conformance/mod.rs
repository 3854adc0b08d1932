//! The draft-14 conformance suite: checks that run against any relay URL, each citing the draft
//! section it tests. Most checks play publisher and subscriber through the relay on two or three
//! connections and compare exactly what arrives; the rest speak raw control messages to see how
//! the relay answers a rule broken on purpose.
//!
//! Every check declares the requirement it tests: its level (MUST, MUST NOT, SHOULD, SHOULD NOT,
//! MAY), its sections, and the sentence of the draft quoted. A check passes; or misses, with what
//! it expected and what it received, graded by that level: a missed MUST or MUST NOT is a failure,
//! a missed SHOULD is reported as TAP `# TODO` and not counted (unless `--strict`); or is skipped
//! with "peer does not support" when the relay answered the request it needs with NOT_SUPPORTED
//! (0x3). A MUST check may also find that the peer missed a SHOULD the same exchange shows (e.g.
//! the exact error code of §9.18): that is [`Verdict::Should`].

mod answers;
mod control;
mod data;
mod directsub;
mod ext11;
mod fetch;
mod fields;
pub mod harness;
mod layout;
mod level;
mod namespace;
mod params;
mod priority;
pub mod raw;
mod requests;
pub mod robustness;
mod sent;
mod session;
mod setup_params;
mod should_close;
mod streams;
mod subscribe;
mod subscription;
mod timeouts;
pub mod trace;
mod upstream;

use crate::cases::{connection_id, describe_error, Ctx, Failure, Record};
use crate::tap::{CaseResult, Outcome};
use moqlink_model::TrackNamespace;
use moqlink_transport::session::SessionError;
use moqlink_transport::track::TrackName;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use level::Level;

/// Why a check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The relay deviated from the draft.
    Fail(Failure),
    /// The relay answered NOT_SUPPORTED to a request the check needs.
    Unsupported {
        /// The request, e.g. `FETCH`.
        what: String,
        /// The relay's reason phrase.
        reason: String,
    },
    /// The check does not apply here (e.g. a WebTransport rule on a raw QUIC URL).
    NotApplicable(String),
    /// The relay met the check's requirement but missed a SHOULD of the same exchange (named in
    /// the failure's message): reported as TAP `# TODO SHOULD`, whatever the check's level.
    Should(Failure),
}

impl From<Failure> for Verdict {
    fn from(f: Failure) -> Self {
        Verdict::Fail(f)
    }
}

/// A check body's result: a pass message, or why it did not pass.
pub type CheckOutput = Result<String, Verdict>;

/// NOT_SUPPORTED in every request error table (§13.1).
pub const NOT_SUPPORTED: u64 = 0x3;

/// Maps a refused request: NOT_SUPPORTED becomes [`Verdict::Unsupported`], anything else a
/// failure with `expected` and `why`.
pub fn refused(e: SessionError, expected: &str, why: &str) -> Verdict {
    match e {
        SessionError::Rejected {
            kind,
            code: NOT_SUPPORTED,
            reason,
        } => Verdict::Unsupported {
            what: kind.trim_end_matches("_ERROR").to_string(),
            reason,
        },
        e => Verdict::Fail(Failure::new(expected, describe_error(&e), why)),
    }
}

/// What every check gets: the relay, its record, and names unique to this run and check.
#[derive(Clone)]
pub struct Env {
    /// The relay and how to reach it.
    pub ctx: Ctx,
    /// Connection IDs and the current step, kept even when the check times out.
    pub record: Arc<Record>,
    /// A short run-unique token: namespaces never meet a cache of an earlier run.
    pub run: String,
    /// The check's id.
    pub check: &'static str,
}

impl Env {
    /// `moq-conformance/<run>/<check>`: the namespace this check publishes under.
    pub fn namespace(&self) -> TrackNamespace {
        TrackNamespace::from_strs(&["moq-conformance", self.run.as_str(), self.check])
    }

    /// The check's namespace with more fields appended.
    pub fn namespace_with(&self, extra: &[&str]) -> TrackNamespace {
        let mut ns = self.namespace();
        ns.0.extend(extra.iter().map(|f| moqlink_model::Blob::from(*f)));
        ns
    }

    /// Track `name` in the check's namespace.
    pub fn track(&self, name: &str) -> TrackName {
        TrackName {
            namespace: self.namespace(),
            name: moqlink_model::Blob::from(name),
        }
    }

    /// Notes what the check is waiting for now.
    pub fn step(&self, what: impl Into<String>) {
        self.record.step(what);
    }
}

type Runner = fn(Env) -> Pin<Box<dyn Future<Output = CheckOutput> + Send>>;

/// One conformance check.
#[derive(Clone, Copy)]
pub struct CheckInfo {
    /// Its id, e.g. `filter-largest-object`.
    pub id: &'static str,
    /// Its group: `session`, `control`, `namespace`, `subscribe`, `fetch`, `data` or
    /// `robustness`.
    pub group: &'static str,
    /// The draft-14 sections it tests, e.g. `§9.7, §9.8`.
    pub section: &'static str,
    /// Its time limit.
    pub limit: Duration,
    /// What it checks, in one line.
    pub summary: &'static str,
    /// The keyword of the requirement it tests: a missed MUST fails, a missed SHOULD is reported.
    pub level: Level,
    /// The draft's sentence it tests, quoted (whitespace normalised, possibly shortened with `…`).
    pub quote: &'static str,
    run: Runner,
}

impl std::fmt::Debug for CheckInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {})", self.id, self.group, self.section)
    }
}

macro_rules! check {
    ($id:literal, $group:literal, $section:literal, $ms:literal, $f:path, $summary:literal,
     $level:ident, $quote:literal) => {
        CheckInfo {
            id: $id,
            group: $group,
            section: $section,
            limit: Duration::from_millis($ms),
            summary: $summary,
            level: Level::$level,
            quote: $quote,
            run: |env| Box::pin($f(env)),
        }
    };
}

/// The groups, in the order the suite runs them.
pub const GROUPS: &[&str] = &[
    "session",
    "control",
    "namespace",
    "subscribe",
    "fetch",
    "data",
    "robustness",
];

/// Every check, in the order the suite runs them.
pub static CHECKS: &[CheckInfo] = &[
    // session
    check!("setup-version-negotiation-failed", "session", "§9.3.1, §3.4", 4000, session::version_negotiation_failed,
        "CLIENT_SETUP offering only an unknown version is closed with VERSION_NEGOTIATION_FAILED",
        Must, "If the server does not support any of the versions offered by the client…the corresponding peer MUST close the session with VERSION_NEGOTIATION_FAILED."),
    check!("setup-selects-offered-version", "session", "§9.3.1", 4000, session::selects_offered_version,
        "SERVER_SETUP picks draft-14 (0xff00000e) from a list that starts with an unknown version",
        Must, "The client offers the list of the protocol versions it supports; the server MUST reply with one of the versions offered by the client."),
    check!("setup-unknown-parameter-ignored", "session", "§9.3", 4000, session::unknown_setup_parameter,
        "unknown setup parameters (even and odd types) are ignored",
        Must, "To ensure future extensibility of MOQT, endpoints MUST ignore unknown setup parameters."),
    check!("setup-path-over-webtransport", "session", "§9.3.2.2, §3.4", 4000, session::path_over_webtransport,
        "a PATH setup parameter on a WebTransport session is closed with INVALID_PATH",
        Must, "When a PATH parameter is received from a server, or when a PATH parameter is received while WebTransport is used…the session MUST be closed with Invalid Path."),
    check!("control-stream-finished", "session", "§3.3", 4000, session::control_stream_finished,
        "a client ending its control stream (FIN) while the session is active is closed with PROTOCOL_VIOLATION",
        MustNot, "The control stream MUST NOT be closed at the underlying transport layer while the session is active."),
    check!("goaway-with-uri-from-client", "session", "§9.4", 4000, session::goaway_with_uri,
        "a GOAWAY with a New Session URI sent to a server is closed with PROTOCOL_VIOLATION",
        Must, "If a server receives a GOAWAY with a non-zero New Session URI Length it MUST terminate the session with a PROTOCOL_VIOLATION."),
    check!("goaway-twice", "session", "§9.4", 10000, session::goaway_twice,
        "a second GOAWAY, sent once the relay answered a request made after the first, is closed with PROTOCOL_VIOLATION",
        Must, "The endpoint MUST terminate the session with a PROTOCOL_VIOLATION (Section 3.4) if it receives multiple GOAWAY messages."),
    check!("goaway-keeps-subscriptions", "session", "§9.4", 12000, session::goaway_keeps_subscriptions,
        "after a client's GOAWAY its subscriptions keep delivering (GOAWAY does not impact subscription state; no MUST)",
        May, "A subscriber SHOULD individually UNSUBSCRIBE for each existing subscription, while a publisher MAY reject new requests after sending a GOAWAY."),
    check!("max-request-id-zero-honoured", "session", "§9.3.2.3, §9.5", 8000, session::max_request_id_zero,
        "a relay sends no request to a client that granted none (no MAX_REQUEST_ID)",
        MustNot, "The default value is 0, so if not specified, the peer MUST NOT send requests."),
    check!("server-setup-no-authority", "session", "§9.3.2.1", 4000, setup_params::no_authority,
        "SERVER_SETUP carries no AUTHORITY parameter",
        MustNot, "It MUST NOT be used by the server, or when WebTransport is used."),
    check!("server-setup-no-path", "session", "§9.3.2.2", 4000, setup_params::no_path,
        "SERVER_SETUP carries no PATH parameter",
        MustNot, "It MUST NOT be used by the server, or when WebTransport is used."),
    check!("setup-path-malformed", "session", "§9.3.2.2, §3.4", 4000, setup_params::path_malformed,
        "a PATH that is not path-abempty (no leading /) over raw QUIC is closed with MALFORMED_PATH",
        Must, "If a PATH does not conform to these rules, the session MUST be closed with Malformed Path."),
    check!("setup-authority-malformed", "session", "§9.3.2.1, §3.4", 4000, setup_params::authority_malformed,
        "an AUTHORITY that is not RFC 3986 syntax over raw QUIC is closed with MALFORMED_AUTHORITY",
        Must, "If an AUTHORITY parameter does not conform to these rules, the session MUST be closed with Malformed Authority."),
    check!("setup-authority-over-webtransport", "session", "§9.3.2.1, §3.4", 4000, setup_params::authority_over_webtransport,
        "an AUTHORITY setup parameter on a WebTransport session is closed with INVALID_AUTHORITY",
        Must, "When an AUTHORITY parameter is received from a server, or when an AUTHORITY parameter is received while WebTransport is used…the session MUST be closed with Invalid Authority."),
    check!("server-setup-implementation-utf8", "session", "§9.3.2.6", 4000, setup_params::implementation_utf8,
        "MOQT_IMPLEMENTATION in SERVER_SETUP, if present, is valid UTF-8",
        Should, "This SHOULD be a UTF-8 encoded string [RFC3629], though the message does not carry information, such as language tags, that would aid comprehension by any entity other than the one that created the text."),
    check!("goaway-no-new-requests", "session", "§9.4", 10000, upstream::goaway_no_new_requests,
        "after a publisher's GOAWAY the relay sends it no new SUBSCRIBE for a new subscriber",
        ShouldNot, "Upon receiving a GOAWAY, an endpoint SHOULD NOT initiate new requests to the peer including SUBSCRIBE, PUBLISH, FETCH, PUBLISH_NAMESPACE, SUBSCRIBE_NAMESPACE and TRACK_SATUS."),
    // control
    check!("request-id-parity", "control", "§9.1, §3.4", 4000, control::request_id_parity,
        "a client request with an odd Request ID is closed with INVALID_REQUEST_ID",
        Must, "If an endpoint receives a Request ID that is not valid for the peer…it MUST close the session with INVALID_REQUEST_ID."),
    check!("request-id-reused", "control", "§9.1, §3.4", 4000, control::request_id_reused,
        "a Request ID used twice is closed with INVALID_REQUEST_ID",
        Must, "If an endpoint receives…a new request with a Request ID that is not expected, it MUST close the session with INVALID_REQUEST_ID."),
    check!("request-id-skipped", "control", "§9.1, §3.4", 4000, control::request_id_skipped,
        "a Request ID that skips the next expected one is closed with INVALID_REQUEST_ID",
        Must, "If an endpoint receives…a new request with a Request ID that is not expected, it MUST close the session with INVALID_REQUEST_ID."),
    check!("max-request-id-exceeded", "control", "§9.5, §3.4", 15000, control::max_request_id_exceeded,
        "the first request at or above the relay's MAX_REQUEST_ID (odd or even) is closed with TOO_MANY_REQUESTS",
        Must, "If a Request ID equal to or larger than this is received by the endpoint that sent the MAX_REQUEST_ID … the endpoint MUST close the session with an error of TOO_MANY_REQUESTS."),
    check!("max-request-id-decreased", "control", "§9.5", 4000, control::max_request_id_decreased,
        "a MAX_REQUEST_ID that does not increase is closed with PROTOCOL_VIOLATION",
        Must, "The Maximum Request ID MUST only increase within a session, and receipt of a MAX_REQUEST_ID message with an equal or smaller Request ID value is a PROTOCOL_VIOLATION."),
    check!("max-request-id-honoured", "control", "§9.5, §9.6", 12000, control::max_request_id_honoured,
        "the relay keeps below the publisher's MAX_REQUEST_ID (REQUESTS_BLOCKED noted) and resumes when it grows",
        Must, "If a Request ID equal to or larger than this is received by the endpoint that sent the MAX_REQUEST_ID…the endpoint MUST close the session with an error of TOO_MANY_REQUESTS."),
    check!("requests-blocked-accepted", "control", "§9.6, §4", 4000, control::requests_blocked_accepted,
        "REQUESTS_BLOCKED from a client is a valid message: the session stays usable",
        Must, "Relays MUST implement all MOQT messages defined in this document, as well as processing rules described in Section 8."),
    check!("unknown-message-type", "control", "§9", 4000, control::unknown_message_type,
        "an unknown control message type closes the session",
        Must, "An endpoint that receives an unknown message type MUST close the session."),
    check!("message-length-mismatch", "control", "§9", 4000, control::length_mismatch,
        "a control message whose Length does not match its payload is closed with PROTOCOL_VIOLATION",
        Must, "If the length does not match the length of the Message Payload, the receiver MUST close the session with PROTOCOL_VIOLATION."),
    check!("unknown-parameter-ignored", "control", "§9.2", 4000, control::unknown_parameter,
        "unknown version-specific parameters in PUBLISH_NAMESPACE and SUBSCRIBE are ignored",
        Must, "Receivers MUST allow duplicates of unknown parameters."),
    check!("duplicate-track-alias-publish", "control", "§9.13, §3.4", 8000, control::duplicate_alias_publish,
        "two PUBLISHes with one Track Alias for different tracks are closed with DUPLICATE_TRACK_ALIAS",
        Must, "If a subscriber receives a PUBLISH that uses the same Track Alias as a different track with an active subscription, it MUST close the session with error DUPLICATE_TRACK_ALIAS."),
    check!("duplicate-track-alias-subscribe-ok", "control", "§9.8, §3.4", 8000, control::duplicate_alias_subscribe_ok,
        "two upstream SUBSCRIBE_OKs with one Track Alias for different tracks are closed with DUPLICATE_TRACK_ALIAS",
        Must, "If a subscriber receives a SUBSCRIBE_OK that uses the same Track Alias as a different track with an active subscription, it MUST close the session with error DUPLICATE_TRACK_ALIAS."),
    check!("track-status-ok", "control", "§9.20, §9.21, §4", 8000, control::track_status_ok,
        "TRACK_STATUS for a relayed track: TRACK_STATUS_OK with Track Alias 0 and the Largest Location",
        Must, "Relays MUST implement all MOQT messages defined in this document, as well as processing rules described in Section 8."),
    check!("track-status-not-subscribed", "control", "§9.20, §9.21", 8000, control::track_status_not_subscribed,
        "TRACK_STATUS for a track the relay does not carry yet: forwarded or subscribed (MAY), the answer reports the publisher's Largest Location",
        May, "Relays without an active subscription MAY forward TRACK_STATUS to one or more publishers, or MAY initiate a subscription (subject to authorization) as described in Section 8.4 to determine the response."),
    check!("track-status-unknown", "control", "§9.20, §9.22, §4", 6000, control::track_status_unknown,
        "TRACK_STATUS for a track nobody publishes gets TRACK_STATUS_ERROR",
        Must, "Relays MUST implement all MOQT messages defined in this document, as well as processing rules described in Section 8."),
    check!("subscribe-forward-invalid", "control", "§9.7, §3.4", 4000, requests::subscribe_forward_invalid,
        "a SUBSCRIBE with Forward 2 is closed with PROTOCOL_VIOLATION",
        Must, "Any other value is a protocol error and MUST terminate the session with a PROTOCOL_VIOLATION (Section 3.4)."),
    check!("key-value-length-exceeded", "control", "§1.4.2", 12000, params::key_value_length_exceeded,
        "a key-value Length of 65,536 (above 2^16-1) closes the session with PROTOCOL_VIOLATION: in a PUBLISH_NAMESPACE parameter and in an object's extension header",
        Must, "If an endpoint receives a length larger than the maximum, it MUST close the session with a Protocol Violation."),
    check!("key-value-formatting", "control", "§9.2.1.1, §1.4.2", 4000, params::key_value_formatting,
        "an AUTHORIZATION TOKEN whose Token structure does not decode is closed with KEY_VALUE_FORMATTING_ERROR",
        Must, "If the Token structure cannot be decoded, the receiver MUST close the Session with Key-Value Formatting error."),
    check!("reason-phrase-too-long", "control", "§1.4.3", 8000, requests::reason_phrase_too_long,
        "a SUBSCRIBE_ERROR with a 1,025-byte Reason Phrase is closed with PROTOCOL_VIOLATION",
        Must, "If an endpoint receives a length exceeding the maximum, it MUST close the session with a PROTOCOL_VIOLATION"),
    check!("auth-token-alias-unknown", "control", "§9.2.1.1", 8000, params::auth_token_alias_unknown,
        "a message with USE_ALIAS or DELETE of an unregistered token alias is rejected (UNKNOWN_AUTH_TOKEN_ALIAS)",
        Must, "The receiver of a message referencing an Alias that is not currently registered MUST reject the message with UNKNOWN_AUTH_TOKEN_ALIAS."),
    check!("auth-token-alias-duplicate", "control", "§9.2.1.1", 6000, params::auth_token_alias_duplicate,
        "REGISTER of a token alias already registered is closed with DUPLICATE_AUTH_TOKEN_ALIAS",
        Must, "The receiver of a message attempting to register an Alias which is already registered MUST close the Session with DUPLICATE_AUTH_TOKEN_ALIAS."),
    check!("auth-token-cache-overflow", "control", "§9.2.1.1, §9.3.2.4", 4000, params::auth_token_cache_overflow,
        "REGISTER of a token one byte past the relay's MAX_AUTH_TOKEN_CACHE_SIZE is closed with AUTH_TOKEN_CACHE_OVERFLOW",
        Must, "If a registration is attempted which would cause this limit to be exceeded, the receiver MUST termiate the Session with a AUTH_TOKEN_CACHE_OVERFLOW error."),
    check!("subscribe-ok-content-exists-invalid", "control", "§9.8", 8000, fields::subscribe_ok_content_exists,
        "an upstream SUBSCRIBE_OK with Content Exists 2 closes the publisher's session with PROTOCOL_VIOLATION",
        Must, "Any other value is a protocol error and MUST terminate the session with a PROTOCOL_VIOLATION (Section 3.4)."),
    check!("publish-content-exists-invalid", "control", "§9.13", 4000, fields::publish_content_exists,
        "PUBLISH with Content Exists 2 is closed with PROTOCOL_VIOLATION",
        Must, "Any other value is a protocol error and MUST terminate the session with a PROTOCOL_VIOLATION (Section 3.4)."),
    check!("track-alias-distinct", "control", "§9.8", 10000, fields::track_alias_distinct,
        "one session subscribing to three tracks through the relay gets three distinct Track Aliases",
        MustNot, "The same Track Alias MUST NOT be used to refer to two different Tracks simultaneously."),
    check!("parameter-wrong-message-ignored", "control", "§9.2.1", 8000, fields::parameter_wrong_message,
        "an undecodable AUTHORIZATION TOKEN in an upstream SUBSCRIBE_OK, where it is not defined, is ignored",
        Must, "If it appears in some other type of message, it MUST be ignored."),
    check!("duplicate-parameter", "control", "§9.2", 6000, fields::duplicate_parameter,
        "SUBSCRIBE with DELIVERY_TIMEOUT twice is closed with PROTOCOL_VIOLATION",
        Should, "Receivers SHOULD check that there are no unauthorized duplicate parameters and close the session as a PROTOCOL_VIOLATION if found."),
    check!("publish-track-alias-distinct", "control", "§9.13", 10000, fields::publish_track_alias_distinct,
        "a namespace subscriber accepting the relay's PUBLISHes for two tracks and subscribing to a third sees three distinct Track Aliases",
        MustNot, "The same Track Alias MUST NOT be used to refer to two different Tracks simultaneously."),
    check!("relay-parameters-not-repeated", "control", "§9.2", 8000, sent::parameters_not_repeated,
        "the relay's SERVER_SETUP, upstream SUBSCRIBE and SUBSCRIBE_OK (parameters given on both sides) repeat no parameter type",
        MustNot, "Senders MUST NOT repeat the same parameter type in a message unless the parameter definition explicitly allows multiple instances of that type to be sent in a single message."),
    // namespace
    check!("subscribe-after-publish-namespace-done", "namespace", "§9.26, §6.2, §5.1", 8000, namespace::subscribe_after_done,
        "a SUBSCRIBE after the namespace's PUBLISH_NAMESPACE_DONE gets one answer (routing it to the withdrawn publisher is allowed, §6.2)",
        Must, "A publisher MUST send exactly one SUBSCRIBE_OK or SUBSCRIBE_ERROR in response to a SUBSCRIBE."),
    check!("subscribe-namespace-existing", "namespace", "§9.28, §6.2", 6000, namespace::existing,
        "SUBSCRIBE_NAMESPACE gets the matching namespaces already published",
        Must, "If a publisher is authoritative for a given namespace, or is a relay that has received an authorized PUBLISH_NAMESPACE for that namespace from an upstream publisher, it MUST send a PUBLISH_NAMESPACE to any subscriber that has subscribed via SUBSCRIBE_NAMESPACE for that namespace, or a prefix of that namespace."),
    check!("subscribe-namespace-later", "namespace", "§9.28, §6.2", 6000, namespace::later,
        "a namespace published after SUBSCRIBE_NAMESPACE under its prefix is forwarded",
        Must, "If a publisher is authoritative for a given namespace, or is a relay that has received an authorized PUBLISH_NAMESPACE for that namespace from an upstream publisher, it MUST send a PUBLISH_NAMESPACE to any subscriber that has subscribed via SUBSCRIBE_NAMESPACE for that namespace, or a prefix of that namespace."),
    check!("subscribe-namespace-done-forwarded", "namespace", "§9.28, §9.26, §4", 6000, namespace::done_forwarded,
        "PUBLISH_NAMESPACE_DONE reaches namespace subscribers",
        Must, "Relays MUST implement all MOQT messages defined in this document, as well as processing rules described in Section 8."),
    check!("subscribe-namespace-overlap", "namespace", "§9.28, §9.30", 6000, namespace::overlap,
        "an overlapping SUBSCRIBE_NAMESPACE on one session gets NAMESPACE_PREFIX_OVERLAP",
        Must, "Within a session, if a publisher receives a SUBSCRIBE_NAMESPACE with a Track Namespace Prefix that is a prefix of, suffix of, or equal to an active SUBSCRIBE_NAMESPACE, it MUST respond with SUBSCRIBE_NAMESPACE_ERROR, with error code NAMESPACE_PREFIX_OVERLAP."),
    check!("subscribe-namespace-too-many-fields", "namespace", "§9.28", 4000, namespace::too_many_fields,
        "a 33-field namespace prefix is closed with PROTOCOL_VIOLATION",
        Must, "If an endpoint receives a Track Namespace Prefix tuple with an N of 0 or more than 32, it MUST close the session with a Protocol Violation."),
    check!("unsubscribe-namespace", "namespace", "§9.31, §6.1, §8.4", 8000, namespace::unsubscribe,
        "PUBLISH reaches a namespace subscriber, and no longer after its UNSUBSCRIBE_NAMESPACE",
        MustNot, "…relays MUST NOT send any further PUBLISH messages to a client without knowing the client is interested in and authorized to receive the content."),
    check!("publish-only-to-interested", "namespace", "§5.1, §8.4", 8000, namespace::publish_only_to_interested,
        "PUBLISH goes to the namespace subscriber, not to a client that never asked",
        MustNot, "Relays MUST NOT send any PUBLISH messages without knowing the client is interested in and authorized to receive the content."),
    check!("namespace-prefix-matching", "namespace", "§8.4", 8000, namespace::prefix_matching,
        "SUBSCRIBE routes by whole namespace fields: (ns, foo) serves (ns, foo, bar); where (ns, foobar) goes is reported (§6.2 MAY)",
        Must, "If there are no active upstream subscriptions for the requested Track, the Relay MUST send a SUBSCRIBE request to each publisher that has published the subscription's namespace or prefix thereof."),
    check!("subscribe-forwarded-to-all-publishers", "namespace", "§8.4, §8.2", 8000, namespace::all_publishers,
        "a SUBSCRIBE reaches every publisher of a matching namespace",
        Must, "Relays MUST forward SUBSCRIBE messages to all matching publishers…"),
    check!("publish-namespace-joins-subscription", "namespace", "§8.4", 8000, namespace::joins_subscription,
        "a new publisher of a namespace with active subscriptions gets a SUBSCRIBE for each",
        Must, "When a relay receives an authorized PUBLISH_NAMESPACE for a namespace that matches one or more existing subscriptions to other upstream sessions, it MUST send a SUBSCRIBE to the publisher that sent the PUBLISH_NAMESPACE for each matching subscription."),
    check!("publishers-merged-once", "namespace", "§8.2, §8.4, §8.4.1", 12000, namespace::merged_once,
        "objects of one track from two publishers reach the subscriber merged (deduplicated: SHOULD)",
        Must, "Relays MUST handle Objects for the same Track from multiple publishers and forward them to active matching subscriptions."),
    check!("subscribe-namespace-one-answer", "namespace", "§6.1, §9.28", 8000, answers::subscribe_namespace_one_answer,
        "SUBSCRIBE_NAMESPACE accepted and refused for overlap: exactly one OK or ERROR each",
        Must, "A publisher MUST send exactly one SUBSCRIBE_NAMESPACE_OK or SUBSCRIBE_NAMESPACE_ERROR in response to a SUBSCRIBE_NAMESPACE."),
    check!("publish-namespace-one-answer", "namespace", "§6.2", 8000, answers::publish_namespace_one_answer,
        "PUBLISH_NAMESPACE for two namespaces and one of them again: exactly one OK or ERROR each",
        Must, "A subscriber MUST send exactly one PUBLISH_NAMESPACE_OK or PUBLISH_NAMESPACE_ERROR in response to a PUBLISH_NAMESPACE."),
    check!("publish-namespace-answered-twice", "namespace", "§6.2", 8000, should_close::publish_namespace_answered_twice,
        "a namespace subscriber answering the relay's PUBLISH_NAMESPACE twice is closed with PROTOCOL_VIOLATION",
        Should, "The publisher SHOULD close the session with a protocol error if it receives more than one."),
    // subscribe
    check!("filter-largest-object", "subscribe", "§9.7, §9.8", 15000, subscribe::largest_object,
        "Largest Object skips the in-flight object (TRACK_STATUS shows the relay read its first bytes): nothing before Start is sent",
        MustNot, "A publisher MUST NOT send objects from outside the requested start and end."),
    check!("filter-largest-object-first-subscriber", "subscribe", "§9.7, §9.8, §8.3", 8000, subscribe::largest_object_first,
        "Largest Object for a relay's first subscriber: only objects after the publisher's largest",
        MustNot, "A publisher MUST NOT send objects from outside the requested start and end."),
    check!("filter-next-group-start", "subscribe", "§9.7", 8000, subscribe::next_group_start,
        "Next Group Start delivers from object 0 of the next group, nothing of the current one",
        MustNot, "A publisher MUST NOT send objects from outside the requested start and end."),
    check!("filter-absolute-start", "subscribe", "§9.7", 8000, subscribe::absolute_start,
        "AbsoluteStart in a future group delivers from exactly that location on",
        MustNot, "A publisher MUST NOT send objects from outside the requested start and end."),
    check!("filter-absolute-start-history", "subscribe", "§9.7, §8.3", 8000, subscribe::absolute_start_history,
        "AbsoluteStart {0,0} after two groups: the retained groups in full then new ones, or new ones only (D15)",
        MustNot, "A relay MUST NOT reorder or drop objects received on a multi-object stream when forwarding to subscribers, unless it has application specific information."),
    check!("filter-absolute-range", "subscribe", "§9.7", 8000, subscribe::absolute_range,
        "AbsoluteRange delivers from Start through End Group, nothing after",
        MustNot, "A publisher MUST NOT send objects from outside the requested start and end."),
    check!("filter-absolute-range-burst", "subscribe", "§9.7, §8.3", 10000, subscribe::absolute_range_burst,
        "AbsoluteRange over groups written back to back: groups 1-3 in any order (or PUBLISH_DONE first), nothing outside",
        MustNot, "A publisher MUST NOT send objects from outside the requested start and end."),
    check!("filter-absolute-range-single-group", "subscribe", "§9.7", 8000, subscribe::absolute_range_single,
        "AbsoluteRange with End Group = Start group delivers the rest of that group only",
        MustNot, "A publisher MUST NOT send objects from outside the requested start and end."),
    check!("filter-absolute-range-invalid", "subscribe", "§9.7, §9.9", 6000, subscribe::absolute_range_invalid,
        "End Group below the Start group gets SUBSCRIBE_ERROR INVALID_RANGE",
        Should, "If a publisher cannot satisfy the requested start or end or if the end has already been published it SHOULD send a SUBSCRIBE_ERROR with code INVALID_RANGE."),
    check!("filter-type-unknown", "subscribe", "§9.7", 4000, subscribe::unknown_filter,
        "a SUBSCRIBE with Filter Type 0x5 is closed with PROTOCOL_VIOLATION",
        Must, "An endpoint that receives a filter type other than the above MUST be close the session with PROTOCOL_VIOLATION."),
    check!("subscribe-forward-0-then-update", "subscribe", "§5.1, §9.7, §9.10, §8.2", 10000, subscription::forward_then_update,
        "Forward=0 delivers nothing; SUBSCRIBE_UPDATE Forward=1 starts delivery",
        Must, "Relays MUST handle Objects for the same Track from multiple publishers and forward them to active matching subscriptions."),
    check!("subscribe-forward-1-after-forward-0", "subscribe", "§8.4, §9.7", 8000, subscription::forward_one_after_zero,
        "a Forward=1 subscriber gets objects while another subscriber of the track has Forward=0",
        Must, "If the SUBSCRIBE has Forward State=1 and the upstream subscriptions are in Forward State=0, the Relay MUST send SUBSCRIBE_UPDATE with Forward=1 to all publishers."),
    check!("subscribe-update-end-group", "subscribe", "§9.10, §10.4.3, §9.7", 10000, subscription::update_end_group,
        "SUBSCRIBE_UPDATE narrowing End Group stops delivery after that group",
        MustNot, "A publisher MUST NOT send objects from outside the requested start and end."),
    check!("subscribe-update-unknown-subscription", "subscribe", "§9.10", 4000, subscription::update_unknown,
        "SUBSCRIBE_UPDATE for a Request ID that never existed is closed with PROTOCOL_VIOLATION",
        Must, "A publisher MUST terminate the session with a PROTOCOL_VIOLATION if…the subscriber specifies a request ID that has not existed within the Session."),
    check!("subscribe-update-widens", "subscribe", "§9.10", 6000, subscription::update_widens,
        "SUBSCRIBE_UPDATE moving Start backwards is closed with PROTOCOL_VIOLATION",
        Must, "A publisher MUST terminate the session with a PROTOCOL_VIOLATION if the SUBSCRIBE_UPDATE violates these rules…"),
    check!("subscribe-waits-for-upstream", "subscribe", "§8.3", 8000, subscription::waits_for_upstream,
        "SUBSCRIBE_OK is sent only after the upstream SUBSCRIBE_OK",
        Must, "The relay MUST have an established upstream subscription before sending SUBSCRIBE_OK in response to a downstream SUBSCRIBE."),
    check!("subscribe-upstream-error", "subscribe", "§8.3, §9.9", 8000, subscription::upstream_error,
        "the publisher's SUBSCRIBE_ERROR reaches the subscriber as SUBSCRIBE_ERROR",
        Must, "The relay MUST have an established upstream subscription before sending SUBSCRIBE_OK in response to a downstream SUBSCRIBE."),
    check!("unsubscribe-stops-delivery", "subscribe", "§9.11, §5.1, §8.3", 10000, subscription::unsubscribe_stops,
        "after UNSUBSCRIBE nothing more is delivered and the open stream is reset (upstream UNSUBSCRIBE reported)",
        Must, "It MUST reset any open streams associated with the SUBSCRIBE or FETCH."),
    check!("unsubscribe-keeps-other-subscribers", "subscribe", "§9.11, §8.3, §8.2", 10000, subscription::unsubscribe_keeps_others,
        "one subscriber's UNSUBSCRIBE leaves another subscriber and the upstream subscription alone",
        Must, "Relays MUST handle Objects for the same Track from multiple publishers and forward them to active matching subscriptions."),
    check!("publisher-gone-publish-done", "subscribe", "§8.3, §9.12", 25000, subscription::publisher_gone,
        "when the publisher's session ends, subscribers get PUBLISH_DONE, or the subscription is kept for a new publisher",
        MustNot, "A sender MUST NOT destroy subscription state until it sends PUBLISH_DONE, though it can choose to stop sending objects (and thus send PUBLISH_DONE) for any reason."),
    check!("publish-forward-with-subscribers", "subscribe", "§8.4", 10000, requests::publish_forward_with_subscribers,
        "PUBLISH (Forward 0) of a track a Forward=1 subscriber receives gets PUBLISH_OK with Forward 1",
        Must, "If at least one downstream subscriber for the Track has Forward State=1, the Relay MUST use Forward State=1 in the reply."),
    check!("subscribe-update-end-group-increased", "subscribe", "§9.10", 6000, requests::update_end_group_increased,
        "SUBSCRIBE_UPDATE raising End Group (2 to 5) is closed with PROTOCOL_VIOLATION",
        Must, "A publisher MUST terminate the session with a PROTOCOL_VIOLATION if the SUBSCRIBE_UPDATE violates these rules"),
    check!("publish-done-stream-count", "subscribe", "§9.12", 15000, requests::publish_done_stream_count,
        "PUBLISH_DONE's Stream Count is the number of subgroup streams the relay opened, or 2^62-1",
        Must, "If the publisher is unable to set Stream Count to the exact number of streams opened for the subscription, it MUST set Stream Count to 2^62 - 1."),
    check!("delivery-timeout-reset", "subscribe", "§9.2.1.2, §10.4.3", 15000, timeouts::delivery_timeout_reset,
        "with DELIVERY TIMEOUT 300 ms and the subscriber reading nothing for 2 s, the subgroup stream is reset, not finished",
        Must, "If an object in a subgroup exceeds the delivery timeout, the publisher MUST reset the underlying transport stream (see Section 10.4.3)."),
    check!("subscribe-one-answer", "subscribe", "§5.1", 10000, answers::subscribe_one_answer,
        "SUBSCRIBEs accepted, refused upstream and refused by the relay: exactly one OK or ERROR each",
        Must, "A publisher MUST send exactly one SUBSCRIBE_OK or SUBSCRIBE_ERROR in response to a SUBSCRIBE."),
    check!("publish-one-answer", "subscribe", "§5.1", 8000, answers::publish_one_answer,
        "PUBLISHes with Forward 1 and 0: exactly one PUBLISH_OK or PUBLISH_ERROR each",
        Must, "A subscriber MUST send exactly one PUBLISH_OK or PUBLISH_ERROR in response to a PUBLISH."),
    check!("objects-not-sent-after-error", "subscribe", "§5.1", 15000, answers::no_objects_after_error,
        "refused SUBSCRIBE and FETCHes get no data stream or datagram while the track's objects flow to another subscriber",
        MustNot, "Objects MUST NOT be sent for requests that end with an error."),
    check!("subscribe-update-end-before-start", "subscribe", "§9.10", 8000, fields::update_end_before_start,
        "SUBSCRIBE_UPDATE with End Group 1 below Start group 5 is closed with PROTOCOL_VIOLATION",
        Must, "Like SUBSCRIBE, End Group MUST be greater than or equal to the Group specified in Start."),
    check!("subscribe-update-forward-invalid", "subscribe", "§9.10", 8000, fields::update_forward_invalid,
        "SUBSCRIBE_UPDATE with Forward 2 is closed with PROTOCOL_VIOLATION",
        Must, "Any other value is a protocol error and MUST terminate the session with a PROTOCOL_VIOLATION (Section 3.4)."),
    check!("subscribe-answered-twice", "subscribe", "§5.1", 8000, should_close::subscribe_answered_twice,
        "a publisher answering the relay's SUBSCRIBE with SUBSCRIBE_OK twice is closed with PROTOCOL_VIOLATION",
        Should, "The peer SHOULD close the session with a protocol error if it receives more than one."),
    check!("upstream-subscribe-own-priority", "subscribe", "§7.3", 8000, upstream::own_priority,
        "a downstream SUBSCRIBE with priority 3 and Descending: the relay's upstream SUBSCRIBE carries neither",
        ShouldNot, "Relays SHOULD NOT directly use Subscriber Priority or Group Order from incoming subscriptions for upstream subscriptions."),
    check!("unsubscribe-stops-upstream-streams", "subscribe", "§9.12", 10000, upstream::stops_upstream_streams,
        "after the only subscriber leaves, the relay's UNSUBSCRIBE upstream comes with STOP_SENDING on the publisher's open stream",
        Should, "The subscriber SHOULD send STOP_SENDING on all streams related to the subscription when it deletes subscription state."),
    check!("subscribe-group-order-original", "subscribe", "§9.7", 8000, upstream::group_order_original,
        "SUBSCRIBE with Group Order 0 for a track whose publisher answered Descending gets SUBSCRIBE_OK with Descending",
        Should, "A value of 0x0 indicates the original publisher's Group Order SHOULD be used."),
    check!("upstream-subscribe-forward-1", "subscribe", "§9.7", 8000, upstream::forward_one_upstream,
        "a downstream SUBSCRIBE with Forward 0: the relay's new upstream SUBSCRIBE has Forward 1",
        Should, "Relays SHOULD set the Forward flag to 1 if a new subscription needs to be sent upstream, regardless of the value of the Forward field from the downstream subscription."),
    check!("publish-done-status-code", "subscribe", "§9.12", 12000, layout::publish_done_status,
        "PUBLISH_DONE says SUBSCRIPTION_ENDED at an AbsoluteRange filter's end and TRACK_ENDED when the publisher ends the track",
        Should, "The application SHOULD use a relevant status code in PUBLISH_DONE, as defined below:"),
    // fetch
    check!("fetch-standalone-range", "fetch", "§9.16.1, §9.16.3", 8000, fetch::standalone_range,
        "a standalone FETCH of a range inside groups returns exactly those objects in order",
        Must, "A publisher MUST send fetched groups in the determined group order, either ascending or descending."),
    check!("fetch-descending", "fetch", "§9.16.3", 8000, fetch::descending,
        "a descending FETCH returns groups newest first, objects within a group in ID order",
        Must, "A publisher MUST send fetched groups in the determined group order, either ascending or descending."),
    check!("fetch-object-properties", "fetch", "§8.1, §10.4.4", 8000, fetch::object_properties,
        "fetched objects keep Subgroup ID, Publisher Priority, extension headers and status",
        Must, "A cache MUST store all properties of an Object defined in Section 10.2.1, with the exception of any extensions (Section 10.2.1.2) that specify otherwise."),
    check!("fetch-ok-end-beyond-largest", "fetch", "§9.17, §4", 8000, fetch::end_beyond_largest,
        "FETCH past the largest object: FETCH_OK End Location {Largest.Group, Largest.Object+1}",
        Must, "Relays MUST implement all MOQT messages defined in this document, as well as processing rules described in Section 8."),
    check!("fetch-ok-end-whole-group", "fetch", "§9.17, §4", 8000, fetch::end_whole_group,
        "FETCH of a whole finished group: FETCH_OK End Location {group, 0}",
        Must, "Relays MUST implement all MOQT messages defined in this document, as well as processing rules described in Section 8."),
    check!("fetch-ok-end-exact", "fetch", "§9.17, §4", 8000, fetch::end_exact,
        "FETCH ending inside a group: FETCH_OK End Location as requested",
        Must, "Relays MUST implement all MOQT messages defined in this document, as well as processing rules described in Section 8."),
    check!("fetch-start-beyond-largest", "fetch", "§9.16.3, §9.18", 8000, fetch::start_beyond_largest,
        "FETCH starting past the largest object gets FETCH_ERROR INVALID_RANGE",
        Must, "If Start Location is greater than the Largest Object (Section 9.7) the publisher MUST return FETCH_ERROR with error code INVALID_RANGE."),
    check!("fetch-end-before-start", "fetch", "§9.16.3, §9.17, §9.18", 8000, fetch::end_before_start,
        "FETCH whose End Location precedes its Start gets FETCH_ERROR, not FETCH_OK (INVALID_RANGE: SHOULD)",
        Must, "If End Location is smaller than the Start Location in the corresponding FETCH the receiver MUST close the session with PROTOCOL_VIOLATION."),
    check!("fetch-unknown-track", "fetch", "§9.18, §8.3", 6000, fetch::unknown_track,
        "FETCH of a track nobody publishes gets FETCH_ERROR, not FETCH_OK (TRACK_DOES_NOT_EXIST: SHOULD)",
        Must, "If a relay does not have sufficient information to send a FETCH_OK immediately in response to a FETCH, it MUST withhold sending FETCH_OK until it does."),
    check!("fetch-relative-joining", "fetch", "§9.16.2, §9.16.2.1, §4", 8000, fetch::relative_joining,
        "Relative Joining FETCH with Joining Start 0 returns the current group up to Largest",
        Must, "Relays MUST implement all MOQT messages defined in this document, as well as processing rules described in Section 8."),
    check!("fetch-absolute-joining", "fetch", "§9.16.2, §9.16.2.1, §4", 8000, fetch::absolute_joining,
        "Absolute Joining FETCH from group 1 returns groups 1 to Largest, contiguous with the subscription",
        Must, "Relays MUST implement all MOQT messages defined in this document, as well as processing rules described in Section 8."),
    check!("fetch-joining-unknown-subscription", "fetch", "§9.16.2, §9.18", 6000, fetch::joining_unknown,
        "a Joining FETCH naming no subscription gets FETCH_ERROR INVALID_JOINING_REQUEST_ID",
        Must, "If a publisher receives a Joining Fetch with a Request ID that does not correspond to an existing Subscribe in the same session, it MUST respond with a Fetch Error with code Invalid Joining Request ID."),
    check!("fetch-joining-not-largest-object", "fetch", "§9.16.2, §4", 8000, fetch::joining_not_largest,
        "a Joining FETCH for a Next Group Start subscription is closed with PROTOCOL_VIOLATION",
        Must, "Relays MUST implement all MOQT messages defined in this document, as well as processing rules described in Section 8."),
    check!("fetch-cancel", "fetch", "§9.19, §5.1", 15000, fetch::cancel,
        "FETCH_CANCEL ends the fetch stream before the remaining objects are sent",
        Must, "It MUST reset any open streams associated with the SUBSCRIBE or FETCH."),
    check!("fetch-type-invalid", "fetch", "§9.16", 4000, requests::fetch_type_invalid,
        "a FETCH with Fetch Type 0x4 is closed with PROTOCOL_VIOLATION",
        Must, "An endpoint that receives a Fetch Type other than 0x1, 0x2 or 0x3 MUST be close the session with a PROTOCOL_VIOLATION."),
    check!("fetch-joining-no-content", "fetch", "§9.16.2", 8000, requests::fetch_joining_no_content,
        "a Joining FETCH for a subscription whose SUBSCRIBE_OK had Content Exists 0 gets FETCH_ERROR INVALID_RANGE",
        Must, "If no Objects have been published for the track, and the SUBSCRIBE_OK has a Content Exists value of 0, the publisher MUST respond with a FETCH_ERROR with error code INVALID_RANGE."),
    check!("max-cache-duration", "fetch", "§9.2.1.3", 15000, timeouts::max_cache_duration,
        "objects PUBLISHed with MAX_CACHE_DURATION 200 ms are not served from the cache to a FETCH 1.5 s later",
        MustNot, "If present, the relay MUST NOT start forwarding any individual Object received through this subscription or fetch after the specified number of milliseconds has elapsed since the beginning of the Object was received."),
    check!("fetch-one-answer", "fetch", "§5.1", 10000, answers::fetch_one_answer,
        "FETCHes of cached objects, of a track nobody publishes and of an inverted range: exactly one OK or ERROR each",
        Must, "It MUST send exactly one FETCH_OK or FETCH_ERROR in response to a FETCH."),
    check!("fetch-ok-end-before-start", "fetch", "§9.17", 8000, fields::fetch_ok_end_before_start,
        "an upstream FETCH_OK whose End Location is below the FETCH's Start closes the publisher's session with PROTOCOL_VIOLATION",
        Must, "If End Location is smaller than the Start Location in the corresponding FETCH the receiver MUST close the session with PROTOCOL_VIOLATION."),
    check!("fetch-group-order-original", "fetch", "§9.16.3", 10000, upstream::fetch_group_order_original,
        "FETCH with Group Order 0 of a track whose publisher answered Descending gets FETCH_OK with Descending",
        Should, "A value of 0x0 indicates the original publisher's Group Order SHOULD be used."),
    check!("fetch-ok-waits-for-upstream", "fetch", "§8.3", 10000, upstream::fetch_ok_waits_for_upstream,
        "a FETCH the relay forwards upstream gets no FETCH_OK while the publisher holds its answer",
        Must, "If a relay does not have sufficient information to send a FETCH_OK immediately in response to a FETCH, it MUST withhold sending FETCH_OK until it does."),
    // data
    check!("subgroup-header-0x10", "data", "§10.4.2, §8.5", 8000, data::header_0x10,
        "a subgroup sent with SUBGROUP_HEADER 0x10 (Subgroup ID 0) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroup-header-0x11", "data", "§10.4.2, §8.5", 8000, data::header_0x11,
        "a subgroup sent with SUBGROUP_HEADER 0x11 (Subgroup ID 0, extensions) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroup-header-0x12", "data", "§10.4.2, §8.5", 8000, data::header_0x12,
        "a subgroup sent with SUBGROUP_HEADER 0x12 (Subgroup ID = first Object ID) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroup-header-0x13", "data", "§10.4.2, §8.5", 8000, data::header_0x13,
        "a subgroup sent with SUBGROUP_HEADER 0x13 (first Object ID, extensions) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroup-header-0x14", "data", "§10.4.2, §8.5", 8000, data::header_0x14,
        "a subgroup sent with SUBGROUP_HEADER 0x14 (explicit Subgroup ID) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroup-header-0x15", "data", "§10.4.2, §8.5", 8000, data::header_0x15,
        "a subgroup sent with SUBGROUP_HEADER 0x15 (explicit Subgroup ID, extensions) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroup-header-0x18", "data", "§10.4.2, §8.5", 8000, data::header_0x18,
        "a subgroup sent with SUBGROUP_HEADER 0x18 (Subgroup ID 0, end of group) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs, End of Group",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroup-header-0x19", "data", "§10.4.2, §8.5", 8000, data::header_0x19,
        "a subgroup sent with SUBGROUP_HEADER 0x19 (Subgroup ID 0, extensions, end of group) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs, End of Group",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroup-header-0x1a", "data", "§10.4.2, §8.5", 8000, data::header_0x1a,
        "a subgroup sent with SUBGROUP_HEADER 0x1A (first Object ID, end of group) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs, End of Group",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroup-header-0x1b", "data", "§10.4.2, §8.5", 8000, data::header_0x1b,
        "a subgroup sent with SUBGROUP_HEADER 0x1B (first Object ID, extensions, end of group) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs, End of Group",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroup-header-0x1c", "data", "§10.4.2, §8.5", 8000, data::header_0x1c,
        "a subgroup sent with SUBGROUP_HEADER 0x1C (explicit Subgroup ID, end of group) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs, End of Group",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroup-header-0x1d", "data", "§10.4.2, §8.5", 8000, data::header_0x1d,
        "a subgroup sent with SUBGROUP_HEADER 0x1D (explicit Subgroup ID, extensions, end of group) keeps its properties: group, Subgroup ID, Object IDs, payloads, priority, extension pairs, End of Group",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("extension-headers-preserved", "data", "§10.2.1.2, §8.5", 8000, data::extensions_preserved,
        "unknown extension headers (varint and bytes, repeated types) are forwarded with the same key-value pairs",
        MustNot, "If unsupported by the relay, Extension Headers MUST NOT be modified, … and MUST be forwarded by relays."),
    check!("extension-headers-byte-exact", "data", "§10.2.1.2, §1.4.2", 8000, data::extensions_byte_exact,
        "an extension block written with non-minimal varints is forwarded with the same key-value pairs (re-encoding noted)",
        MustNot, "If unsupported by the relay, Extension Headers MUST NOT be modified, … and MUST be forwarded by relays."),
    check!("object-status-end-of-group", "data", "§10.2.1.1, §8.5", 8000, data::status_end_of_group,
        "an END_OF_GROUP status object is relayed with its Object ID",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("object-status-end-of-track", "data", "§10.2.1.1, §8.5", 8000, data::status_end_of_track,
        "an END_OF_TRACK status object is relayed with its location",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("object-status-does-not-exist", "data", "§10.2.1.1, §8.5", 8000, data::status_does_not_exist,
        "an OBJECT_DOES_NOT_EXIST status object is relayed",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("object-id-gaps-preserved", "data", "§10.4.2, §8.5", 8000, data::object_id_gaps,
        "Object IDs with gaps (delta encoding) are relayed with the same IDs",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("subgroups-and-priorities-preserved", "data", "§2.2, §7.1, §8.5", 8000, data::subgroups_and_priorities,
        "several subgroups of one group keep their Subgroup IDs and Publisher Priorities",
        MustNot, "A relay MUST NOT modify Object properties when forwarding, except for Object Extension Headers as specified in Section 10.2.1.2."),
    check!("payload-opaque", "data", "§8.5, §10.2.1.1", 10000, data::payload_opaque,
        "a 1 MiB object and a zero-length object arrive byte-exact, not split or combined",
        MustNot, "A relay MUST NOT combine, split, or otherwise modify object payloads."),
    check!("datagram-relay", "data", "§10.3, §10.3.1, §10.2.1", 8000, data::datagram_relay,
        "objects sent as datagrams arrive as datagrams with their group, ID, priority and payload",
        Must, "When in response to a SUBSCRIBE, an Object MUST be sent according to its Object Forwarding Preference, described below."),
    check!("datagram-status-and-extensions", "data", "§10.3.1, §10.2.1.2", 8000, data::datagram_status_extensions,
        "datagrams with extension headers and status datagrams keep their properties (a dropped datagram is allowed, §10.3)",
        Must, "If unsupported by the relay, Extension Headers MUST NOT be modified, MUST be cached as part of the Object and MUST be forwarded by relays."),
    check!("priority-subscriber", "data", "§7.2, §7.3", 20000, priority::subscriber_priority,
        "under contention the subscription with the better Subscriber Priority is sent first (this suite's bar: the other has at most 50% when it completes)",
        Should, "For downstream subscriptions, relays SHOULD respect the subscriber and original publisher's priorities."),
    check!("priority-publisher", "data", "§7.2, §7.3, §8.5", 20000, priority::publisher_priority,
        "under contention the subgroup with the better Publisher Priority is sent first (this suite's bar: the other has at most 50% when it completes)",
        Should, "For downstream subscriptions, relays SHOULD respect the subscriber and original publisher's priorities."),
    check!("unknown-stream-type", "data", "§10", 6000, streams::unknown_stream_type,
        "a unidirectional stream of an undefined type (0x3b) closes the session",
        Must, "An endpoint that receives an unknown stream or datagram type MUST close the session."),
    check!("unknown-datagram-type", "data", "§10, §10.3", 12000, streams::unknown_datagram_type,
        "a datagram of an undefined type (0x2a) for a subscribed track closes the publisher's session",
        Must, "An endpoint that receives an unknown stream or datagram type MUST close the session."),
    check!("object-does-not-exist-extensions", "data", "§10.2.1.2, §8.4", 12000, streams::does_not_exist_extensions,
        "an Object Does Not Exist with extension headers closes the publisher with PROTOCOL_VIOLATION and is not forwarded",
        Must, "If an endpoint receives a non-existent Object containing extension headers it MUST close the session with a PROTOCOL_VIOLATION."),
    check!("object-does-not-exist-extensions-datagram", "data", "§10.2.1.2, §10.3.1, §8.4", 12000, streams::does_not_exist_extensions_datagram,
        "a status datagram (0x21) Object Does Not Exist with extension headers closes the publisher with PROTOCOL_VIOLATION and is not forwarded",
        Must, "If an endpoint receives a non-existent Object containing extension headers it MUST close the session with a PROTOCOL_VIOLATION."),
    check!("datagram-extensions-empty", "data", "§10.3.1, §8.4", 12000, streams::datagram_extensions_empty,
        "a datagram with Extensions Present and Extension Headers Length 0 closes the publisher with PROTOCOL_VIOLATION and is not forwarded",
        Must, "If an endpoint receives a datagram with Extensions Present as \"Yes\" and a Extension Headers Length of 0, it MUST close the session with PROTOCOL_VIOLATION."),
    check!("subgroup-stream-next-object", "data", "§10.4.3, §2.2", 15000, streams::subgroup_next_object,
        "an object not known to be the next of its subgroup (it came on another upstream stream after a gap) goes on a new stream; the old one is reset",
        MustNot, "A relay MUST NOT forward an Object on an existing Subgroup stream unless it is the next Object in that Subgroup."),
    check!("gap-extensions-unchanged", "data", "§11.1, §11.3", 10000, ext11::gap_extensions,
        "Prior Group ID Gap (0x3C) and Prior Object ID Gap (0x3E) arrive as sent, and are added to no other object",
        Must, "This extension MUST NOT be modified or removed."),
    check!("immutable-extensions-unchanged", "data", "§11.2", 10000, ext11::immutable_extensions,
        "Immutable Extensions (0xB) arrive as sent, and are added to no other object",
        Must, "Relays MUST cache this extension if the Object is cached and MUST forward this extension if the enclosing Object is forwarded."),
    check!("object-status-undefined", "data", "§10.2.1.1", 8000, should_close::status_undefined,
        "an object with Object Status 0x2 from the publisher closes its session with PROTOCOL_VIOLATION",
        Should, "Any other value SHOULD be treated as a protocol error and the session SHOULD be terminated with a PROTOCOL_VIOLATION (Section 3.4)."),
    check!("subgroup-fin-mid-object", "data", "§10.4", 8000, should_close::fin_mid_object,
        "a publisher's subgroup stream ending with FIN inside an object closes its session with PROTOCOL_VIOLATION",
        Should, "If a stream ends gracefully (i.e., the stream terminates with a FIN) in the middle of a serialized Object, the session SHOULD be terminated with a PROTOCOL_VIOLATION."),
    check!("subgroup-one-stream", "data", "§2.2, §10.4", 15000, layout::one_stream,
        "five objects of one subgroup written one at a time arrive on one stream",
        MustNot, "Objects from the same Subgroup MUST NOT be sent on different streams, unless one of the streams was reset prematurely, or upstream conditions have forced objects from a Subgroup to be sent out of Object ID order."),
    // robustness
    check!("zero-field-namespace", "robustness", "§2.4.1, §8.4", 25000, robustness::zero_field_namespace,
        "0-field namespaces in PUBLISH_NAMESPACE and SUBSCRIBE close that session with PROTOCOL_VIOLATION, not a bystander's",
        Must, "If an endpoint receives a Track Namespace tuple with an N of 0 or more than 32, it MUST close the session with a Protocol Violation."),
    check!("full-track-name-too-long", "robustness", "§2.4.1, §8.4", 15000, robustness::full_track_name_too_long,
        "a 4097-byte Full Track Name closes the sender with PROTOCOL_VIOLATION and never reaches the namespace's publisher",
        Must, "If an endpoint receives a Full Track Name exceeding this length, it MUST close the session with a PROTOCOL_VIOLATION."),
    check!("oversize-declared-length", "robustness", "§9, §10.4.2, §12.2, §8.4", 20000, robustness::oversize_declared_length,
        "a control message and an object declaring more bytes than follow, then silence, do not wedge other sessions",
        Must, "When a Relay receives an authorized SUBSCRIBE for a Track with one or more active upstream subscriptions, it MUST reply with SUBSCRIBE_OK."),
    check!("request-flood", "robustness", "§9.5, §12.3.1", 30000, robustness::request_flood,
        "10,000 SUBSCRIBEs in one burst: TOO_MANY_REQUESTS past MAX_REQUEST_ID, other sessions still served",
        Must, "If a Request ID equal to or larger than this is received by the endpoint that sent the MAX_REQUEST_ID…the endpoint MUST close the session with an error of TOO_MANY_REQUESTS."),
    check!("publish-namespace-flood", "robustness", "§12.3.1, §9.23, §8.4", 30000, robustness::publish_namespace_flood,
        "PUBLISH_NAMESPACE flood within MAX_REQUEST_ID: limited below 5,000 per session, other sessions answered promptly",
        Must, "When a Relay receives an authorized SUBSCRIBE for a Track with one or more active upstream subscriptions, it MUST reply with SUBSCRIBE_OK."),
    check!("headerless-streams", "robustness", "§10.4, §12.2, §8.4", 20000, robustness::headerless_streams,
        "hundreds of uni streams that never complete a header do not wedge other sessions",
        Must, "When a Relay receives an authorized SUBSCRIBE for a Track with one or more active upstream subscriptions, it MUST reply with SUBSCRIBE_OK."),
    check!("stalled-subscriber", "robustness", "§12.1, §7.2, §10.4.2", 30000, robustness::stalled_subscriber,
        "a subscriber that never reads still gets answers on its control stream, and does not slow a second subscriber (SHOULD)",
        Must, "To prevent deadlocks, the publisher MUST allocate connection flow control to the control stream before allocating it any data streams."),
    check!("max-group-id", "robustness", "§2.3.1, §8.4, §9.16", 30000, robustness::max_group_id,
        "object {2^62-1, 2^62-1} leaves the track subscribable, a FETCH of its group answered, no session closed",
        Must, "When a Relay receives an authorized SUBSCRIBE for a Track with one or more active upstream subscriptions, it MUST reply with SUBSCRIBE_OK."),
    check!("duplicate-publish", "robustness", "§8.2, §9.13", 20000, robustness::duplicate_publish,
        "a second session PUBLISHing a published track name is refused or merged: the first publisher's objects keep flowing",
        Must, "Relays MUST handle Objects for the same Track from multiple publishers and forward them to active matching subscriptions."),
    check!("namespace-subscription-leak", "robustness", "§8.3, §9.28, §12.3.2", 15000, robustness::namespace_subscription_leak,
        "without credentials, SUBSCRIBE_NAMESPACE to a parent of a protected prefix sees nothing under it (opt-in: --protected-prefix)",
        Must, "Relays MUST ensure subscribers are authorized to access the content associated with the Track."),
];

/// A missed requirement of `level` that does not count as a failure.
fn todo(level: Level, f: Failure) -> Outcome {
    Outcome::Todo {
        level,
        expected: f.expected,
        received: f.received,
        message: f.message,
    }
}

/// Looks a check up by id.
pub fn find(id: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|c| c.id == id)
}

/// The checks `ids` (comma-separated) and `group` select; all when neither is given.
pub fn select(ids: Option<&str>, group: Option<&str>) -> Result<Vec<&'static CheckInfo>, String> {
    if let Some(g) = group {
        if !GROUPS.contains(&g) {
            return Err(format!(
                "no conformance group {g:?} (groups: {})",
                GROUPS.join(", ")
            ));
        }
    }
    let mut out: Vec<&'static CheckInfo> = Vec::new();
    match ids {
        Some(list) => {
            for id in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let c = find(id).ok_or_else(|| format!("no conformance check {id:?}"))?;
                if group.is_none_or(|g| c.group == g) && !out.iter().any(|o| o.id == c.id) {
                    out.push(c);
                }
            }
        }
        None => out.extend(CHECKS.iter().filter(|c| group.is_none_or(|g| c.group == g))),
    }
    if out.is_empty() {
        return Err("no conformance check selected".into());
    }
    Ok(out)
}

/// A run-unique token for namespaces.
pub fn run_id() -> String {
    connection_id()[..8].to_string()
}

/// Runs one check within its time limit.
pub async fn run(info: &CheckInfo, ctx: &Ctx, run: &str) -> CaseResult {
    let start = Instant::now();
    let record = Arc::new(Record::default());
    let env = Env {
        ctx: ctx.clone(),
        record: record.clone(),
        run: run.to_string(),
        check: info.id,
    };
    let body = (info.run)(env);
    let (outcome, message) = match tokio::time::timeout(info.limit, body).await {
        Ok(Ok(msg)) => (Outcome::Pass, Some(msg)),
        Ok(Err(Verdict::Fail(f))) if info.level.mandatory() => (f.into(), None),
        Ok(Err(Verdict::Fail(f))) => (todo(info.level, f), None),
        Ok(Err(Verdict::Should(f))) => (todo(Level::Should, f), None),
        Ok(Err(Verdict::Unsupported { what, reason })) => (
            Outcome::Skip(format!("peer does not support: {what} ({reason})")),
            None,
        ),
        Ok(Err(Verdict::NotApplicable(why))) => (Outcome::Skip(why), None),
        Err(_) => {
            let step = record.current_step();
            let missed = crate::cases::fail(
                format!("completion within {} ms", info.limit.as_millis()),
                if step.is_empty() {
                    "timeout".to_string()
                } else {
                    format!("timeout while waiting for {step}")
                },
                "the check did not finish in time",
            );
            match missed {
                Outcome::Fail {
                    expected,
                    received,
                    message,
                } if !info.level.mandatory() => (
                    todo(info.level, Failure::new(expected, received, message)),
                    None,
                ),
                o => (o, None),
            }
        }
    };
    let result = CaseResult {
        id: info.id,
        outcome,
        duration: start.elapsed(),
        connections: record.connections(),
        message,
        section: Some(info.section.to_string()),
        requirement: Some(crate::tap::Requirement {
            level: info.level,
            quote: info.quote,
        }),
    };
    tracing::info!(check = info.id, failed = result.failed(), "check finished");
    result
}
