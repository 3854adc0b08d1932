//! Connections (WebTransport and raw QUIC), control and data stream handlers, and MoQ sessions.
//!
//! This crate is filled by the connections and sessions issues; it re-exports the wire model so
//! users of the transport see one version of it.

pub use moqlink_model as model;
