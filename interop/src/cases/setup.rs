//! `setup-only`: CLIENT_SETUP, SERVER_SETUP selecting a version we offered, clean close.

use super::{CaseOutput, Ctx, Failure, Peer, Record};

/// Connects, checks the selected version, closes with NO_ERROR.
pub async fn setup_only(ctx: &Ctx, record: &Record) -> CaseOutput {
    let peer = Peer::connect(ctx, record, "connection_id").await?;
    let version = peer.session.version();
    if !ctx.session.versions.contains(&version) {
        // Session::connect already refuses this; kept so the case states its own rule.
        return Err(Failure::new(
            "a version we offered",
            version.to_string(),
            "SERVER_SETUP selected a version not offered",
        ));
    }
    tracing::info!(%version, "SERVER_SETUP received");
    record.step("a clean close");
    peer.close().await?;
    Ok(format!("SERVER_SETUP selected {version}"))
}
