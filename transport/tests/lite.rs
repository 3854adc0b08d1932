//! moq-lite sessions over the in-memory connection: SETUP choosing lite-02 or lite-01, ANNOUNCE,
//! and a subscription whose groups arrive as objects of subgroup 0.

use bytes::Bytes;
use moqlink_model::{Blob, Version};
use moqlink_transport::connection::memory::{pair, MemoryConnection};
use moqlink_transport::lite::{LiteEvent, LiteSession};
use moqlink_transport::session::*;
use moqlink_transport::track::*;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

const T: Duration = Duration::from_secs(5);

type Lite = (
    LiteSession<MemoryConnection>,
    Receiver<LiteEvent<MemoryConnection>>,
);

async fn lite_pair(client: &[Version], server: &[Version]) -> (Lite, Lite) {
    let (c, s) = pair();
    let scfg = SessionConfig {
        versions: server.to_vec(),
        ..Default::default()
    };
    let ccfg = SessionConfig {
        versions: client.to_vec(),
        ..Default::default()
    };
    let server = tokio::spawn(Session::accept_any(s, scfg));
    let client = Session::connect_any(c, ccfg, ClientTarget::default())
        .await
        .unwrap();
    let Accepted::Lite(cs, crx) = client else {
        panic!("client did not negotiate lite")
    };
    let Accepted::Lite(ss, srx) = server.await.unwrap().unwrap() else {
        panic!("server did not negotiate lite")
    };
    ((cs, crx), (ss, srx))
}

#[tokio::test]
async fn setup_chooses_the_clients_first_lite_version() {
    let offered = [Version::LITE_01, Version::LITE_02, Version::DRAFT_14];
    let supported = [Version::DRAFT_14, Version::LITE_02, Version::LITE_01];
    let ((c, _), (s, _)) = lite_pair(&offered, &supported).await;
    assert_eq!(
        (c.version(), s.version()),
        (Version::LITE_01, Version::LITE_01)
    );
}

#[tokio::test]
async fn announce_and_subscribe_carry_groups_as_objects() {
    for v in [Version::LITE_02, Version::LITE_01] {
        let ((client, _crx), (server, mut srx)) = lite_pair(&[v], &[v]).await;
        // The server publishes broadcast demo/clock, track seconds.
        let track = TrackProducer::new(
            TrackName::new("demo/clock", "seconds"),
            TrackConfig::default(),
        );
        let served = track.clone();
        tokio::spawn(async move {
            while let Some(ev) = srx.recv().await {
                match ev {
                    LiteEvent::AnnouncePlease(req) => {
                        let mut a = req.respond(&[Blob::from("demo/clock")]).await.unwrap();
                        tokio::spawn(async move { a.closed().await });
                    }
                    LiteEvent::Subscribe(req) => {
                        assert_eq!(req.name(), *served.name());
                        req.serve(&served).await.unwrap();
                    }
                }
            }
        });
        let mut announced = client.announce_please(&Blob::from("demo")).await.unwrap();
        let (path, active) = tokio::time::timeout(T, announced.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((path, active), (Blob::from("demo/clock"), true));

        let sub = client
            .subscribe(
                &Blob::from("demo/clock"),
                &Blob::from("seconds"),
                7,
                TrackConfig::default(),
            )
            .await
            .unwrap();
        let mut c = sub.track().consume(Default::default(), None);
        let mut sg = track.create_subgroup(SubgroupInfo::new(5, 0, 1));
        sg.write(Object::new(0, Bytes::from_static(b"12:00:")))
            .unwrap();
        sg.write(Object::new(1, Bytes::from_static(b"01"))).unwrap();
        sg.finish();
        let Some(TrackItem::Subgroup(mut s)) = tokio::time::timeout(T, c.next()).await.unwrap()
        else {
            panic!("no group")
        };
        // Group sequence 5 is group 5; frames are objects 0, 1 of subgroup 0.
        assert_eq!((s.info().group, s.info().subgroup), (5, 0));
        let o = s.next().await.unwrap();
        assert_eq!((o.id, &o.payload[..]), (0, &b"12:00:"[..]));
        let o = s.next().await.unwrap();
        assert_eq!((o.id, &o.payload[..]), (1, &b"01"[..]));
        assert_eq!(s.next().await, Err(SubgroupEnd::Finished));
        drop(sub);
        server.close(moqlink_model::SessionErrorCode::NoError, "");
    }
}

#[tokio::test]
async fn a_draft14_only_client_is_not_given_lite() {
    let (c, s) = pair();
    let server = tokio::spawn(Session::accept_any(
        s,
        SessionConfig {
            versions: vec![Version::LITE_02, Version::DRAFT_14],
            ..Default::default()
        },
    ));
    let client = Session::connect(c, SessionConfig::default(), ClientTarget::default()).await;
    assert_eq!(client.unwrap().0.version(), Version::DRAFT_14);
    assert!(matches!(server.await.unwrap().unwrap(), Accepted::Ietf(..)));
}
