//! Connections (WebTransport and raw QUIC), control and data stream handlers, and MoQ sessions.

pub mod client;
pub mod connection;
pub mod data;
pub mod endpoint;
pub mod limits;
pub mod lite;
pub mod qlog;
pub mod session;
pub mod stats;
pub mod tls;
pub mod track;

pub use connection::{
    Connection, ConnectionError, RecvStream, SendStream, StreamError, TransportKind,
};
pub use limits::{ConnectionLimits, ServerLimits};
pub use moqlink_model as model;
