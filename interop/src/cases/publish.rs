//! The PUBLISH cases: `publish-track-only` and `publish-track-subscribe` (track
//! `moq-test/publish` / `published-track`).

use super::control::close_both;
use super::data::{collect, Got};
use super::{describe_error, publish_done_name, within, CaseOutput, Ctx, Failure, Peer, Record};
use bytes::Bytes;
use moqlink_model::codes::PublishDoneCode;
use moqlink_model::control::PublishDone;
use moqlink_model::params::VersionParameters;
use moqlink_transport::session::{Publication, SubscribeOptions};
use moqlink_transport::track::{
    Object, SubgroupInfo, TrackConfig, TrackEnd, TrackName, TrackProducer,
};
use std::time::Duration;

/// The track both PUBLISH cases use.
fn published_track() -> TrackName {
    TrackName::new("moq-test/publish", "published-track")
}

/// Publisher priority of the object written.
const PRIORITY: u8 = 128;

/// Sends PUBLISH for `track` and requires PUBLISH_OK.
async fn publish(
    peer: &Peer,
    record: &Record,
    track: &TrackProducer,
) -> Result<Publication, Failure> {
    record.step("PUBLISH_OK");
    let answer = within(
        Duration::from_secs(3),
        "PUBLISH_OK",
        peer.session.publish(track, true, VersionParameters::new()),
    )
    .await?;
    answer.map_err(|e| {
        Failure::new(
            "PUBLISH_OK",
            describe_error(&e),
            format!("the relay did not accept PUBLISH {}", track.name()),
        )
    })
}

/// Writes group 0, subgroup 0, object 0 with `payload` and ends the subgroup.
fn write_one(track: &TrackProducer, payload: &'static str) -> Result<(), Failure> {
    let mut sg = track.create_subgroup(SubgroupInfo::new(0, 0, PRIORITY));
    sg.write(Object::new(0, Bytes::from_static(payload.as_bytes())))
        .map_err(|e| Failure::new("object 0.0 written", e.to_string(), "local track refused"))?;
    sg.finish();
    Ok(())
}

/// Ends the track with TRACK_ENDED so PUBLISH_DONE goes out, and waits until it did.
async fn end_track(
    publication: &Publication,
    track: &TrackProducer,
    record: &Record,
) -> Result<PublishDone, Failure> {
    track.finish(TrackEnd {
        status: PublishDoneCode::TrackEnded,
        reason: "track ended".into(),
    });
    record.step("PUBLISH_DONE to go out");
    match within(
        Duration::from_secs(3),
        "PUBLISH_DONE sent",
        publication.done(),
    )
    .await?
    {
        Some(d) => Ok(d),
        None => Err(Failure::new(
            "PUBLISH_DONE sent",
            "the relay ended the subscription first (UNSUBSCRIBE)",
            "PUBLISH_DONE could not be sent",
        )),
    }
}

fn describe_done(d: &PublishDone) -> String {
    format!(
        "status 0x{:x} ({}), stream count {}",
        d.status_code,
        publish_done_name(d.status_code),
        d.stream_count
    )
}

/// `publish-track-only`: PUBLISH with no subscriber, PUBLISH_OK, one object, PUBLISH_DONE, close.
pub async fn publish_track_only(ctx: &Ctx, record: &Record) -> CaseOutput {
    let a = Peer::connect(ctx, record, "connection_id").await?;
    let track = TrackProducer::new(published_track(), TrackConfig::default());
    a.serve(&track);
    let publication = publish(&a, record, &track).await?;
    let forward = publication.ok.forward;
    // Written either way; the session sends it only with Forward State 1.
    write_one(&track, "moqt14-publish-track-only")?;
    let done = end_track(&publication, &track, record).await?;
    record.step("a clean close");
    a.close().await?;
    Ok(format!(
        "PUBLISH_OK received (forward={}); PUBLISH_DONE sent: {}",
        u8::from(forward),
        describe_done(&done)
    ))
}

/// The payload `publish-track-subscribe` writes.
const SUBSCRIBE_PAYLOAD: &str = "moqt14-publish-track-subscribe";

/// `publish-track-subscribe`: A PUBLISHes; B subscribes to the same track and must receive the
/// object A then writes.
pub async fn publish_track_subscribe(ctx: &Ctx, record: &Record) -> CaseOutput {
    let a = Peer::connect(ctx, record, "publisher_connection_id").await?;
    let track = TrackProducer::new(published_track(), TrackConfig::default());
    a.serve(&track);
    let publication = publish(&a, record, &track).await?;
    let forward = publication.ok.forward;
    let b = Peer::connect(ctx, record, "subscriber_connection_id").await?;
    record.step("SUBSCRIBE_OK for the subscriber");
    let answer = within(
        Duration::from_secs(3),
        "SUBSCRIBE_OK",
        b.session
            .subscribe(published_track(), SubscribeOptions::default()),
    )
    .await?;
    let sub = answer.map_err(|e| {
        Failure::new(
            "SUBSCRIBE_OK",
            describe_error(&e),
            format!(
                "the relay did not map the SUBSCRIBE to the PUBLISHed track {}",
                published_track()
            ),
        )
    })?;
    let mut objects = collect(sub.consumer());
    write_one(&track, SUBSCRIBE_PAYLOAD)?;
    record.step("the object at the subscriber");
    let got: Option<Got> = within(Duration::from_secs(4), "object 0.0", objects.recv())
        .await
        .map_err(|f| Failure {
            received: format!(
                "no object; PUBLISH_OK forward={}; publisher received: {}",
                u8::from(forward),
                a.seen()
            ),
            ..f
        })?;
    let Some(got) = got else {
        return Err(Failure::new(
            "object 0.0",
            format!(
                "the subscription ended without objects: {:?}",
                sub.publish_done()
            ),
            "no object reached the subscriber",
        ));
    };
    let want = (0, 0, SUBSCRIBE_PAYLOAD.as_bytes());
    if (got.group, got.id, &got.payload[..]) != want {
        return Err(Failure::new(
            format!("object 0.0 with payload {SUBSCRIBE_PAYLOAD:?}"),
            got.to_string(),
            "the subscriber received a different object",
        ));
    }
    let sent = end_track(&publication, &track, record).await?;
    record.step("PUBLISH_DONE at the subscriber");
    let downstream = match within(Duration::from_secs(2), "", sub.done()).await {
        Ok(Some(d)) => describe_done(&d),
        _ => "none within 2 s".into(),
    };
    record.step("a clean close");
    drop(sub);
    close_both(b, a).await?;
    Ok(format!(
        "PUBLISH_OK (forward={}), SUBSCRIBE_OK, object 0.0 received with the expected payload; \
         PUBLISH_DONE sent ({}), at the subscriber: {downstream}",
        u8::from(forward),
        describe_done(&sent)
    ))
}
