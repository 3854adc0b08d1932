//! Interop-runner compatible test client: the runner's test cases, TAP 14 output and the client
//! contract of the MoQ interop runner; and the draft-14 conformance suite for any relay.

pub mod cases;
pub mod conformance;
pub mod report;
pub mod tap;

pub use moqlink_transport as transport;
