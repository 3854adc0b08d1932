//! Publishes a small clock track with the moqlink library: PUBLISH_NAMESPACE, then every
//! SUBSCRIBE for the track is served from a `TrackProducer` while one group per second is
//! written into it.
//!
//! Run it against a relay (here a local development relay with a self-signed certificate):
//!
//! ```text
//! cargo run -- relay --dev                                    # terminal 1
//! cargo run --example publish -- https://localhost:4443       # terminal 2
//! cargo run --example subscribe -- https://localhost:4443     # terminal 3
//! ```
//!
//! `moqt://localhost:4443` uses raw QUIC instead of WebTransport. A relay that does not route
//! yet refuses PUBLISH_NAMESPACE; the example then prints the error and exits.

use moqlink::model::codes::{PublishDoneCode, SubscribeErrorCode};
use moqlink::model::control::ControlMessage;
use moqlink::model::params::VersionParameters;
use moqlink::model::SessionErrorCode;
use moqlink::transport::endpoint::{Client, ClientConfig};
use moqlink::transport::session::{IncomingEvent, SessionConfig};
use moqlink::transport::tls::ClientTls;
use moqlink::transport::track::{
    Object, SubgroupInfo, TrackConfig, TrackEnd, TrackName, TrackProducer,
};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or("https://localhost:4443".into());

    // Development relays use self-signed certificates; real deployments keep the default
    // (`ClientTls::Verify`) or pin the certificate with `ClientTls::Pinned`.
    let client = Client::new(ClientConfig {
        tls: ClientTls::DisableVerify,
        ..Default::default()
    })?;
    // Connect (QUIC or WebTransport by URL scheme) and complete CLIENT_SETUP / SERVER_SETUP.
    let (session, mut requests) = moqlink::connect(&client, &url, SessionConfig::default()).await?;
    println!("connected to {url}, version {}", session.version());

    // The track lives in a TrackProducer; any number of subscriptions read it independently.
    let name = TrackName::new("example/clock", "seconds");
    let track = TrackProducer::new(name.clone(), TrackConfig::default());

    // Answer the peer's requests: SUBSCRIBE for our track is served from the producer (objects
    // flow until the track ends, then PUBLISH_DONE); anything else is refused.
    tokio::spawn({
        let (session, track) = (session.clone(), track.clone());
        async move {
            while let Some(event) = requests.recv().await {
                // Notices (e.g. PUBLISH_NAMESPACE_DONE) need no answer.
                let IncomingEvent::Request(req) = event else {
                    continue;
                };
                match &req.message {
                    ControlMessage::Subscribe(s)
                        if s.namespace == track.name().namespace && s.name == track.name().name =>
                    {
                        let _ = session.serve_subscribe(*req, &track).await;
                    }
                    ControlMessage::Subscribe(_) => {
                        let _ = req
                            .responder
                            .reject(SubscribeErrorCode::TrackDoesNotExist, "no such track")
                            .await;
                    }
                    _ => {
                        let _ = req.responder.not_supported("this request").await;
                    }
                }
            }
        }
    });

    // Tell the relay we publish this namespace; it forwards matching SUBSCRIBEs to us.
    let announcement = session
        .publish_namespace(name.namespace.clone(), VersionParameters::new())
        .await?;
    println!("published namespace {}", name.namespace);

    // One group per second, each a single subgroup (one QUIC stream) with one object.
    for group in 0..10u64 {
        let mut subgroup = track.create_subgroup(SubgroupInfo::new(group, 0, 128));
        let text = format!("tick {group}");
        subgroup.write(Object::new(0, text.clone()))?;
        subgroup.finish();
        println!("{text}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // End the track: subscribers get PUBLISH_DONE (TRACK_ENDED) once their streams are done.
    track.finish(TrackEnd {
        status: PublishDoneCode::TrackEnded,
        reason: "clock stopped".into(),
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    announcement.done().await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    session.close(SessionErrorCode::NoError, "");
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}
