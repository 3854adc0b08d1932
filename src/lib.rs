//! moqlink: MoQ Transport draft-14 client API and relay. The wire model and the session layer
//! are re-exported from `moqlink-model` and `moqlink-transport`.

pub mod bench;
pub mod relay;

pub use moqlink_model as model;
pub use moqlink_transport as transport;
pub use moqlink_transport::client::{connect, AnySession, ConnectError};
