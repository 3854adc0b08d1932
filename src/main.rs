//! The `moqlink` command line.

mod cli;

/// jemalloc returns freed memory to the system: after a churn, glibc's malloc kept the relay at
/// 143 MiB and mimalloc at 216 MiB where jemalloc came back to 32 MiB (bench/NOTES-issue12.md).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc settings: a background thread purges freed pages after 1 s (MADV_DONTNEED, so
/// RSS falls); no thread caches: with them the relay stayed at 33.7 MiB after a churn that peaked
/// at 173 MiB, without them at 18.2 MiB, at no measurable CPU cost per delivered object
/// (bench/NOTES-issue12.md).
#[cfg(feature = "jemalloc")]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 73] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,tcache:false\0";

use clap::{Parser, Subcommand};
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

/// moqlink: MoQ Transport draft-14 (and moq-lite) interop toolkit.
#[derive(Parser)]
#[command(name = "moqlink", version, about)]
struct Cli {
    /// Log at debug level (RUST_LOG overrides).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode MoQ wire bytes (hex) into JSON, reporting the broken rule and close code on error.
    Decode(cli::decode::DecodeArgs),
    /// Run the relay (WebTransport and raw QUIC on one UDP port).
    Relay(cli::relay::RelayArgs),
    /// Publish stdin as a track: each line is one object.
    #[command(name = "pub", alias = "publish")]
    Pub(cli::publish::PubArgs),
    /// Subscribe to a track and print each object's payload as one line.
    #[command(alias = "subscribe")]
    Sub(cli::sub::SubArgs),
    /// FETCH a range of a track and print each object's payload as one line.
    Fetch(cli::fetch::FetchArgs),
    /// Load a relay: one publisher, N subscriber sessions; delivery, latency, relay CPU and RSS.
    Bench(cli::bench::BenchArgs),
}

/// Runs `fut` on a fresh runtime; errors go to stderr with exit code 1.
fn run_async(verbose: bool, fut: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    cli::init_logging(verbose);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(fut);
    // Do not wait for stragglers (e.g. a stdin read still blocked).
    rt.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => cli::decode::run(args),
        Command::Relay(args) => {
            let file = match cli::relay::load_file(&args) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            };
            if let (Some(level), Err(_)) = (&file.log_level, std::env::var("RUST_LOG")) {
                std::env::set_var("RUST_LOG", level);
            }
            run_async(cli.verbose, cli::relay::run(args, file))
        }
        Command::Pub(args) => run_async(cli.verbose, cli::publish::run(args)),
        Command::Sub(args) => run_async(cli.verbose, cli::sub::run(args)),
        Command::Fetch(args) => run_async(cli.verbose, cli::fetch::run(args)),
        Command::Bench(args) => {
            // Thousands of sessions: per-session logs only when asked for.
            if std::env::var("RUST_LOG").is_err() && !cli.verbose {
                std::env::set_var("RUST_LOG", "warn");
            }
            run_async(cli.verbose, cli::bench::run(args))
        }
    }
}
