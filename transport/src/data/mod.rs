//! Data streams and datagrams over a session's connection: writers for subgroup and fetch
//! streams, datagram sending, and the router that reads incoming streams and datagrams and hands
//! them to whoever holds the track alias or fetch request.

mod arbiter;
mod backlog;
mod priority;
mod router;
mod writer;

pub use arbiter::{SendArbiter, WriterSlot};
pub use backlog::{Backlog, Hold, SendLimits, SendTotals, Ticket};
pub use priority::stream_priority;
pub(crate) use router::compact;
pub use router::DuplicateAlias;
pub use router::{
    DataRouter, ExpectedFetch, FetchEvent, IncomingFetch, IncomingSubgroup, SubgroupEvent,
    TrackData,
};
pub use writer::{FetchWriter, SubgroupWriter, WriteError};
