//! The `moqlink` command line: wire decoding today; relay, pub, sub and fetch as they land.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// moqlink: MoQ Transport draft-14 (and moq-lite) interop toolkit.
#[derive(Parser)]
#[command(name = "moqlink", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode MoQ wire bytes (hex) into JSON, reporting the broken rule and close code on error.
    Decode(cli::decode::DecodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => cli::decode::run(args),
    }
}
