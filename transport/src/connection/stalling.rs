//! A connection that stopped reading: for load tools and tests of the limits that protect a
//! relay against such peers.

use super::{Connection, ConnectionError, TransportKind};
use crate::limits::ConnectionLimits;
use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;

/// A connection whose peer-opened unidirectional streams are never accepted, hence never read,
/// and whose datagrams are never received: a subscriber that keeps its session open but stopped
/// reading.
#[derive(Clone)]
pub struct Stalling<C>(pub C);

impl<C: Connection> Connection for Stalling<C> {
    type Send = C::Send;
    type Recv = C::Recv;

    fn open_bi(
        &self,
    ) -> impl Future<Output = Result<(Self::Send, Self::Recv), ConnectionError>> + Send {
        self.0.open_bi()
    }
    fn accept_bi(
        &self,
    ) -> impl Future<Output = Result<(Self::Send, Self::Recv), ConnectionError>> + Send {
        self.0.accept_bi()
    }
    fn open_uni(&self) -> impl Future<Output = Result<Self::Send, ConnectionError>> + Send {
        self.0.open_uni()
    }
    async fn accept_uni(&self) -> Result<Self::Recv, ConnectionError> {
        Err(self.0.closed().await)
    }
    fn send_datagram(&self, data: Bytes) -> Result<(), ConnectionError> {
        self.0.send_datagram(data)
    }
    async fn recv_datagram(&self) -> Result<Bytes, ConnectionError> {
        Err(self.0.closed().await)
    }
    fn max_datagram_size(&self) -> Option<usize> {
        self.0.max_datagram_size()
    }
    fn close(&self, code: u64, reason: &str) {
        self.0.close(code, reason)
    }
    fn closed(&self) -> impl Future<Output = ConnectionError> + Send {
        self.0.closed()
    }
    fn kind(&self) -> TransportKind {
        self.0.kind()
    }
    fn peer(&self) -> String {
        self.0.peer()
    }
    fn limits(&self) -> Arc<ConnectionLimits> {
        self.0.limits()
    }
}
