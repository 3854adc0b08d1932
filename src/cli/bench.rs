//! `moqlink bench`: load a relay with one publisher and N subscriber sessions, and report
//! delivery, latency and (given its PID) the relay's CPU and memory.

use super::common::ConnectArgs;
use clap::Args;
use moqlink::bench::churn::{self, ChurnOptions};
use moqlink::bench::conn::Dialer;
use moqlink::bench::load::{self, LoadOptions};
use moqlink::bench::Traffic;
use moqlink_transport::track::TrackName;
use std::time::Duration;

/// Arguments of `moqlink bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    conn: ConnectArgs,
    /// Track namespace, fields separated by `/`.
    #[arg(long, default_value = "moqlink-bench")]
    namespace: String,
    /// Track name.
    #[arg(long, default_value = "load")]
    track: String,
    /// Subscriber sessions (one connection each); with --churn, sessions cycling at once.
    #[arg(short = 'n', long, default_value_t = 100)]
    subscribers: usize,
    /// Objects per second.
    #[arg(long, default_value_t = 30.0)]
    rate: f64,
    /// Bytes per object (the first 8 carry the send time).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(8..=16_000_000))]
    size: u64,
    /// Objects per group.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    group_len: u64,
    /// Seconds measured (with --churn: seconds of churn).
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Seconds between the last subscription and the measuring window.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The relay's process ID (same host): report its CPU per delivered object and its RSS.
    #[arg(long)]
    relay_pid: Option<u32>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Churn: sessions cycle connect → subscribe → receive --objects → disconnect.
    #[arg(long)]
    churn: bool,
    /// With --churn: objects each session receives before leaving.
    #[arg(long, default_value_t = 10)]
    objects: u64,
    /// With --churn: fraction of sessions that vanish without a close.
    #[arg(long, default_value_t = 0.25)]
    abrupt: f64,
    /// With --churn: seconds after the churn at which to sample the relay's RSS (comma list).
    #[arg(long, value_delimiter = ',', default_value = "15")]
    settle: Vec<u64>,
    /// With --churn: connections (handshake and SETUP) in progress at once.
    #[arg(long, default_value_t = 32)]
    connect_parallel: usize,
    /// This many of the subscribers keep their connection open but never read.
    #[arg(long, default_value_t = 0)]
    stall: usize,
    /// QUIC connection receive window of the stalled subscribers, bytes (raw QUIC; default
    /// 16 MiB): smaller makes flow control hold the relay sooner.
    #[arg(long, value_name = "BYTES")]
    stall_window: Option<u64>,
}

/// Runs `moqlink bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let dialer = Dialer::new(
        &args.conn.url,
        args.conn.tls(),
        args.conn.session_config(args.conn.versions.clone()),
    )?
    .with_stall_window(args.stall_window);
    let traffic = Traffic {
        track: TrackName::new(&args.namespace, &args.track),
        rate: args.rate,
        size: args.size as usize,
        group_len: args.group_len,
    };
    let progress = !args.json || std::io::IsTerminal::is_terminal(&std::io::stderr());
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    if args.churn {
        let opts = ChurnOptions {
            sessions: args.subscribers,
            objects: args.objects,
            abrupt: args.abrupt.clamp(0.0, 1.0),
            duration: secs(args.duration),
            relay_pid: args.relay_pid,
            settle: args
                .settle
                .iter()
                .map(|&s| Duration::from_secs(s))
                .collect(),
            progress,
            connect_parallel: args.connect_parallel,
        };
        let r = churn::run(&dialer, &traffic, &opts).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(());
        }
        println!(
            "churn: {} sessions at once, {} cycles ({} vanished, {}), {} failed sessions",
            r.sessions,
            r.cycles,
            r.abrupt,
            if r.abrupt_silent {
                "no CONNECTION_CLOSE"
            } else {
                "closed with INTERNAL_ERROR"
            },
            r.failed_sessions
        );
        println!(
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            r.latency.p50_ms, r.latency.p90_ms, r.latency.p99_ms, r.latency.max_ms
        );
        if let Some(m) = &r.relay {
            let after: Vec<String> = m
                .rss_after_kib
                .iter()
                .map(|(s, k)| format!("{} KiB {s} s after", k))
                .collect();
            println!(
                "relay RSS: {} KiB before, {} KiB peak, {}",
                m.rss_before_kib,
                m.rss_peak_kib,
                after.join(", ")
            );
        }
        for e in &r.errors {
            println!("error: {e}");
        }
        return Ok(());
    }
    let opts = LoadOptions {
        subscribers: args.subscribers,
        stalled: args.stall.min(args.subscribers),
        warmup: secs(args.warmup),
        duration: secs(args.duration),
        relay_pid: args.relay_pid,
        progress,
    };
    let r = load::run(&dialer, &traffic, &opts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "{} subscribers ({} stalled, {} failed): {:.2}% delivered ({} received of {} sent × {} readers) over {:.1} s",
        r.subscribers,
        r.stalled,
        r.failed_sessions,
        r.delivered_pct,
        r.received,
        r.sent,
        r.subscribers - r.stalled - r.failed_sessions.min(r.subscribers - r.stalled),
        r.window_s
    );
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        r.latency.p50_ms, r.latency.p90_ms, r.latency.p99_ms, r.latency.max_ms
    );
    if let Some(u) = &r.relay {
        println!(
            "relay: {:.1} µs CPU per delivered object ({:.0}% of a core), RSS {} → {} KiB ({:.0} KB per subscriber), slope {:.1} KiB/s over the last 30 s",
            u.cpu_us_per_object, u.cpu_pct, u.rss_idle_kib, u.rss_end_kib, u.rss_per_subscriber_kb, u.rss_slope_kib_s
        );
    }
    for e in &r.errors {
        println!("error: {e}");
    }
    Ok(())
}
