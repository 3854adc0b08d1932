//! The peer's view of the relay: what the relay sent on the control stream, read in a task of
//! its own, and everything else the relay sends drained so it never waits on us.

use moqlink_model::control::{ControlMessage, ControlReader};
use moqlink_model::{MessageType, Version};
use moqlink_transport::connection::memory::{MemoryConnection, MemoryRecv};
use moqlink_transport::connection::{Connection, ConnectionError, RecvStream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the relay has told us so far.
#[derive(Default)]
pub struct Seen {
    /// SERVER_SETUP arrived.
    pub setup: bool,
    /// SERVER_SETUP chose a moq-lite version: what follows is not draft-14.
    pub lite: bool,
    /// Answers (OK or ERROR) per Request ID of ours, with the message type of each.
    pub answers: HashMap<u64, Vec<MessageType>>,
    /// The relay's requests, in order.
    pub requests: Vec<(u64, MessageType)>,
    /// Track aliases of the relay's SUBSCRIBE_OKs and PUBLISHes.
    pub aliases: Vec<u64>,
    /// The relay's MAX_REQUEST_ID.
    pub max_request_id: u64,
    /// Something the relay sent that breaks the draft.
    pub fault: Option<String>,
    /// How the connection ended, once it has.
    pub closed: Option<ConnectionError>,
}

/// Shared between the reader tasks and the script.
pub type Shared = Arc<Mutex<Seen>>;

/// Locks `seen`.
pub fn lock(seen: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `ty` answers a request, and which request type it answers.
pub fn answers(ty: MessageType) -> Option<MessageType> {
    use MessageType as T;
    Some(match ty {
        T::SubscribeOk | T::SubscribeError => T::Subscribe,
        T::FetchOk | T::FetchError => T::Fetch,
        T::TrackStatusOk | T::TrackStatusError => T::TrackStatus,
        T::PublishNamespaceOk | T::PublishNamespaceError => T::PublishNamespace,
        T::SubscribeNamespaceOk | T::SubscribeNamespaceError => T::SubscribeNamespace,
        T::PublishOk | T::PublishError => T::Publish,
        _ => return None,
    })
}

/// Reads the relay's control stream until it ends.
pub async fn read_control(mut recv: MemoryRecv, seen: Shared) {
    let mut reader = ControlReader::new(Version::DRAFT_14);
    let mut next_relay_id = 1u64;
    loop {
        loop {
            let msg = match reader.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    lock(&seen).fault = Some(format!("relay sent undecodable control bytes: {e}"));
                    return;
                }
            };
            let mut s = lock(&seen);
            let ty = msg.message_type();
            match &msg {
                ControlMessage::ServerSetup(m) => {
                    s.setup = true;
                    s.max_request_id = m.parameters.max_request_id().unwrap_or(0);
                    s.lite = m.version.is_lite();
                }
                ControlMessage::MaxRequestId(m) => s.max_request_id = m.max_request_id,
                ControlMessage::SubscribeOk(m) => s.aliases.push(m.track_alias),
                ControlMessage::Publish(m) => s.aliases.push(m.track_alias),
                _ => {}
            }
            if answers(ty).is_some() {
                let id = msg.request_id().unwrap_or(u64::MAX);
                s.answers.entry(id).or_default().push(ty);
            } else if ty.is_request() {
                let id = msg.request_id().unwrap_or(u64::MAX);
                if id != next_relay_id {
                    s.fault = Some(format!(
                        "relay's {} has Request ID {id}, expected {next_relay_id} (§9.1)",
                        ty.name()
                    ));
                }
                next_relay_id = id.saturating_add(2);
                s.requests.push((id, ty));
            }
        }
        if lock(&seen).lite {
            // moq-lite from here on: not ours to decode.
            while let Ok(Some(_)) = recv.read_chunk(1 << 16).await {}
            return;
        }
        match recv.read_chunk(64 * 1024).await {
            Ok(Some(chunk)) => reader.push(chunk),
            _ => return,
        }
    }
}

/// Reads and forgets everything the relay sends on unidirectional streams and as datagrams,
/// and records how the connection ended.
pub async fn drain(conn: MemoryConnection, seen: Shared) {
    let streams = async {
        while let Ok(mut recv) = conn.accept_uni().await {
            tokio::spawn(async move { while let Ok(Some(_)) = recv.read_chunk(1 << 16).await {} });
        }
    };
    let datagrams = async { while conn.recv_datagram().await.is_ok() {} };
    let bidi = async { while conn.accept_bi().await.is_ok() {} };
    let closed = conn.closed();
    tokio::pin!(closed);
    tokio::select! {
        e = &mut closed => {
            lock(&seen).closed = Some(e);
        }
        _ = async { tokio::join!(streams, datagrams, bidi) } => {
            let e = closed.await;
            lock(&seen).closed = Some(e);
        }
    }
}
