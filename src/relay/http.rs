//! The relay's HTTP side door: one HTTP/1.1 listener (TCP) serving `GET /metrics`
//! (Prometheus text), `/certificate.sha256` (the certificate's SHA-256 in lowercase hex, what a
//! browser pins with `serverCertificateHashes`), `/healthz` and `/state` (JSON); anything else
//! is 404.
//!
//! Whoever reaches the port may connect, so the listener has its own limits: at most
//! [`MAX_CONNECTIONS`] connections at once (more are closed at once), a request head of at
//! most [`MAX_HEAD`] bytes that must arrive within [`HEAD_TIMEOUT`], request bodies never read,
//! and [`CONNECTION_TIMEOUT`] per connection, keep-alive included.

use super::serve::Shared;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// Bytes of a request head (request line and headers); hyper's smallest read buffer.
pub(crate) const MAX_HEAD: usize = 8192;
/// Time for a request head to arrive.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time one connection may stay open, whatever it does.
pub(crate) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What the side door serves from.
pub(crate) struct Door {
    pub(crate) shared: Arc<Shared>,
    /// The certificate's SHA-256, lowercase hex.
    pub(crate) fingerprint: String,
}

/// Accepts connections until the task is aborted.
pub(crate) async fn serve(listener: tokio::net::TcpListener, door: Arc<Door>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // E.g. out of file descriptors: wait instead of spinning.
                tracing::debug!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%remote, "HTTP connection refused: too many open");
            drop(stream);
            continue;
        };
        let door = door.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let door = door.clone();
                async move { Ok::<_, std::convert::Infallible>(door.answer(&req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                tracing::debug!(%remote, error = %e, "HTTP connection failed");
            }
            drop(permit);
        });
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

impl Door {
    /// The answer to one request (its body is never read).
    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        const TEXT: &str = "text/plain; charset=utf-8";
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into());
        }
        match req.uri().path() {
            "/metrics" => reply(
                StatusCode::OK,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                super::metrics::exposition(&self.shared),
            ),
            "/certificate.sha256" => {
                let mut r = reply(StatusCode::OK, TEXT, self.fingerprint.clone());
                // A page served from elsewhere fetches it to pin the certificate.
                r.headers_mut().insert(
                    hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    hyper::header::HeaderValue::from_static("*"),
                );
                r
            }
            "/healthz" => {
                if self.shared.metrics.accepting.load(Ordering::Relaxed) {
                    reply(StatusCode::OK, TEXT, "ok".into())
                } else {
                    reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        TEXT,
                        "shutting down".into(),
                    )
                }
            }
            "/state" => reply(
                StatusCode::OK,
                "application/json",
                super::state::state_json(&self.shared),
            ),
            _ => reply(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
        }
    }
}
