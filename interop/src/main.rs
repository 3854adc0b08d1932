//! `moqlink-interop`: the interop runner's test client (TAP 14 on stdout, logs on stderr).

use clap::Parser;
use moqlink_interop::cases::{self, Ctx, CASES};
use moqlink_interop::conformance;
use moqlink_interop::{report, tap};
use moqlink_transport::endpoint::{Client, ClientConfig};
use moqlink_transport::session::SessionConfig;
use moqlink_transport::tls::ClientTls;
use std::process::ExitCode;

/// MoQ interop runner test client (draft-14).
#[derive(Parser, Debug)]
#[command(name = "moqlink-interop", version, about)]
struct Args {
    /// Relay URL: https:// for WebTransport, moqt:// for raw QUIC.
    #[arg(
        short,
        long,
        env = "RELAY_URL",
        default_value = "https://localhost:4443"
    )]
    relay: String,
    /// Test case to run (default: all); with --conformance, check ids (comma-separated).
    #[arg(short, long, env = "TESTCASE")]
    test: Option<String>,
    /// List the test cases, one per line (with --conformance: id, group, sections and summary,
    /// tab-separated).
    #[arg(short, long)]
    list: bool,
    /// Run the draft-14 conformance suite instead of the runner's cases.
    #[arg(short, long)]
    conformance: bool,
    /// With --conformance: run only the checks of this group.
    #[arg(long, requires = "conformance")]
    group: Option<String>,
    /// With --conformance: a namespace prefix (fields separated by `/`, 2 or more) the relay
    /// protects and this client holds no credentials for; enables `namespace-subscription-leak`.
    #[arg(long, requires = "conformance")]
    protected_prefix: Option<String>,
    /// With --conformance: also count missed SHOULDs (TAP `# TODO SHOULD`) in the exit code.
    #[arg(long, requires = "conformance")]
    strict: bool,
    /// With --conformance: the output format on stdout: TAP 14, JSON, JUnit XML, or a Markdown
    /// report grouped by draft section.
    #[arg(long, value_enum, default_value = "tap", requires = "conformance")]
    format: Format,
    /// With --protected-prefix: a token (AUTHORIZATION TOKEN, type 0) allowed to publish under
    /// the prefix, so the relay carries something there to leak.
    #[arg(long, requires = "protected_prefix")]
    publish_token: Option<String>,
    /// Log at debug level on stderr.
    #[arg(short, long, env = "VERBOSE", value_parser = truthy, default_value = "false", num_args = 0..=1, default_missing_value = "true")]
    verbose: bool,
    /// Accept any server certificate.
    #[arg(long, env = "TLS_DISABLE_VERIFY", value_parser = truthy, default_value = "false", num_args = 0..=1, default_missing_value = "true")]
    tls_disable_verify: bool,
}

/// How `--conformance` prints its results.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// TAP version 14 (a missed SHOULD is `not ok ... # TODO SHOULD: ...`).
    Tap,
    /// One JSON document.
    Json,
    /// JUnit XML, one test suite per group.
    Junit,
    /// Markdown, one table per draft section.
    Markdown,
}

fn truthy(s: &str) -> Result<bool, String> {
    Ok(matches!(s, "1" | "true" | "yes" | "on"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.conformance {
        return conformance_main(&args);
    }
    if args.list {
        for c in CASES {
            println!("{}", c.id);
        }
        return ExitCode::SUCCESS;
    }
    if let Ok(role) = std::env::var("MOQT_ROLE") {
        if role != "client" {
            eprintln!("error: MOQT_ROLE={role} is not supported by moqlink-interop");
            return ExitCode::from(127);
        }
    }
    init_logs(args.verbose);
    let selected: Vec<_> = match &args.test {
        Some(t) => match cases::find(t) {
            Some(c) if c.implemented => vec![c],
            _ => {
                eprintln!("error: test case {t:?} is not supported");
                return ExitCode::from(127);
            }
        },
        None => CASES.iter().collect(),
    };
    let (ctx, rt) = match setup(&args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let results = rt.block_on(async {
        let mut out = Vec::new();
        for c in &selected {
            out.push(cases::run(c, &ctx).await);
        }
        // Let the last CONNECTION_CLOSE frames leave before the runtime stops; a relay that
        // never hears them keeps the namespaces of those sessions until its idle timeout.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        out
    });
    let comments = vec![
        format!("moqlink-interop v{}", env!("CARGO_PKG_VERSION")),
        format!("Relay: {}", args.relay),
        "Draft: draft-ietf-moq-transport-14".to_string(),
    ];
    print!("{}", tap::render(&comments, &results));
    if results.iter().any(|r| r.failed()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn init_logs(verbose: bool) {
    let filter = if verbose { "debug" } else { "info" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        // Colour only for a terminal: `2>file` and pipes get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The client context and the runtime; a failure has already printed `Bail out!`.
fn setup(args: &Args) -> Result<(Ctx, tokio::runtime::Runtime), ExitCode> {
    let tls = if args.tls_disable_verify {
        ClientTls::DisableVerify
    } else {
        ClientTls::default()
    };
    let client = match Client::new(ClientConfig {
        tls,
        ..Default::default()
    }) {
        Ok(c) => c,
        Err(e) => {
            println!("TAP version 14\nBail out! {e}");
            return Err(ExitCode::from(1));
        }
    };
    let ctx = Ctx {
        relay: args.relay.clone(),
        client,
        session: SessionConfig::default(),
    };
    match tokio::runtime::Runtime::new() {
        Ok(rt) => Ok((ctx, rt)),
        Err(e) => {
            println!("TAP version 14\nBail out! {e}");
            Err(ExitCode::from(1))
        }
    }
}

/// `--conformance`: the draft-14 conformance suite against the relay.
fn conformance_main(args: &Args) -> ExitCode {
    let selected = match conformance::select(args.test.as_deref(), args.group.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(127);
        }
    };
    if args.list {
        for c in selected {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                c.id, c.group, c.level, c.section, c.summary, c.quote
            );
        }
        return ExitCode::SUCCESS;
    }
    init_logs(args.verbose);
    let (ctx, rt) = match setup(args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if let Some(prefix) = &args.protected_prefix {
        conformance::robustness::set_protected(
            &args.relay,
            conformance::robustness::Protected {
                prefix: moqlink_model::TrackNamespace::from_path(prefix),
                publish_token: args.publish_token.clone(),
            },
        );
    }
    let run = conformance::run_id();
    let results = rt.block_on(async {
        let mut out = Vec::new();
        for c in &selected {
            out.push(conformance::run(c, &ctx, &run).await);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        out
    });
    let meta = vec![
        (
            "tool",
            format!(
                "moqlink-interop v{} conformance suite",
                env!("CARGO_PKG_VERSION")
            ),
        ),
        ("relay", args.relay.clone()),
        (
            "draft",
            "draft-ietf-moq-transport-14 (0xff00000e)".to_string(),
        ),
        ("namespaces", format!("moq-conformance/{run}/<check>")),
    ];
    let out = match args.format {
        Format::Tap => {
            let comments: Vec<String> = meta
                .iter()
                .map(|(k, v)| match *k {
                    "tool" => v.clone(),
                    k => format!("{}{}: {v}", k[..1].to_uppercase(), &k[1..]),
                })
                .collect();
            tap::render(&comments, &results)
        }
        Format::Json => report::json(&meta, &results),
        Format::Junit => report::junit("moqlink-interop conformance", &results, args.strict),
        Format::Markdown => report::markdown("Conformance report", &meta, &results),
    };
    print!("{out}");
    if report::Tally::of(&results).failed(args.strict) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
