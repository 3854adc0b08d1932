//! Churn: sessions that cycle connect → subscribe → receive K objects → disconnect, a fraction
//! of them vanishing without a close, while the relay's memory is watched.

use super::conn::{Dialer, Vanish};
use super::load::{progress, Errors};
use super::stats::{self, Latency};
use super::{read, subscriber_track, Meter, Publisher, Traffic};
use moqlink_model::SessionErrorCode;
use moqlink_transport::session::SubscribeOptions;
use moqlink_transport::track::TrackName;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How long one step of a cycle (connect, subscribe, receiving the objects) may take.
const STEP: Duration = Duration::from_secs(10);

/// A churn run.
#[derive(Debug, Clone)]
pub struct ChurnOptions {
    /// Sessions cycling at once.
    pub sessions: usize,
    /// Objects each session receives before it leaves.
    pub objects: u64,
    /// Fraction of sessions that vanish (no CONNECTION_CLOSE on raw QUIC; elsewhere a close
    /// with INTERNAL_ERROR).
    pub abrupt: f64,
    /// How long sessions keep cycling.
    pub duration: Duration,
    /// The relay's process, when on this host.
    pub relay_pid: Option<u32>,
    /// When to sample the relay's RSS after the churn ends.
    pub settle: Vec<Duration>,
    /// Print a progress line on stderr every second.
    pub progress: bool,
    /// Connections (handshake and SETUP) in progress at once; relays refuse handshakes beyond
    /// their own limit (moqlink: 64).
    pub connect_parallel: usize,
}

/// What a churn run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnReport {
    /// Sessions cycling at once.
    pub sessions: usize,
    /// Cycles completed (received every object, then left).
    pub cycles: u64,
    /// Of them, sessions that vanished on purpose.
    pub abrupt: u64,
    /// Whether vanishing sent no CONNECTION_CLOSE (raw QUIC) or closed with an error code.
    pub abrupt_silent: bool,
    /// Sessions that failed before their objects arrived (connect, SETUP, SUBSCRIBE, receive).
    pub failed_sessions: u64,
    /// Latency of every object received.
    pub latency: Latency,
    /// Relay RSS, with `--relay-pid`.
    pub relay: Option<ChurnMemory>,
    /// First errors seen.
    pub errors: Vec<String>,
}

/// The relay's resident memory around a churn.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnMemory {
    /// Before the churn (publisher connected), KiB.
    pub rss_before_kib: u64,
    /// Largest during the churn, KiB.
    pub rss_peak_kib: u64,
    /// After the churn: (seconds after its end, KiB).
    pub rss_after_kib: Vec<(u64, u64)>,
}

/// Whether cycle `cycle` of worker `worker` vanishes: a fixed pseudo-random pick, so runs are
/// repeatable.
fn vanishes(worker: usize, cycle: u64, fraction: f64) -> bool {
    let mut x = (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ cycle.wrapping_add(1);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x % 10_000) < (fraction * 10_000.0) as u64
}

/// Runs a churn against the relay `dialer` reaches.
pub async fn run(
    dialer: &Dialer,
    traffic: &Traffic,
    opts: &ChurnOptions,
) -> anyhow::Result<ChurnReport> {
    if dialer.is_lite() {
        anyhow::bail!("--churn is draft-14 only");
    }
    let meter = Meter::new();
    meter.open_window();
    let publisher = Publisher::start(dialer, traffic, meter.clone()).await?;
    // Let the relay settle with the publisher alone before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = opts.relay_pid.and_then(stats::sample);
    let cycles = Arc::new(AtomicU64::new(0));
    let abrupt = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let errors = Errors::default();
    let deadline = Instant::now() + opts.duration;
    let mut workers = JoinSet::new();
    let mut silent = true;
    let gate = Arc::new(tokio::sync::Semaphore::new(opts.connect_parallel.max(1)));
    for w in 0..opts.sessions {
        let (dialer, name, meter) = (dialer.clone(), traffic.track.clone(), meter.clone());
        let (cycles, abrupt, failed, errors) = (
            cycles.clone(),
            abrupt.clone(),
            failed.clone(),
            errors.clone(),
        );
        let (objects, fraction, gate) = (opts.objects, opts.abrupt, gate.clone());
        workers.spawn(async move {
            let mut c = 0u64;
            let mut silent = true;
            while Instant::now() < deadline {
                let cut = vanishes(w, c, fraction);
                match cycle(&dialer, &gate, &name, objects, cut, &meter).await {
                    Ok(s) => {
                        cycles.fetch_add(1, Ordering::Relaxed);
                        if cut {
                            abrupt.fetch_add(1, Ordering::Relaxed);
                            silent &= s;
                        }
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        errors.push(format!("{e:#}"));
                        // A relay refusing us is not hammered in a tight loop.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                c += 1;
            }
            silent
        });
        // Spread the first connections over the first second.
        if opts.sessions > 1 {
            tokio::time::sleep(Duration::from_secs(1) / opts.sessions as u32).await;
        }
    }
    let started = Instant::now();
    let mut peak = before.map_or(0, |s| s.rss_kib);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut n = 0u64;
    while !workers.is_empty() {
        tokio::select! {
            done = workers.join_next() => {
                if let Some(Ok(s)) = done { silent &= s; }
            }
            _ = tick.tick() => {
                let s = opts.relay_pid.and_then(stats::sample);
                if let Some(s) = s { peak = peak.max(s.rss_kib); }
                n += 1;
                if opts.progress && n % 2 == 0 {
                    progress(started.elapsed().as_secs_f64(), &meter, s, opts.sessions);
                    eprint!("cycles={} failed={}  ", cycles.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
                }
            }
        }
    }
    if opts.progress {
        eprintln!();
    }
    let ended = Instant::now();
    let mut after = Vec::new();
    for &d in &opts.settle {
        let at = ended + d;
        while Instant::now() < at {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Some(s) = opts.relay_pid.and_then(stats::sample) {
                peak = peak.max(s.rss_kib);
            }
        }
        if let Some(s) = opts.relay_pid.and_then(stats::sample) {
            after.push((d.as_secs(), s.rss_kib));
        }
    }
    publisher.stop().await;
    Ok(ChurnReport {
        sessions: opts.sessions,
        cycles: cycles.load(Ordering::Relaxed),
        abrupt: abrupt.load(Ordering::Relaxed),
        abrupt_silent: silent,
        failed_sessions: failed.load(Ordering::Relaxed),
        latency: meter.latency.summary(),
        relay: before.map(|b| ChurnMemory {
            rss_before_kib: b.rss_kib,
            rss_peak_kib: peak,
            rss_after_kib: after,
        }),
        errors: errors.take(),
    })
}

/// One cycle: connect, subscribe, receive `objects`, leave (vanishing when `cut`). Returns
/// whether a vanish was silent.
async fn cycle(
    dialer: &Dialer,
    gate: &tokio::sync::Semaphore,
    name: &TrackName,
    objects: u64,
    cut: bool,
    meter: &Arc<Meter>,
) -> anyhow::Result<bool> {
    let permit = gate.acquire().await?;
    let (session, _events, vanish) = dialer.session().await?;
    drop(permit);
    let result = async {
        let opts = SubscribeOptions {
            track: subscriber_track(),
            ..Default::default()
        };
        let sub = tokio::time::timeout(STEP, session.subscribe(name.clone(), opts))
            .await
            .map_err(|_| anyhow::anyhow!("SUBSCRIBE timed out"))??;
        let got = tokio::time::timeout(STEP, read(sub.consumer(), meter.clone(), Some(objects)))
            .await
            .map_err(|_| anyhow::anyhow!("{objects} objects did not arrive in {STEP:?}"))?;
        if got < objects {
            let why = match (sub.publish_done(), session.close_reason()) {
                (Some(d), _) => format!(
                    "PUBLISH_DONE 0x{:x} {:?}",
                    d.status_code,
                    d.reason.to_string()
                ),
                (None, Some(c)) => format!("session closed: {c}"),
                (None, None) => "no PUBLISH_DONE".into(),
            };
            anyhow::bail!("track ended after {got} of {objects} objects: {why}");
        }
        anyhow::Ok(sub)
    }
    .await;
    match result {
        Ok(sub) if cut => {
            leave_abruptly(&session, &vanish);
            drop(sub);
            Ok(vanish.is_silent())
        }
        Ok(sub) => {
            sub.unsubscribe().await;
            session
                .close_gracefully(SessionErrorCode::NoError, "", Duration::from_millis(500))
                .await;
            Ok(false)
        }
        Err(e) => {
            session.close(SessionErrorCode::NoError, "");
            Err(e)
        }
    }
}

/// Vanishes: on raw QUIC the socket goes silent first, so the close never leaves.
fn leave_abruptly<C: moqlink_transport::Connection>(
    session: &moqlink_transport::session::Session<C>,
    vanish: &Vanish,
) {
    vanish.now();
    session.close(SessionErrorCode::InternalError, "bench: abrupt");
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_vanishing_fraction_is_kept() {
        let n = (0..4000)
            .filter(|&i| super::vanishes(i % 40, i as u64 / 40, 0.25))
            .count();
        assert!((800..1200).contains(&n), "{n}");
    }
}
