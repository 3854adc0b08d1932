//! Interop-runner compatible test client: the runner's test cases, TAP 14 output and the client
//! contract of the MoQ interop runner.

pub mod cases;
pub mod tap;

pub use moqlink_transport as transport;
