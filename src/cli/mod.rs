//! Subcommands of the `moqlink` binary.

pub mod bench;
pub mod common;
pub mod decode;
pub mod fetch;
pub mod lite;
pub mod publish;
pub mod relay;
pub mod sub;

/// Logs to stderr; `RUST_LOG` overrides the level.
pub fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a terminal: `2>file` and pipes get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
