//! Steady load: one publisher, N subscribers reading the same track (M of them stalled: they
//! keep their connection but never read), measured over a window after a warm-up.

use super::conn::Dialer;
use super::stats::{self, Latency, ProcSample};
use super::{read, subscriber_track, Meter, Publisher, Traffic};
use moqlink_transport::session::SubscribeOptions;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How many sessions connect at once.
const CONNECT_PARALLEL: usize = 16;
/// How long objects stamped inside the window may take to arrive after it closes.
const GRACE: Duration = Duration::from_secs(1);
/// The span the RSS slope is computed over (the end of the window).
const SLOPE_SPAN: f64 = 30.0;

/// A steady-load run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Subscriber sessions, stalled ones included.
    pub subscribers: usize,
    /// Of them, sessions that never read their data streams.
    pub stalled: usize,
    /// Time between the last subscription and the measuring window.
    pub warmup: Duration,
    /// The measuring window.
    pub duration: Duration,
    /// The relay's process, when on this host.
    pub relay_pid: Option<u32>,
    /// Print a progress line on stderr every second.
    pub progress: bool,
}

/// What a steady-load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Subscriber sessions.
    pub subscribers: usize,
    /// Of them, stalled.
    pub stalled: usize,
    /// Sessions that failed to connect or subscribe.
    pub failed_sessions: usize,
    /// The measuring window, seconds.
    pub window_s: f64,
    /// Objects published in the window.
    pub sent: u64,
    /// Objects the reading subscribers received of those.
    pub received: u64,
    /// received / (sent × readers), percent.
    pub delivered_pct: f64,
    /// Publish-to-deliver latency of the readers.
    pub latency: Latency,
    /// The relay's measurements, with `--relay-pid`.
    pub relay: Option<RelayUsage>,
    /// First errors seen.
    pub errors: Vec<String>,
}

/// The relay's CPU and memory over a run.
#[derive(Debug, Clone, Serialize)]
pub struct RelayUsage {
    /// Relay CPU (user + system) per delivered object, µs.
    pub cpu_us_per_object: f64,
    /// Relay CPU over the window, percent of one core.
    pub cpu_pct: f64,
    /// RSS before any bench session, KiB.
    pub rss_idle_kib: u64,
    /// RSS at the end of the window, KiB.
    pub rss_end_kib: u64,
    /// (end - idle) / subscribers, KB.
    pub rss_per_subscriber_kb: f64,
    /// RSS slope over the last 30 s of the window, KiB/s.
    pub rss_slope_kib_s: f64,
    /// RSS once a second over the window: (seconds into it, KiB).
    pub rss_series: Vec<(u32, u64)>,
}

/// Keeps the first few errors.
#[derive(Clone, Default)]
pub(crate) struct Errors(Arc<Mutex<Vec<String>>>);

impl Errors {
    pub(crate) fn push(&self, e: impl std::fmt::Display) {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() < 10 {
            v.push(e.to_string());
        }
    }
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Reports whether a subscriber got going (and why not) and hands back what it holds.
async fn started<T>(
    r: anyhow::Result<T>,
    ready: &tokio::sync::mpsc::Sender<bool>,
    errors: &Errors,
    what: &str,
) -> Option<T> {
    match r {
        Ok(v) => {
            let _ = ready.send(true).await;
            Some(v)
        }
        Err(e) => {
            errors.push(format!("{what}: {e:#}"));
            let _ = ready.send(false).await;
            None
        }
    }
}

/// Runs steady load against the relay `dialer` reaches.
pub async fn run(
    dialer: &Dialer,
    traffic: &Traffic,
    opts: &LoadOptions,
) -> anyhow::Result<LoadReport> {
    if dialer.is_lite() && opts.stalled > 0 {
        anyhow::bail!("--stall is draft-14 only");
    }
    let idle = opts.relay_pid.and_then(stats::sample);
    let meter = Meter::new();
    let publisher = Publisher::start(dialer, traffic, meter.clone()).await?;
    let errors = Errors::default();
    let readers = opts.subscribers - opts.stalled.min(opts.subscribers);
    let mut sessions = JoinSet::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_PARALLEL));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<bool>(opts.subscribers.max(1));
    for i in 0..opts.subscribers {
        let stalled = i >= readers;
        let (dialer, name, meter, gate, ready, errors) = (
            dialer.clone(),
            traffic.track.clone(),
            meter.clone(),
            gate.clone(),
            ready_tx.clone(),
            errors.clone(),
        );
        sessions.spawn(async move {
            let permit = gate.acquire_owned().await;
            let opts = SubscribeOptions {
                track: subscriber_track(),
                ..Default::default()
            };
            if stalled {
                let r = async {
                    let (s, events) = dialer.stalled_session().await?;
                    let sub = s.subscribe(name, opts).await?;
                    anyhow::Ok((s, sub, events))
                }
                .await;
                drop(permit);
                if let Some((s, sub, _events)) =
                    started(r, &ready, &errors, "stalled subscriber").await
                {
                    s.closed().await;
                    drop(sub);
                }
                return;
            }
            if dialer.is_lite() {
                let r = async {
                    let (s, events) = dialer.lite_session().await?;
                    let path = moqlink_transport::lite::path_of(&name.namespace);
                    let sub = s
                        .subscribe(&path, &name.name, 128, subscriber_track())
                        .await
                        .map_err(|e| anyhow::anyhow!("SUBSCRIBE: {e}"))?;
                    anyhow::Ok((s, sub, events))
                }
                .await;
                drop(permit);
                if let Some((s, sub, _events)) = started(r, &ready, &errors, "subscriber").await {
                    read(sub.track().consume(Default::default(), None), meter, None).await;
                    drop(sub);
                    drop(s);
                }
                return;
            }
            let r = async {
                let (s, events, _) = dialer.session().await?;
                let sub = s.subscribe(name, opts).await?;
                anyhow::Ok((s, sub, events))
            }
            .await;
            drop(permit);
            if let Some((s, sub, _events)) = started(r, &ready, &errors, "subscriber").await {
                read(sub.consumer(), meter, None).await;
                drop(s);
            }
        });
    }
    drop(ready_tx);
    let mut failed = 0;
    for _ in 0..opts.subscribers {
        match ready_rx.recv().await {
            Some(true) => {}
            _ => failed += 1,
        }
    }
    tokio::time::sleep(opts.warmup).await;
    meter.open_window();
    let start = Instant::now();
    let at_start = opts.relay_pid.and_then(stats::sample);
    let mut rss_points = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while start.elapsed() < opts.duration {
        tick.tick().await;
        let t = start.elapsed().as_secs_f64();
        let s = opts.relay_pid.and_then(stats::sample);
        if let Some(s) = s {
            rss_points.push((t, s.rss_kib as f64));
        }
        if opts.progress {
            progress(t, &meter, s, readers);
        }
    }
    meter.close_window();
    let at_end = opts.relay_pid.and_then(stats::sample);
    let window = start.elapsed().as_secs_f64();
    tokio::time::sleep(GRACE).await;
    if opts.progress {
        eprintln!();
    }
    let sent = meter.sent_in_window.load(Ordering::Relaxed);
    let received = meter.received_in_window.load(Ordering::Relaxed);
    let expected = sent * (readers.saturating_sub(failed)) as u64;
    let relay = match (idle, at_start, at_end) {
        (Some(idle), Some(a), Some(b)) => Some(usage(
            idle,
            a,
            b,
            window,
            received,
            opts.subscribers,
            &rss_points,
        )),
        _ => None,
    };
    sessions.abort_all();
    while sessions.join_next().await.is_some() {}
    publisher.stop().await;
    Ok(LoadReport {
        subscribers: opts.subscribers,
        stalled: opts.stalled,
        failed_sessions: failed,
        window_s: window,
        sent,
        received,
        delivered_pct: if expected == 0 {
            0.0
        } else {
            100.0 * received as f64 / expected as f64
        },
        latency: meter.latency.summary(),
        relay,
        errors: errors.take(),
    })
}

fn usage(
    idle: ProcSample,
    a: ProcSample,
    b: ProcSample,
    window: f64,
    received: u64,
    subscribers: usize,
    rss_points: &[(f64, f64)],
) -> RelayUsage {
    let cpu = b.cpu_us.saturating_sub(a.cpu_us) as f64;
    let last = rss_points.last().map_or(0.0, |p| p.0);
    let tail: Vec<_> = rss_points
        .iter()
        .copied()
        .filter(|p| p.0 >= last - SLOPE_SPAN)
        .collect();
    RelayUsage {
        cpu_us_per_object: if received == 0 {
            0.0
        } else {
            cpu / received as f64
        },
        cpu_pct: 100.0 * cpu / (window * 1e6),
        rss_idle_kib: idle.rss_kib,
        rss_end_kib: b.rss_kib,
        rss_per_subscriber_kb: (b.rss_kib as f64 - idle.rss_kib as f64) * 1.024
            / subscribers.max(1) as f64,
        rss_slope_kib_s: stats::slope(&tail),
        rss_series: rss_points
            .iter()
            .map(|&(t, k)| (t.round() as u32, k as u64))
            .collect(),
    }
}

/// One progress line on stderr (overwritten in place).
pub(crate) fn progress(t: f64, meter: &Meter, relay: Option<ProcSample>, sessions: usize) {
    let rss = relay.map_or(String::new(), |s| format!(" relay_rss={} KiB", s.rss_kib));
    eprint!(
        "\r t={t:5.0}s sent={} received={} sessions={sessions} p99={:.1}ms{rss}   ",
        meter.sent.load(Ordering::Relaxed),
        meter.received.load(Ordering::Relaxed),
        meter.latency.quantile(0.99) as f64 / 1000.0,
    );
}
