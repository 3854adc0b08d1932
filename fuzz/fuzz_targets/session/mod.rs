//! A session-level fuzz harness: one relay, one in-memory client connection, and a script read
//! from the fuzz input that the client plays (CLIENT_SETUP, control messages typed and raw,
//! subgroup and fetch streams, datagrams, resets, FINs and a close). Oracles: no task panics;
//! every request the relay accepted is answered unless the session closed; a session closed by
//! the relay carries a code of §13.1.1, and input that breaks a rule of the control stream gets
//! a close; after the client has gone, the relay holds nothing and no task is left.
//!
//! Shared by the `session` fuzz target and the workspace test that replays what it found.

pub mod gen;
pub mod input;
pub mod peer;

use bytes::Bytes;
use gen::Known;
use input::Input;
use moqlink::relay::testing::{MemoryRelay, RelayCounts};
use moqlink::relay::RelayConfig;
use moqlink_model::control::{ClientSetup, ControlMessage, ControlReader};
use moqlink_model::params::{SetupParameter, SetupParameters};
use moqlink_model::{Encoding, MessageType, SessionErrorCode, Version};
use moqlink_transport::connection::memory::{pair, MemoryConnection, MemorySend};
use moqlink_transport::connection::{Connection, ConnectionError, SendStream};
use moqlink_transport::endpoint::Alpn;
use peer::{lock, Shared};
use std::cell::Cell;
use std::time::Duration;
use tokio::time::{sleep, timeout};

/// Steps a script plays at most.
const MAX_STEPS: usize = 96;
/// Longer than any timer of the relay that an input can start (virtual time: costs nothing).
const SETTLE: Duration = Duration::from_secs(120);

thread_local! {
    static PANICKED: Cell<bool> = const { Cell::new(false) };
}

/// Plays `data` against a fresh relay; `Err` names the oracle that failed.
pub fn run(data: &[u8]) -> Result<(), String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.with(|p| p.set(true));
            previous(info);
        }));
    });
    PANICKED.with(|p| p.set(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let result = rt.block_on(script(data));
    drop(rt);
    if PANICKED.with(|p| p.get()) {
        return Err("a task panicked".into());
    }
    result
}

/// Whether to print what each script did (`SESSION_FUZZ_DEBUG=1`).
fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("SESSION_FUZZ_DEBUG").is_some())
}

/// The relay under test: defaults, with timeouts the script can outwait.
fn config() -> RelayConfig {
    let mut cfg = RelayConfig::default();
    cfg.session.versions = vec![Version::DRAFT_14, Version::LITE_02, Version::LITE_01];
    cfg.session.request_window = 16;
    cfg.limits.subscriptions = 8;
    cfg.limits.fetches = 4;
    cfg.limits.namespaces = 4;
    cfg.limits.namespace_subscriptions = 4;
    cfg.limits.published_tracks = 4;
    cfg
}

/// What the script sent and what it may therefore expect.
struct Script {
    conn: MemoryConnection,
    control: MemorySend,
    /// Mirror of the relay's control stream decoder, fed what we send.
    mirror: ControlReader,
    /// Why the relay must close the session, once something we sent requires it.
    must_close: Option<String>,
    /// The close code the first rule broken on the control stream calls for.
    expect_code: Option<u64>,
    /// Something we sent may have closed the session with a code we do not predict.
    uncertain: bool,
    known: Known,
    seen: Shared,
    /// Data streams we keep open, with whether their objects carry extensions.
    open: Vec<(MemorySend, bool, bool)>,
}

impl Script {
    /// Writes control stream bytes and notes what the relay will make of them.
    async fn send_control(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        self.mirror.push(Bytes::from(bytes.clone()));
        self.sync();
        if self.must_close.is_none() {
            loop {
                match self.mirror.next_message() {
                    Ok(Some(m)) => self.sent(&m),
                    Ok(None) => break,
                    Err(e) => {
                        self.must_close = Some(format!("undecodable control message: {e}"));
                        self.expect_code = (!self.uncertain).then(|| e.code().code());
                        break;
                    }
                }
                if self.must_close.is_some() {
                    break;
                }
            }
        }
        match timeout(SETTLE, self.control.write(&bytes)).await {
            Ok(_) => Ok(()),
            Err(_) => {
                if lock(&self.seen).closed.is_some() {
                    Ok(())
                } else {
                    Err("the relay stopped reading its control stream".into())
                }
            }
        }
    }

    /// Notes a whole message as the relay will have decoded it.
    fn sent(&mut self, m: &ControlMessage) {
        let ty = m.message_type();
        // A second SETUP message: draft-14 says nothing of it, so neither does this harness.
        if !ty.is_request() {
            // A reference to a request neither side made may close the session first (§9.1
            // INVALID_REQUEST_ID, or PROTOCOL_VIOLATION): later codes are no longer certain.
            // A reply must name one of the relay's requests: a reply naming one of ours has
            // the wrong parity for its sender (§9.1, INVALID_REQUEST_ID).
            if let Some(id) = m.request_id() {
                let known = |l: &[(u64, MessageType)]| l.iter().any(|(i, _)| *i == id);
                let name = ty.name();
                let reply = name.ends_with("_OK") || name.ends_with("_ERROR");
                if !known(&self.known.relays) && (reply || !known(&self.known.ours)) {
                    self.uncertain = true;
                }
            }
            return;
        }
        let id = m.request_id().unwrap_or(u64::MAX);
        if id != self.known.next_id {
            self.must_close = Some(format!(
                "{} with Request ID {id}, expected {} (§9.1)",
                ty.name(),
                self.known.next_id
            ));
            // At or above MAX_REQUEST_ID, TOO_MANY_REQUESTS (§9.5) may come first.
            if id < lock(&self.seen).max_request_id && !self.uncertain {
                self.expect_code = Some(SessionErrorCode::InvalidRequestId.code());
            }
            return;
        }
        self.known.next_id += 2;
        self.known.ours.push((id, ty));
    }

    /// Learns the relay's requests and aliases.
    fn sync(&mut self) {
        let s = lock(&self.seen);
        let new = &s.requests[self.known.relays.len().min(s.requests.len())..];
        self.known.relays.extend_from_slice(new);
        for a in &s.aliases {
            if !self.known.aliases.contains(a) {
                self.known.aliases.push(*a);
            }
        }
    }

    async fn send_message(&mut self, m: &ControlMessage) -> Result<(), String> {
        let mut buf = Vec::new();
        if m.encode(&mut buf, Encoding::new(Version::DRAFT_14)).is_ok() {
            self.send_control(buf).await?;
        }
        Ok(())
    }

    fn closed(&self) -> bool {
        lock(&self.seen).closed.is_some()
    }

    /// One step of the script.
    async fn step(&mut self, inp: &mut Input<'_>) -> Result<(), String> {
        self.sync();
        match inp.byte() % 20 {
            0..=4 => {
                let m = gen::request(inp, &mut self.known);
                self.send_message(&m).await?;
            }
            5 | 6 => {
                let m = gen::notice(inp, &mut self.known);
                self.send_message(&m).await?;
            }
            7..=9 => {
                let m = gen::answer(inp, &mut self.known);
                self.send_message(&m).await?;
            }
            10 => {
                let raw = inp.bytes(64);
                self.send_control(raw).await?;
            }
            11 | 12 => {
                let (head, ext) = gen::subgroup_header(inp, &self.known);
                self.data_stream(inp, head, ext, false).await;
            }
            13 => {
                let head = gen::fetch_header(inp, &self.known);
                self.data_stream(inp, head, true, true).await;
            }
            14 => {
                if !self.open.is_empty() {
                    let i = inp.below(self.open.len());
                    let (mut s, ext, fetch) = self.open.swap_remove(i);
                    match inp.byte() % 4 {
                        0 => drop(s.finish()),
                        1 => drop(s.reset(inp.number())),
                        _ => {
                            let obj = if fetch {
                                gen::fetch_object(inp)
                            } else {
                                gen::subgroup_object(inp, ext)
                            };
                            let _ = timeout(SETTLE, s.write(&obj)).await;
                            self.open.push((s, ext, fetch));
                        }
                    }
                }
            }
            15 => {
                let d = gen::datagram(inp, &self.known);
                let _ = self.conn.send_datagram(Bytes::from(d));
            }
            16 => {
                if let Ok(mut s) = self.conn.open_uni().await {
                    let _ = s.write(&inp.bytes(32)).await;
                    if inp.chance(50) {
                        let _ = s.reset(inp.number());
                    }
                }
            }
            17 => {
                if let Ok((mut s, _r)) = self.conn.open_bi().await {
                    let _ = s.write(&inp.bytes(32)).await;
                }
            }
            _ => {
                let ms = [0, 1, 10, 100, 1000, 5000][inp.below(6)];
                sleep(Duration::from_millis(ms)).await;
            }
        }
        tokio::task::yield_now().await;
        Ok(())
    }

    /// Opens a subgroup or fetch stream with `head` and a few objects, then ends it or keeps it.
    async fn data_stream(&mut self, inp: &mut Input<'_>, head: Vec<u8>, ext: bool, fetch: bool) {
        let Ok(mut s) = self.conn.open_uni().await else {
            return;
        };
        let mut bytes = head;
        for _ in 0..inp.below(4) {
            if fetch {
                bytes.extend(gen::fetch_object(inp));
            } else {
                bytes.extend(gen::subgroup_object(inp, ext));
            }
        }
        if inp.chance(10) {
            let cut = inp.below(bytes.len() + 1);
            bytes.truncate(cut);
        }
        // Written in input-chosen pieces, as QUIC may deliver them.
        while !bytes.is_empty() {
            let n = 1 + inp.below(bytes.len());
            let rest = bytes.split_off(n);
            if timeout(SETTLE, s.write(&bytes)).await.is_err() {
                return;
            }
            bytes = rest;
        }
        match inp.byte() % 4 {
            0 => drop(s.reset(inp.number())),
            1 => self.open.push((s, ext, fetch)),
            _ => drop(s.finish()),
        }
    }
}

/// CLIENT_SETUP: valid most of the time.
fn client_setup(inp: &mut Input) -> Vec<u8> {
    if inp.chance(3) {
        return inp.bytes(32);
    }
    let mut versions = vec![Version::DRAFT_14];
    match inp.byte() {
        0..=7 => versions = vec![Version(inp.number() as u32)],
        8..=15 => versions = vec![Version::LITE_02],
        16..=19 => versions = vec![Version::LITE_01, Version::DRAFT_14],
        _ => {}
    }
    let mut parameters = SetupParameters::new();
    if !inp.chance(5) {
        parameters.push(SetupParameter::MaxRequestId {
            value: [0, 1, 2, 10, 100][inp.below(5)],
        });
    }
    if inp.chance(5) {
        parameters.push(SetupParameter::Path {
            value: moqlink_model::Blob::new(inp.bytes(16)),
        });
    }
    let mut buf = Vec::new();
    let _ = ControlMessage::ClientSetup(ClientSetup {
        versions,
        parameters,
    })
    .encode(&mut buf, Encoding::new(Version::DRAFT_14));
    buf
}

async fn script(data: &[u8]) -> Result<(), String> {
    let mut inp = Input::new(data);
    let relay = MemoryRelay::new(config());
    let (client, server) = pair();
    let serving = tokio::spawn({
        let relay = relay.clone();
        async move { relay.serve(server, Alpn::Moq).await }
    });
    let seen = Shared::default();
    let drainer = tokio::spawn(peer::drain(client.clone(), seen.clone()));
    let (mut control, recv) = client.open_bi().await.map_err(|e| e.to_string())?;
    let reader = tokio::spawn(peer::read_control(recv, seen.clone()));
    let setup = client_setup(&mut inp);
    // How the client will leave: close with a code, or vanish without one.
    let leave = inp.byte();
    let _ = control.write(&setup).await;
    // SERVER_SETUP, or the relay gave up on us.
    let _ = timeout(SETTLE, async {
        while !lock(&seen).setup && lock(&seen).closed.is_none() {
            sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let mut s = Script {
        conn: client.clone(),
        control,
        mirror: ControlReader::new(Version::DRAFT_14),
        must_close: None,
        expect_code: None,
        uncertain: false,
        known: Known::default(),
        seen: seen.clone(),
        open: Vec::new(),
    };
    if lock(&seen).setup {
        let mut steps = 0;
        while !inp.is_empty() && steps < MAX_STEPS && !s.closed() {
            s.step(&mut inp).await?;
            steps += 1;
        }
        // Answer what the relay still waits for, so every request of ours can be answered.
        for _ in 0..4 {
            sleep(Duration::from_secs(5)).await;
            s.sync();
            let pending: Vec<_> = s.known.relays.clone();
            for (id, ty) in pending {
                if s.known.answered_relay.contains(&id) || s.closed() {
                    continue;
                }
                s.known.answered_relay.push(id);
                let err = moqlink_model::control::RequestError {
                    request_id: id,
                    error_code: 0,
                    reason: "fuzz peer".into(),
                };
                let m = match ty {
                    MessageType::Subscribe => ControlMessage::SubscribeError(err),
                    MessageType::Fetch => ControlMessage::FetchError(err),
                    MessageType::TrackStatus => ControlMessage::TrackStatusError(err),
                    MessageType::Publish => ControlMessage::PublishError(err),
                    MessageType::PublishNamespace => ControlMessage::PublishNamespaceError(err),
                    MessageType::SubscribeNamespace => ControlMessage::SubscribeNamespaceError(err),
                    _ => continue,
                };
                s.send_message(&m).await?;
            }
        }
        sleep(SETTLE).await;
        if debug() {
            let seen = lock(&seen);
            eprintln!(
                "ours {:?}\nrelay's {:?}\nanswers {:?}\nclosed {:?}\nmust_close {:?} {:?}",
                s.known.ours, seen.requests, seen.answers, seen.closed, s.must_close, s.expect_code
            );
        }
        if !lock(&seen).lite {
            check_answers(&s)?;
        }
    }
    // The client leaves: closes with a code, or vanishes.
    let vanish = leave >= 192;
    if vanish {
        drainer.abort();
        reader.abort();
    } else {
        client.close([0, 0, 1, 3][usize::from(leave % 4)], "fuzz peer leaves");
    }
    drop(s);
    drop(client);
    sleep(SETTLE).await;
    if !serving.is_finished() {
        return Err("the relay still serves a session whose client has gone".into());
    }
    let _ = serving.await;
    let _ = drainer.await;
    let _ = reader.await;
    let fault = lock(&seen).fault.take();
    if let Some(f) = fault {
        return Err(f);
    }
    let counts = relay.counts();
    if counts != Some(RelayCounts::default()) {
        return Err(format!(
            "the relay holds state after its only client left: {counts:?}"
        ));
    }
    drop(relay);
    sleep(SETTLE).await;
    let alive = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    if alive != 0 {
        return Err(format!(
            "{alive} tasks alive after the client left and the relay was dropped"
        ));
    }
    Ok(())
}

/// Every request the relay accepted is answered, once; a relay's close has a §13.1.1 code.
fn check_answers(s: &Script) -> Result<(), String> {
    let seen = lock(&s.seen);
    for (id, tys) in &seen.answers {
        let Some((_, asked)) = s.known.ours.iter().find(|(i, _)| i == id) else {
            return Err(format!(
                "relay answered Request ID {id}, which we never sent: {tys:?}"
            ));
        };
        if tys.len() > 1 || tys.iter().any(|t| peer::answers(*t) != Some(*asked)) {
            return Err(format!("{} {id} answered with {tys:?}", asked.name()));
        }
    }
    match &seen.closed {
        Some(ConnectionError::ClosedByPeer { code, reason }) => {
            if SessionErrorCode::from_code(*code).is_none() {
                return Err(format!(
                    "relay closed with undefined code 0x{code:x}: {reason}"
                ));
            }
            if let (Some(want), Some(why)) = (s.expect_code, &s.must_close) {
                if *code != want {
                    return Err(format!(
                        "relay closed with 0x{code:x} ({reason}) after {why}: expected 0x{want:x}"
                    ));
                }
            }
            Ok(())
        }
        Some(other) => Err(format!("the connection ended unexpectedly: {other}")),
        None => {
            if let Some(why) = &s.must_close {
                return Err(format!("the relay did not close the session after: {why}"));
            }
            for (id, ty) in &s.known.ours {
                if *ty != MessageType::SubscribeUpdate && !seen.answers.contains_key(id) {
                    return Err(format!("{} {id} never answered", ty.name()));
                }
            }
            Ok(())
        }
    }
}
