//! Churn against an in-process relay (issue 12): sessions cycle connect → SUBSCRIBE → receive
//! → leave, a quarter of them vanishing without a CONNECTION_CLOSE; afterwards the relay holds
//! no session, no subscription, no request, and runs no task beyond those it had before.
//!
//! The relay runs on its own runtime so that runtime's live task count is the relay's alone; a
//! counting allocator checks that the heap (relay and clients) comes back near where it was.
//! Vanished sessions end by the relay's QUIC idle timeout, set short here. No timing is
//! asserted: the test waits for the counts with a generous limit.

use moqlink::bench::churn::{self, ChurnOptions};
use moqlink::bench::conn::Dialer;
use moqlink::bench::Traffic;
use moqlink::relay::{LiveCounts, Relay, RelayConfig};
use moqlink_model::Version;
use moqlink_transport::session::SessionConfig;
use moqlink_transport::tls::{ClientTls, ServerIdentity};
use moqlink_transport::track::TrackName;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts the bytes allocated and not yet freed, process-wide.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sessions cycling at once.
const SESSIONS: usize = 50;
/// How long they cycle.
const CHURN: Duration = Duration::from_secs(15);
/// How long the relay may take to forget every session after the churn (idle timeout included).
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// (sessions, subscriptions, requests, relay tasks).
fn counts(live: &LiveCounts, rt: &tokio::runtime::Runtime) -> (usize, usize, usize, usize) {
    (
        live.sessions(),
        live.subscriptions(),
        live.requests(),
        rt.metrics().num_alive_tasks(),
    )
}

#[test]
fn after_churn_the_relay_holds_no_session_subscription_or_task() {
    let relay_rt = runtime();
    let mut config = RelayConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        drain: Duration::from_millis(300),
        ..Default::default()
    };
    config.session.versions = vec![Version::DRAFT_14];
    // Vanished peers are forgotten after this (the default is 30 s); live clients keep alive
    // every 4 s.
    config.server.connection.idle_timeout = Duration::from_secs(8);
    let relay = relay_rt
        .block_on(async { Relay::bind(config, &ServerIdentity::self_signed().unwrap()) })
        .unwrap();
    let live: Arc<LiveCounts> = relay.live();
    let addr = relay.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_task = relay_rt.spawn(relay.run(async {
        let _ = stopped.await;
    }));
    let before = counts(&live, &relay_rt);
    let heap_before = LIVE_BYTES.load(Ordering::Relaxed);
    assert_eq!(&[before.0, before.1, before.2], &[0, 0, 0]);

    let client_rt = runtime();
    let report = client_rt.block_on(async {
        let dialer = Dialer::new(
            &format!("moqt://127.0.0.1:{}", addr.port()),
            ClientTls::DisableVerify,
            SessionConfig::default(),
        )
        .unwrap();
        let traffic = Traffic {
            track: TrackName::new("churn", "t"),
            rate: 100.0,
            size: 512,
            group_len: 10,
        };
        let opts = ChurnOptions {
            sessions: SESSIONS,
            objects: 5,
            abrupt: 0.25,
            duration: CHURN,
            relay_pid: None,
            settle: vec![],
            progress: false,
            connect_parallel: 32,
        };
        churn::run(&dialer, &traffic, &opts).await.unwrap()
    });
    drop(client_rt);
    eprintln!(
        "churn: {} cycles, {} vanished, {} failed",
        report.cycles, report.abrupt, report.failed_sessions
    );
    // Sessions that fail (a step over the tool's 10 s limits on a loaded machine) are reported,
    // not asserted: what matters here is what the relay keeps afterwards.
    if report.failed_sessions > 0 {
        eprintln!("errors: {:?}", report.errors);
    }
    assert!(report.cycles >= SESSIONS as u64, "{} cycles", report.cycles);
    assert!(report.abrupt > 0 && report.abrupt_silent);

    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut now = counts(&live, &relay_rt);
    while now != (0, 0, 0, before.3) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        now = counts(&live, &relay_rt);
    }
    assert_eq!(
        now,
        (0, 0, 0, before.3),
        "(sessions, subscriptions, requests, relay tasks) left after the churn; before: {before:?}"
    );
    let heap_after = LIVE_BYTES.load(Ordering::Relaxed);
    eprintln!(
        "heap: {} KiB before the churn, {} KiB after ({} cycles)",
        heap_before / 1024,
        heap_after / 1024,
        report.cycles
    );
    // Nothing per session stays on the heap: a leak of a session's connection state (~10 KiB
    // and more) per cycle would pass this by far. Some growth is allowed for maps that keep
    // their capacity.
    let growth = (heap_after - heap_before).max(0) as u64;
    assert!(
        growth <= 512 * 1024 + 1024 * report.cycles,
        "heap grew by {} KiB over {} cycles",
        growth / 1024,
        report.cycles
    );
    let _ = stop.send(());
    relay_rt.block_on(relay_task).unwrap().unwrap();
}
