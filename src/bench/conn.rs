//! How the load tool connects: raw QUIC over a socket it can silence (a peer that vanishes
//! without CONNECTION_CLOSE), WebTransport through the ordinary client, and a connection whose
//! data streams are never read (a stalled subscriber).

use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::connection::quic::QuicConnection;
use moqlink_transport::connection::stalling::Stalling;
use moqlink_transport::endpoint::{Client, ClientConfig, MoqUrl, Scheme};
use moqlink_transport::lite::{LiteEvent, LiteSession};
use moqlink_transport::session::{Accepted, ClientTarget, IncomingEvent, Session, SessionConfig};
use moqlink_transport::tls::ClientTls;
use moqlink_transport::ConnectionLimits;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use wtransport::quinn;
use wtransport::quinn::udp::{RecvMeta, Transmit};

/// How long a connection attempt (handshake and SETUP) may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// A UDP socket that can be silenced: afterwards nothing is sent and nothing is received, so the
/// peer sees the connection vanish (no CONNECTION_CLOSE reaches it).
#[derive(Debug)]
struct Gated {
    inner: Arc<dyn quinn::AsyncUdpSocket>,
    off: Arc<AtomicBool>,
}

impl quinn::AsyncUdpSocket for Gated {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn quinn::UdpPoller>> {
        self.inner.clone().create_io_poller()
    }
    fn try_send(&self, transmit: &Transmit) -> std::io::Result<()> {
        if self.off.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.inner.try_send(transmit)
    }
    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<std::io::Result<usize>> {
        // After silencing, whatever arrives is read and discarded.
        loop {
            match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(_)) if self.off.load(Ordering::Relaxed) => continue,
                other => return other,
            }
        }
    }
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }
    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }
    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

/// Makes a connection vanish: its socket goes silent, then it is closed locally.
#[derive(Clone, Debug, Default)]
pub struct Vanish(Option<Arc<AtomicBool>>);

impl Vanish {
    /// Whether this connection can vanish without a CONNECTION_CLOSE (raw QUIC only).
    pub fn is_silent(&self) -> bool {
        self.0.is_some()
    }

    /// Silences the socket; closing the connection afterwards sends nothing.
    pub fn now(&self) {
        if let Some(off) = &self.0 {
            off.store(true, Ordering::Relaxed);
        }
    }
}

/// Where and how the load tool connects.
#[derive(Clone)]
pub struct Dialer {
    url: MoqUrl,
    client: Client,
    tls: ClientTls,
    cfg: SessionConfig,
    stall_window: Option<u64>,
}

impl Dialer {
    /// A dialer for `url` with this certificate policy and session settings. A `moql://` URL
    /// offers the moq-lite versions of `cfg` only (lite-02 and lite-01 if it has none).
    pub fn new(url: &str, tls: ClientTls, mut cfg: SessionConfig) -> anyhow::Result<Self> {
        let url: MoqUrl = url.parse()?;
        if url.scheme == Scheme::Moql {
            cfg.versions.retain(|v| v.is_lite());
            if cfg.versions.is_empty() {
                cfg.versions = vec![
                    moqlink_model::Version::LITE_02,
                    moqlink_model::Version::LITE_01,
                ];
            }
        }
        let client = Client::new(ClientConfig {
            tls: tls.clone(),
            ..Default::default()
        })?;
        Ok(Dialer {
            url,
            client,
            tls,
            cfg,
            stall_window: None,
        })
    }

    /// The same dialer whose stalled sessions advertise a QUIC connection receive window of
    /// `bytes` (raw QUIC only): the relay is held by flow control once that much is unread.
    pub fn with_stall_window(mut self, bytes: Option<u64>) -> Self {
        self.stall_window = bytes;
        self
    }

    /// Opens a connection: raw QUIC over a socket that can be silenced, or WebTransport.
    pub async fn connection(&self) -> anyhow::Result<(AnyConnection, ClientTarget, Vanish)> {
        tokio::time::timeout(CONNECT_LIMIT, self.connection_inner(None))
            .await
            .map_err(|_| anyhow::anyhow!("connecting timed out"))?
    }

    async fn connection_inner(
        &self,
        receive_window: Option<u64>,
    ) -> anyhow::Result<(AnyConnection, ClientTarget, Vanish)> {
        let target = self
            .url
            .setup_target()
            .map(ClientTarget::from)
            .unwrap_or_default();
        if self.url.scheme == Scheme::Https {
            let c = self.client.connect_url(self.url.clone()).await?;
            return Ok((c.conn, target, Vanish::default()));
        }
        let addr = moqlink_transport::endpoint::resolve(&self.url.host, self.url.port).await?;
        let alpn = self.url.scheme.alpn();
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(
            moqlink_transport::tls::client_config(self.tls.verifier()?, alpn.as_str().as_bytes())?,
        )?;
        let mut limits = ConnectionLimits::default();
        if let Some(w) = receive_window {
            limits.receive_window = w;
            limits.stream_receive_window = limits.stream_receive_window.min(w);
        }
        let limits = Arc::new(limits);
        let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
        quic.transport_config(Arc::new(limits.transport_config()));
        let bind: SocketAddr = match (addr.ip().is_loopback(), addr.is_ipv4()) {
            (true, true) => ([127, 0, 0, 1], 0).into(),
            (true, false) => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
            (false, true) => ([0, 0, 0, 0], 0).into(),
            (false, false) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = std::net::UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        let runtime = Arc::new(quinn::TokioRuntime);
        let off = Arc::new(AtomicBool::new(false));
        let gated = Arc::new(Gated {
            inner: quinn::Runtime::wrap_udp_socket(&*runtime, socket)?,
            off: off.clone(),
        });
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            None,
            gated,
            runtime,
        )?;
        let conn = endpoint.connect_with(quic, addr, &self.url.host)?.await?;
        let conn = QuicConnection::new(conn, alpn.as_str()).with_limits(limits);
        Ok((conn.into(), target, Vanish(Some(off))))
    }

    /// Whether sessions speak moq-lite: a `moql://` URL, or a lite version offered first.
    pub fn is_lite(&self) -> bool {
        self.url.scheme == Scheme::Moql || self.cfg.versions.first().is_some_and(|v| v.is_lite())
    }

    /// Connects and completes a moq-lite SETUP (an error if the peer chose draft-14).
    pub async fn lite_session(
        &self,
    ) -> anyhow::Result<(
        LiteSession<AnyConnection>,
        mpsc::Receiver<LiteEvent<AnyConnection>>,
    )> {
        let (conn, target, _) = self.connection().await?;
        let accepted = tokio::time::timeout(
            CONNECT_LIMIT,
            Session::connect_any(conn, self.cfg.clone(), target),
        )
        .await
        .map_err(|_| anyhow::anyhow!("SETUP timed out"))??;
        match accepted {
            Accepted::Lite(s, rx) => Ok((s, rx)),
            Accepted::Ietf(s, _) => {
                s.close(moqlink_model::SessionErrorCode::NoError, "");
                anyhow::bail!("the peer chose draft-14, not moq-lite")
            }
        }
    }

    /// Connects and completes draft-14 SETUP.
    pub async fn session(
        &self,
    ) -> anyhow::Result<(
        Session<AnyConnection>,
        mpsc::Receiver<IncomingEvent>,
        Vanish,
    )> {
        let (conn, target, vanish) = self.connection().await?;
        let (s, rx) = tokio::time::timeout(
            CONNECT_LIMIT,
            Session::connect(conn, self.cfg.clone(), target),
        )
        .await
        .map_err(|_| anyhow::anyhow!("SETUP timed out"))??;
        Ok((s, rx, vanish))
    }

    /// Connects a session that never reads its data streams.
    pub async fn stalled_session(
        &self,
    ) -> anyhow::Result<(
        Session<Stalling<AnyConnection>>,
        mpsc::Receiver<IncomingEvent>,
    )> {
        let (conn, target, _) =
            tokio::time::timeout(CONNECT_LIMIT, self.connection_inner(self.stall_window))
                .await
                .map_err(|_| anyhow::anyhow!("connecting timed out"))??;
        let (s, rx) = tokio::time::timeout(
            CONNECT_LIMIT,
            Session::connect(Stalling(conn), self.cfg.clone(), target),
        )
        .await
        .map_err(|_| anyhow::anyhow!("SETUP timed out"))??;
        Ok((s, rx))
    }
}
