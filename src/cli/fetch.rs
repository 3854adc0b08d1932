//! `moqlink fetch`: a standalone FETCH of a range of a track, printing each object's payload
//! as one line.

use super::common::{self, ConnectArgs, TrackArgs};
use anyhow::bail;
use clap::Args;
use moqlink_model::control::{FetchEnd, FetchKind};
use moqlink_model::data::ObjectStatus;
use moqlink_model::params::VersionParameters;
use moqlink_model::{GroupOrder, Location};

/// Arguments of `moqlink fetch`.
#[derive(Args, Debug)]
pub struct FetchArgs {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    track: TrackArgs,
    /// First object: `G` (start of group G) or `G/O`.
    #[arg(long, value_parser = common::parse_location)]
    start: Location,
    /// Last object: `G` (the whole group G) or `G/O` (through object O).
    #[arg(long, value_parser = common::parse_fetch_end)]
    end: FetchEnd,
    /// Subscriber priority (0 = most important).
    #[arg(long, default_value_t = 128)]
    priority: u8,
}

/// Runs `moqlink fetch`.
pub async fn run(args: FetchArgs) -> anyhow::Result<()> {
    let (session, events) = args.conn.connect().await?;
    let answering = common::answer_requests(session.clone(), events, None, Default::default());
    let outcome = fetch(&args, &session).await;
    answering.abort();
    common::close(&session).await;
    outcome
}

async fn fetch(args: &FetchArgs, session: &moqlink::AnySession) -> anyhow::Result<()> {
    let name = args.track.name();
    let kind = FetchKind::Standalone {
        namespace: name.namespace.clone(),
        name: name.name.clone(),
        start: args.start,
        end: args.end,
    };
    let mut response = session
        .fetch(
            kind,
            args.priority,
            GroupOrder::Original,
            VersionParameters::new(),
        )
        .await
        .map_err(|e| common::request_failed("FETCH", e))?;
    tracing::info!(
        track = %name,
        end_group = response.ok.end_location.group,
        end_object = ?response.ok.end_location.object,
        end_of_track = response.ok.end_of_track,
        "FETCH_OK"
    );
    let mut printed = 0u64;
    loop {
        match response.next().await {
            Ok(Some(o)) => {
                if o.status != ObjectStatus::Normal {
                    continue;
                }
                if let Err(e) = common::print_line(&o.payload.0) {
                    tracing::info!(error = %e, "stdout closed, cancelling the fetch");
                    let _ = response.cancel().await;
                    return Ok(());
                }
                printed += 1;
            }
            Ok(None) => break,
            Err(e) => {
                if let Some(close) = session.close_reason() {
                    bail!("fetch stream ended early ({e}): {close}");
                }
                bail!("fetch stream ended early: {e}");
            }
        }
    }
    tracing::info!(objects = printed, "fetch complete");
    Ok(())
}
