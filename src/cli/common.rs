//! What `moqlink pub`, `sub` and `fetch` share: connection and TLS flags, track names, location
//! arguments, answering the peer's requests, error reporting and a clean close.

use anyhow::{anyhow, Context};
use clap::Args;
use moqlink::{connect, AnySession};
use moqlink_model::codes::{
    request_error_name, PublishDoneCode, PublishErrorCode, SubscribeErrorCode,
};
use moqlink_model::control::{ControlMessage, FetchEnd, RequestRef};
use moqlink_model::{Location, SessionErrorCode, Version};
use moqlink_transport::endpoint::{Client, ClientConfig};
use moqlink_transport::qlog::QlogConfig;
use moqlink_transport::session::{IncomingEvent, IncomingRequest, SessionConfig, SessionError};
use moqlink_transport::tls::{ClientTls, Fingerprint};
use moqlink_transport::track::{TrackName, TrackProducer};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Where to connect and how to check the server's certificate.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Relay or peer URL: https://host:port/path (WebTransport) or moqt://host:port/path (raw QUIC).
    pub url: String,
    /// Accept any server certificate (development and tests only).
    #[arg(long, conflicts_with_all = ["tls_fingerprint", "tls_ca"])]
    pub tls_disable_verify: bool,
    /// Accept only a server certificate with this SHA-256 fingerprint (hex; repeatable).
    #[arg(long, value_name = "HEX", conflicts_with = "tls_ca")]
    pub tls_fingerprint: Vec<Fingerprint>,
    /// Trust the CA certificates in this PEM file besides the system roots (repeatable).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Vec<PathBuf>,
    /// Versions offered, comma separated, in preference order (draft-14, lite-02, lite-01, or 0x hex; moql:// URLs offer lite only).
    #[arg(long, value_delimiter = ',', default_value = "draft-14")]
    pub versions: Vec<Version>,
    /// Authorization token presented in CLIENT_SETUP (AUTHORIZATION_TOKEN, type 0), for
    /// draft-14 and moq-lite alike; for relays that read it from the URL, add `?jwt=...` there.
    #[arg(long, env = "MOQLINK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Write a qlog trace of the session (JSON-SEQ, MoQT events) into this directory.
    #[arg(long, value_name = "DIR")]
    pub qlog_dir: Option<PathBuf>,
    /// Largest qlog file in bytes; later events are counted, not written (default 64 MiB).
    #[arg(long, value_name = "BYTES", requires = "qlog_dir")]
    pub qlog_max_bytes: Option<u64>,
}

impl ConnectArgs {
    /// The certificate policy the flags describe.
    pub fn tls(&self) -> ClientTls {
        if self.tls_disable_verify {
            ClientTls::DisableVerify
        } else if !self.tls_fingerprint.is_empty() {
            ClientTls::Pinned(self.tls_fingerprint.clone())
        } else {
            ClientTls::Verify {
                system_roots: true,
                extra_ca: self.tls_ca.clone(),
            }
        }
    }

    /// The session settings the flags describe, offering `versions`.
    pub fn session_config(&self, versions: Vec<Version>) -> SessionConfig {
        SessionConfig {
            versions,
            auth_tokens: self.token.iter().map(|t| t.as_str().into()).collect(),
            qlog: qlog_config(self.qlog_dir.as_ref(), self.qlog_max_bytes),
            ..Default::default()
        }
    }

    /// Connects and completes SETUP.
    pub async fn connect(&self) -> anyhow::Result<(AnySession, mpsc::Receiver<IncomingEvent>)> {
        let client = Client::new(ClientConfig {
            tls: self.tls(),
            ..Default::default()
        })
        .context("setting up TLS")?;
        let cfg = self.session_config(self.versions.clone());
        let (session, events) = connect(&client, &self.url, cfg)
            .await
            .with_context(|| format!("connecting to {}", self.url))?;
        tracing::info!(url = %self.url, version = %session.version(), "session established");
        Ok((session, events))
    }
}

/// The qlog settings `--qlog-dir` and `--qlog-max-bytes` give (relay and clients alike).
pub fn qlog_config(dir: Option<&PathBuf>, max_bytes: Option<u64>) -> Option<QlogConfig> {
    let mut cfg = QlogConfig::new(dir?);
    if let Some(m) = max_bytes {
        cfg.max_file_bytes = m;
    }
    Some(cfg)
}

/// The track a command works on.
#[derive(Args, Debug, Clone)]
pub struct TrackArgs {
    /// Track namespace, fields separated by `/` (e.g. `moq-test/interop`).
    #[arg(long)]
    pub namespace: String,
    /// Track name.
    #[arg(long)]
    pub track: String,
}

impl TrackArgs {
    /// The full track name.
    pub fn name(&self) -> TrackName {
        TrackName::new(&self.namespace, &self.track)
    }
}

fn parse_u64(s: &str, what: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{what} {s:?} is not a number"))
}

/// Parses `G` or `G/O` into a location (`G` = object 0 of group G).
pub fn parse_location(s: &str) -> Result<Location, String> {
    match s.split_once('/') {
        Some((g, o)) => Ok(Location::new(
            parse_u64(g, "group")?,
            parse_u64(o, "object")?,
        )),
        None => Ok(Location::new(parse_u64(s, "group")?, 0)),
    }
}

/// Parses a FETCH end: `G` (the whole group G) or `G/O` (through object O, inclusive).
pub fn parse_fetch_end(s: &str) -> Result<FetchEnd, String> {
    match s.split_once('/') {
        Some((g, o)) => Ok(FetchEnd {
            group: parse_u64(g, "group")?,
            object: Some(parse_u64(o, "object")?),
        }),
        None => Ok(FetchEnd {
            group: parse_u64(s, "group")?,
            object: None,
        }),
    }
}

/// The draft-14 name of a PUBLISH_DONE status code (§13.1.3), `UNKNOWN` for one it does not define.
pub fn publish_done_name(code: u64) -> &'static str {
    PublishDoneCode::from_code(code).name().unwrap_or("UNKNOWN")
}

/// Turns a failed request into a message naming the error message, code and reason.
pub fn request_failed(what: &str, e: SessionError) -> anyhow::Error {
    match e {
        SessionError::Rejected { kind, code, reason } => {
            let name = request_error_name(kind, code)
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            let kind = kind.name();
            anyhow!("{what} refused: {kind} code 0x{code:x}{name}, reason {reason:?}")
        }
        other => anyhow!("{what} failed: {other}"),
    }
}

/// Writes one payload and a newline to stdout and flushes.
pub fn print_line(payload: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(payload)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Lets queued control messages go out, closes the session with NO_ERROR, and gives the
/// CONNECTION_CLOSE a moment to leave before the process exits.
pub async fn close(session: &AnySession) {
    if session.close_reason().is_some() {
        return;
    }
    session
        .close_gracefully(SessionErrorCode::NoError, "", Duration::from_millis(500))
        .await;
    // Let CONNECTION_CLOSE leave before the process exits.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// The subscriptions served so far (their sending tasks).
#[derive(Clone, Default)]
pub struct Served(Arc<Mutex<Vec<JoinHandle<()>>>>);

impl Served {
    fn push(&self, task: JoinHandle<()>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(task);
    }

    /// How many subscriptions were served.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether at least one subscription was served and all of them are over.
    pub fn all_done(&self) -> bool {
        let tasks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        !tasks.is_empty() && tasks.iter().all(JoinHandle::is_finished)
    }
}

/// Answers every request the peer sends for as long as the session lives: SUBSCRIBE, FETCH
/// and TRACK_STATUS for `track` (if any) are served from it, SUBSCRIBE_NAMESPACE and
/// PUBLISH_NAMESPACE are acknowledged, anything else gets the matching *_ERROR. `served`
/// collects the subscriptions served.
pub fn answer_requests(
    session: AnySession,
    mut events: mpsc::Receiver<IncomingEvent>,
    track: Option<TrackProducer>,
    served: Served,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                IncomingEvent::Request(req) => {
                    let kind = req.message.message_type().name();
                    if let Err(e) = answer(&session, *req, track.as_ref(), &served).await {
                        tracing::debug!(request = kind, error = %e, "could not answer");
                    }
                }
                IncomingEvent::Notice(msg) => {
                    tracing::debug!(msg = msg.message_type().name(), "notice from the peer");
                }
            }
        }
    })
}

async fn answer(
    session: &AnySession,
    req: IncomingRequest,
    track: Option<&TrackProducer>,
    served: &Served,
) -> Result<(), SessionError> {
    // The track a SUBSCRIBE, TRACK_STATUS or standalone FETCH names, if it is the one served.
    let named = TrackName::requested_by(&req.message);
    let ours = track.filter(|t| named.as_ref() == Some(t.name()));
    match &req.message {
        ControlMessage::Subscribe(s) => {
            tracing::info!(namespace = %s.namespace, track = %s.name, "SUBSCRIBE");
            match ours {
                Some(t) => {
                    if let Some(task) = session.serve_subscribe(req, t).await? {
                        served.push(task);
                    }
                    Ok(())
                }
                None => {
                    req.responder
                        .reject(SubscribeErrorCode::TrackDoesNotExist, "no such track here")
                        .await
                }
            }
        }
        ControlMessage::TrackStatus(_) => session.serve_track_status(req, ours).await,
        // Joining fetches name one of the subscriptions served here; the session finds it.
        ControlMessage::Fetch(_) => session.serve_fetch(req, ours).await,
        ControlMessage::SubscribeNamespace(s) => {
            // moq-dev's relay sends one right after SETUP; the namespaces we publish are
            // announced with PUBLISH_NAMESPACE anyway.
            let reply = ControlMessage::SubscribeNamespaceOk(RequestRef {
                request_id: s.request_id,
            });
            keep_open(req, reply).await
        }
        ControlMessage::PublishNamespace(p) => {
            let reply = ControlMessage::PublishNamespaceOk(RequestRef {
                request_id: p.request_id,
            });
            keep_open(req, reply).await
        }
        ControlMessage::Publish(_) => {
            req.responder
                .reject(
                    PublishErrorCode::Uninterested,
                    "this client takes no PUBLISH",
                )
                .await
        }
        other => {
            let what = other.message_type().name();
            req.responder.not_supported(what).await
        }
    }
}

/// Accepts a request and holds it open until the session ends.
async fn keep_open(req: IncomingRequest, reply: ControlMessage) -> Result<(), SessionError> {
    let IncomingRequest {
        responder,
        mut followups,
        ..
    } = req;
    responder.accept(reply).await?;
    tokio::spawn(async move { while followups.next().await.is_some() {} });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_ends_parse() {
        assert_eq!(parse_location("3"), Ok(Location::new(3, 0)));
        assert_eq!(parse_location("3/7"), Ok(Location::new(3, 7)));
        assert!(parse_location("x/1").is_err());
        assert_eq!(
            parse_fetch_end("4"),
            Ok(FetchEnd {
                group: 4,
                object: None
            })
        );
        assert_eq!(
            parse_fetch_end("4/2"),
            Ok(FetchEnd {
                group: 4,
                object: Some(2)
            })
        );
    }

    #[test]
    fn error_names() {
        use moqlink_model::control::MessageType;
        let refused = |kind, code| {
            let e = SessionError::Rejected {
                kind,
                code,
                reason: "r".into(),
            };
            request_failed("x", e).to_string()
        };
        // §13.1.2: 0x4 in SUBSCRIBE_ERROR; §13.1.6: 0x4 in PUBLISH_NAMESPACE_ERROR.
        assert_eq!(
            refused(MessageType::SubscribeError, 4),
            "x refused: SUBSCRIBE_ERROR code 0x4 TRACK_DOES_NOT_EXIST, reason \"r\""
        );
        assert_eq!(
            refused(MessageType::PublishNamespaceError, 4),
            "x refused: PUBLISH_NAMESPACE_ERROR code 0x4 UNINTERESTED, reason \"r\""
        );
        // §13.1.5 defines no 0x11.
        assert_eq!(
            refused(MessageType::FetchError, 0x11),
            "x refused: FETCH_ERROR code 0x11, reason \"r\""
        );
        // §13.1.3.
        assert_eq!(publish_done_name(2), "TRACK_ENDED");
        assert_eq!(publish_done_name(6), "TOO_FAR_BEHIND");
        assert_eq!(publish_done_name(8), "UNKNOWN");
    }
}
