//! `setup-only`: CLIENT_SETUP, SERVER_SETUP selecting a version we offered, clean close.

use super::{fail, Ctx, Verdict};
use crate::tap::Outcome;
use moqlink_model::SessionErrorCode;

/// Connects, checks the selected version, closes with NO_ERROR.
pub async fn setup_only(ctx: &Ctx) -> Verdict {
    let (session, _incoming, id) = match ctx.connect().await {
        Ok(s) => s,
        Err(e) => {
            return (
                fail("SERVER_SETUP", e.to_string(), "setup did not complete"),
                vec![],
            )
        }
    };
    let conns = vec![("connection_id", id)];
    let version = session.version();
    if !ctx.session.versions.contains(&version) {
        // Session::connect already refuses this; kept so the case states its own rule.
        return (
            fail(
                "a version we offered",
                version.to_string(),
                "SERVER_SETUP selected a version not offered",
            ),
            conns,
        );
    }
    tracing::info!(%version, "SERVER_SETUP received");
    session.close(SessionErrorCode::NoError, "");
    (Outcome::Pass, conns)
}
