//! Subscribes to the clock track of the `publish` example with the moqlink library and prints
//! every object until the publisher ends the track.
//!
//! Run it against a relay (here a local development relay with a self-signed certificate):
//!
//! ```text
//! cargo run -- relay --dev                                    # terminal 1
//! cargo run --example publish -- https://localhost:4443       # terminal 2
//! cargo run --example subscribe -- https://localhost:4443     # terminal 3
//! ```
//!
//! `moqt://localhost:4443` uses raw QUIC instead of WebTransport. Without a publisher (or with a
//! relay that does not route yet) the SUBSCRIBE is refused and the error is printed.

use moqlink::model::control::Filter;
use moqlink::model::SessionErrorCode;
use moqlink::transport::endpoint::{Client, ClientConfig};
use moqlink::transport::session::{SessionConfig, SubscribeOptions};
use moqlink::transport::tls::ClientTls;
use moqlink::transport::track::{TrackItem, TrackName};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or("https://localhost:4443".into());

    // Development relays use self-signed certificates; see the publish example.
    let client = Client::new(ClientConfig {
        tls: ClientTls::DisableVerify,
        ..Default::default()
    })?;
    // The second value carries the peer's requests; dropping it answers them NOT_SUPPORTED.
    let (session, _requests) = moqlink::connect(&client, &url, SessionConfig::default()).await?;

    // SUBSCRIBE and wait for SUBSCRIBE_OK (a SUBSCRIBE_ERROR comes back as an error).
    let name = TrackName::new("example/clock", "seconds");
    let subscription = session
        .subscribe(
            name.clone(),
            SubscribeOptions {
                // Start with the next group rather than in the middle of one.
                filter: Filter::NextGroupStart,
                ..Default::default()
            },
        )
        .await?;
    println!("subscribed to {name}, largest {:?}", subscription.largest());

    // Received objects are written into a local track; read it with a TrackConsumer. Each
    // subgroup is one stream: read its objects in order (a real player would read subgroups
    // concurrently). `next()` returns None once PUBLISH_DONE arrived and everything was read.
    let mut consumer = subscription.consumer();
    while let Some(item) = consumer.next().await {
        match item {
            TrackItem::Subgroup(mut subgroup) => {
                let group = subgroup.info().group;
                while let Ok(object) = subgroup.next().await {
                    let text = String::from_utf8_lossy(&object.payload);
                    println!("group {group} object {}: {text}", object.id);
                }
            }
            TrackItem::Datagram { group, object, .. } => {
                println!("group {group} object {} (datagram)", object.id);
            }
        }
    }
    if let Some(done) = subscription.publish_done() {
        println!(
            "PUBLISH_DONE status 0x{:x}: {}",
            done.status_code, done.reason
        );
    }
    session.close(SessionErrorCode::NoError, "");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    Ok(())
}
