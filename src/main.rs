//! The `moqlink` command line.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => cli::decode::run(args),
        Command::Relay(args) => {
            cli::init_logging(cli.verbose);
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: starting the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            match rt.block_on(cli::relay::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
