//! Interop-runner compatible test client, conformance checks and the peer matrix.
//!
//! Filled by the sessions and conformance issues.

pub use moqlink_transport as transport;
