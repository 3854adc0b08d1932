//! Real network endpoints. One server UDP port serves WebTransport (ALPN `h3`), raw QUIC draft-14
//! (`moq-00`) and raw QUIC moq-lite (`moql`); a client picks the transport from the URL scheme
//! (`https://`, `moqt://`, `moql://`).

mod server;

pub use server::{Incoming, Server};

use crate::connection::any::AnyConnection;
use crate::connection::quic::QuicConnection;
use crate::connection::webtransport::WebTransportConnection;
use crate::limits::ConnectionLimits;
use crate::tls::{self, ClientTls, TlsError};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use wtransport::quinn;

/// ALPN for WebTransport over HTTP/3.
pub const ALPN_H3: &str = "h3";
/// ALPN for MoQ Transport draft-14 over raw QUIC (§3.1.2).
pub const ALPN_MOQ: &str = "moq-00";
/// ALPN for moq-lite over raw QUIC.
pub const ALPN_MOQ_LITE: &str = "moql";
/// WebTransport subprotocols the server selects (in `WT-Protocol`) when a client offers them.
pub const WT_PROTOCOLS: &[&str] = &[ALPN_MOQ];
/// Default port when a URL has none.
pub const DEFAULT_PORT: u16 = 443;
/// How long a client waits for the QUIC/TLS (and WebTransport) handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an endpoint operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The URL could not be used.
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// TLS configuration failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A socket operation failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The QUIC, TLS or WebTransport handshake failed.
    #[error("handshake: {0}")]
    Handshake(String),
}

/// The transport profile of a connection, as negotiated by ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alpn {
    /// `h3`: WebTransport over HTTP/3.
    H3,
    /// `moq-00`: MoQ Transport draft-14 over raw QUIC.
    Moq,
    /// `moql`: moq-lite over raw QUIC.
    MoqLite,
}

impl Alpn {
    /// The ALPN string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Alpn::H3 => ALPN_H3,
            Alpn::Moq => ALPN_MOQ,
            Alpn::MoqLite => ALPN_MOQ_LITE,
        }
    }

    /// Recognises a negotiated ALPN value.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        [Alpn::H3, Alpn::Moq, Alpn::MoqLite]
            .into_iter()
            .find(|a| a.as_str().as_bytes() == b)
    }
}

impl fmt::Display for Alpn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The QUIC transport settings of the default [`ConnectionLimits`] (what clients use).
pub fn transport_config() -> quinn::TransportConfig {
    ConnectionLimits::default().transport_config()
}

// ---------------------------------------------------------------------------------------------
// URLs

/// The URL schemes a client can connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `https://`: WebTransport.
    Https,
    /// `moqt://`: raw QUIC, ALPN `moq-00`.
    Moqt,
    /// `moql://`: raw QUIC, ALPN `moql`.
    Moql,
}

impl Scheme {
    /// The ALPN this scheme connects with.
    pub const fn alpn(self) -> Alpn {
        match self {
            Scheme::Https => Alpn::H3,
            Scheme::Moqt => Alpn::Moq,
            Scheme::Moql => Alpn::MoqLite,
        }
    }
}

/// A parsed connection URL (`https`, `moqt` or `moql`), keeping the authority, path and query
/// exactly as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoqUrl {
    /// The scheme.
    pub scheme: Scheme,
    /// The host without IPv6 brackets.
    pub host: String,
    /// The port (443 when absent).
    pub port: u16,
    /// The authority as written (`host[:port]`).
    pub authority: String,
    /// path-abempty plus `?query` when present, as written (may be empty).
    pub path_and_query: String,
    original: String,
}

/// What a raw QUIC client sends in CLIENT_SETUP: the PATH (0x01) and AUTHORITY (0x05) values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupTarget {
    /// path-abempty, then `?` and the query if the URL had one.
    pub path: String,
    /// The URL's authority (`host[:port]`).
    pub authority: String,
}

impl MoqUrl {
    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// PATH and AUTHORITY for CLIENT_SETUP on raw QUIC; `None` for WebTransport, where they
    /// travel in the CONNECT request instead.
    pub fn setup_target(&self) -> Option<SetupTarget> {
        match self.scheme {
            Scheme::Https => None,
            Scheme::Moqt | Scheme::Moql => Some(SetupTarget {
                path: self.path_and_query.clone(),
                authority: self.authority.clone(),
            }),
        }
    }
}

impl fmt::Display for MoqUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl FromStr for MoqUrl {
    type Err = EndpointError;

    fn from_str(url: &str) -> Result<Self, EndpointError> {
        let bad = |reason| EndpointError::Url {
            url: url.to_string(),
            reason,
        };
        let (scheme, rest) = url.split_once("://").ok_or(bad("missing scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "moqt" => Scheme::Moqt,
            "moql" => Scheme::Moql,
            _ => return Err(bad("scheme must be https, moqt or moql")),
        };
        if rest.contains('#') {
            return Err(bad("fragments are not allowed"));
        }
        if rest.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("whitespace or control characters"));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad("user information is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(bad("unclosed '['"))?;
            host.parse::<Ipv6Addr>()
                .map_err(|_| bad("invalid IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(bad("junk after ']'"))?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if host.contains(['[', ']', ':']) && !authority.starts_with('[') {
            return Err(bad("invalid host"));
        }
        let port = match port {
            None | Some("") => DEFAULT_PORT,
            Some(p) => p.parse::<u16>().map_err(|_| bad("invalid port"))?,
        };
        Ok(MoqUrl {
            scheme,
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            path_and_query: path_and_query.to_string(),
            original: url.to_string(),
        })
    }
}

/// Resolves a host to one address, preferring IPv4 (servers usually bind `0.0.0.0` or
/// `127.0.0.1`); `localhost` falls back to 127.0.0.1 when the resolver has nothing.
pub async fn resolve(host: &str, port: u16) -> Result<SocketAddr, EndpointError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let found: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => addrs.collect(),
        Err(_) => Vec::new(),
    };
    let pick = found
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| found.first())
        .copied();
    match pick {
        Some(a) => Ok(a),
        None if host.eq_ignore_ascii_case("localhost") => {
            Ok(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port))
        }
        None => Err(EndpointError::Resolve(format!("{host}:{port}"))),
    }
}

/// The local address a client binds for `target`: loopback for loopback targets, otherwise the
/// unspecified address of the same family; port 0.
fn client_bind(target: SocketAddr) -> SocketAddr {
    let ip: IpAddr = match (target.ip().is_loopback(), target) {
        (true, SocketAddr::V4(_)) => Ipv4Addr::LOCALHOST.into(),
        (true, SocketAddr::V6(_)) => Ipv6Addr::LOCALHOST.into(),
        (false, SocketAddr::V4(_)) => Ipv4Addr::UNSPECIFIED.into(),
        (false, SocketAddr::V6(_)) => Ipv6Addr::UNSPECIFIED.into(),
    };
    SocketAddr::new(ip, 0)
}

/// Parses an RFC 8941 list of strings (e.g. `"moq-00", "moql";q=1`), ignoring parameters and
/// tokens it cannot read.
pub fn parse_sf_string_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut item = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            chars.next();
            quoted = true;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => item.extend(chars.next()),
                    '"' => break,
                    c => item.push(c),
                }
            }
        }
        // Skip parameters or an unquoted token up to the next member.
        for c in chars.by_ref() {
            if c == ',' {
                break;
            }
        }
        if quoted && !item.is_empty() {
            out.push(item);
        }
        if chars.peek().is_none() {
            return out;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client

/// Client settings.
#[derive(Clone, Debug, Default)]
pub struct ClientConfig {
    /// How to verify the server's certificate.
    pub tls: ClientTls,
    /// Subprotocols offered in `WT-Available-Protocols` on `https://` (empty: no header, which
    /// every known MoQ relay accepts).
    pub wt_protocols: Vec<String>,
    /// Connection-level receive window in bytes (QUIC MAX_DATA), overriding
    /// `limits.receive_window` when set. A small window makes the peer choose which stream to
    /// send first (e.g. to observe priorities).
    pub receive_window: Option<u32>,
    /// Receive limits of the client's connections (windows, streams, keep-alive, buffers).
    pub limits: ConnectionLimits,
}

/// An established client session and what the MoQ layer needs to set it up.
#[derive(Debug)]
pub struct Connected {
    /// The connection.
    pub conn: AnyConnection,
    /// The URL it was opened from.
    pub url: MoqUrl,
    /// PATH and AUTHORITY for CLIENT_SETUP (raw QUIC only).
    pub setup: Option<SetupTarget>,
}

/// A client able to open sessions by URL.
#[derive(Clone)]
pub struct Client {
    verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    wt_protocols: Vec<String>,
    receive_window: Option<u32>,
    limits: Arc<ConnectionLimits>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("wt_protocols", &self.wt_protocols)
            .finish_non_exhaustive()
    }
}

/// Hands wtransport the address we already resolved.
#[derive(Debug)]
struct FixedResolver(SocketAddr);

impl wtransport::config::DnsResolver for FixedResolver {
    fn resolve(&self, _host: &str) -> std::pin::Pin<Box<dyn wtransport::config::DnsLookupFuture>> {
        let addr = self.0;
        Box::pin(async move { Ok(Some(addr)) })
    }
}

impl Client {
    /// Builds a client (loads root certificates / CA files now).
    pub fn new(config: ClientConfig) -> Result<Self, EndpointError> {
        Ok(Client {
            verifier: config.tls.verifier()?,
            wt_protocols: config.wt_protocols,
            receive_window: config.receive_window,
            limits: Arc::new(config.limits),
        })
    }

    /// The same client with a connection-level receive window of `bytes` (see
    /// [`ClientConfig::receive_window`]).
    pub fn with_receive_window(&self, bytes: u32) -> Self {
        Client {
            receive_window: Some(bytes),
            ..self.clone()
        }
    }

    /// Connects to `https://`, `moqt://` or `moql://` URL.
    pub async fn connect(&self, url: &str) -> Result<Connected, EndpointError> {
        let url: MoqUrl = url.parse()?;
        self.connect_url(url).await
    }

    /// Connects to a parsed URL, giving up after [`CONNECT_TIMEOUT`].
    pub async fn connect_url(&self, url: MoqUrl) -> Result<Connected, EndpointError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.connect_inner(url))
            .await
            .map_err(|_| EndpointError::Handshake("timed out".into()))?
    }

    async fn connect_inner(&self, url: MoqUrl) -> Result<Connected, EndpointError> {
        let addr = resolve(&url.host, url.port).await?;
        let alpn = url.scheme.alpn();
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls::client_config(
            self.verifier.clone(),
            alpn.as_str().as_bytes(),
        )?)
        .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
        let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
        let mut transport = self.limits.transport_config();
        if let Some(w) = self.receive_window {
            transport.receive_window(quinn::VarInt::from_u32(w));
        }
        quic.transport_config(Arc::new(transport));
        let socket = std::net::UdpSocket::bind(client_bind(addr))?;
        socket.set_nonblocking(true)?;
        let conn: AnyConnection = match url.scheme {
            Scheme::Https => self.connect_wt(&url, addr, socket, quic).await?.into(),
            Scheme::Moqt | Scheme::Moql => {
                let endpoint = quinn::Endpoint::new(
                    quinn::EndpointConfig::default(),
                    None,
                    socket,
                    Arc::new(quinn::TokioRuntime),
                )?;
                let conn = endpoint
                    .connect_with(quic, addr, &url.host)
                    .map_err(|e| EndpointError::Handshake(e.to_string()))?
                    .await
                    .map_err(|e| EndpointError::Handshake(e.to_string()))?;
                QuicConnection::new(conn, alpn.as_str())
                    .with_limits(self.limits.clone())
                    .into()
            }
        };
        tracing::debug!(url = %url, peer = %addr, %alpn, "connected");
        let setup = url.setup_target();
        Ok(Connected { conn, url, setup })
    }

    async fn connect_wt(
        &self,
        url: &MoqUrl,
        addr: SocketAddr,
        socket: std::net::UdpSocket,
        quic: quinn::ClientConfig,
    ) -> Result<WebTransportConnection, EndpointError> {
        let mut config = wtransport::ClientConfig::builder()
            .with_bind_socket(socket)
            .build_with_quic_config(quic);
        config.set_dns_resolver(FixedResolver(addr));
        let endpoint = wtransport::Endpoint::client(config)?;
        let mut options = wtransport::endpoint::ConnectOptions::builder(url.as_str());
        if !self.wt_protocols.is_empty() {
            let list: Vec<String> = self.wt_protocols.iter().map(|p| format!("{p:?}")).collect();
            options = options.add_header("wt-available-protocols", list.join(", "));
        }
        let conn = endpoint
            .connect(options)
            .await
            .map_err(|e| EndpointError::Handshake(e.to_string()))?;
        Ok(WebTransportConnection::new(conn).with_limits(self.limits.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> MoqUrl {
        s.parse().unwrap()
    }

    #[test]
    fn moqt_url_keeps_path_query_and_authority() {
        let u = url("moqt://relay.example:4443/moq/a?token=x&y=1");
        assert_eq!(u.scheme, Scheme::Moqt);
        assert_eq!((u.host.as_str(), u.port), ("relay.example", 4443));
        let t = u.setup_target().unwrap();
        assert_eq!(t.path, "/moq/a?token=x&y=1");
        assert_eq!(t.authority, "relay.example:4443");

        let u = url("moqt://127.0.0.1:4443");
        assert_eq!(u.setup_target().unwrap().path, "");
        let u = url("moqt://h?q");
        assert_eq!((u.port, u.path_and_query.as_str()), (443, "?q"));
        let u = url("moql://[::1]:9000/x");
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        assert_eq!(u.authority, "[::1]:9000");
        assert_eq!(u.scheme.alpn(), Alpn::MoqLite);
        let u = url("https://localhost:4443/anything");
        assert_eq!(u.setup_target(), None);
        assert_eq!(u.scheme.alpn().as_str(), "h3");
    }

    #[test]
    fn bad_urls_are_rejected() {
        for bad in [
            "relay:4443",
            "http://h:1",
            "moqt://:4443/x",
            "moqt://h:99999",
            "moqt://h:x",
            "moqt://u@h:1",
            "moqt://h:1/#frag",
            "moqt://[::1/x",
            "moqt://[zz]:1",
            "moqt://a:b:c",
            "moqt://h:1/a b",
        ] {
            assert!(bad.parse::<MoqUrl>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn structured_field_list() {
        assert_eq!(parse_sf_string_list("\"moq-00\""), vec!["moq-00"]);
        assert_eq!(
            parse_sf_string_list("\"moql\";q=1, token, \"moq-00\",\"a\\\"b\""),
            vec!["moql", "moq-00", "a\"b"]
        );
        assert!(parse_sf_string_list("").is_empty());
        // Arbitrary peer input never panics.
        for junk in [
            "\"",
            "\"\\",
            ",,,",
            "\"a\";;;,\"",
            "é\"ü\"",
            "\"\\\"",
            ";q=\"x\"",
        ] {
            let _ = parse_sf_string_list(junk);
        }
    }

    #[test]
    fn alpn_round_trip() {
        for a in [Alpn::H3, Alpn::Moq, Alpn::MoqLite] {
            assert_eq!(Alpn::from_bytes(a.as_str().as_bytes()), Some(a));
        }
        assert_eq!(Alpn::from_bytes(b"h2"), None);
    }

    #[tokio::test]
    async fn localhost_resolves_to_loopback() {
        let a = resolve("localhost", 1234).await.unwrap();
        assert!(a.ip().is_loopback());
        assert_eq!(a.port(), 1234);
    }
}
