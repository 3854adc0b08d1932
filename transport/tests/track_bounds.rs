//! The track cache is bounded by every byte it holds, the newest group included: per-object,
//! per-subgroup and per-group overheads are charged, one endless group is trimmed from its
//! front, a shared budget holds across tracks, and a trimmed prefix is not "retained".

use bytes::Bytes;
use moqlink_model::control::FetchEnd;
use moqlink_model::{GroupOrder, Location};
use moqlink_transport::track::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(2);
const MIB: usize = 1024 * 1024;

fn track(
    name: &str,
    max_bytes: usize,
    budget: Option<std::sync::Arc<ByteBudget>>,
) -> TrackProducer {
    TrackProducer::new(
        TrackName::new("bounds", name),
        TrackConfig {
            max_groups: 1000,
            max_bytes,
            max_age: None,
            budget,
            stats: None,
        },
    )
}

async fn next_subgroup(c: &mut TrackConsumer) -> SubgroupConsumer {
    match tokio::time::timeout(T, c.next()).await.unwrap() {
        Some(TrackItem::Subgroup(s)) => s,
        _ => panic!("expected a subgroup"),
    }
}

async fn next_object(s: &mut SubgroupConsumer) -> Object {
    tokio::time::timeout(T, s.next()).await.unwrap().unwrap()
}

/// Object `i` of the endless group: 1 byte, or empty every other one.
fn tiny(i: u64) -> Object {
    if i % 2 == 0 {
        Object::new(i, Bytes::from_static(b"x"))
    } else {
        Object::new(i, Bytes::new())
    }
}

/// The endless group: 200,000 objects of 1 byte or none, in one group, into a track of
/// 1 MiB. The accounted bytes never pass the limit, the objects retained are bounded by the
/// per-object cost, and a live reader at the head still gets every object, in order.
#[tokio::test]
async fn one_endless_group_of_tiny_objects_stays_within_max_bytes() {
    let t = track("endless", MIB, None);
    let mut c = t.consume(Location::new(0, 0), None);
    let mut sg = t.create_subgroup(SubgroupInfo::new(0, 0, 1));
    let mut live = next_subgroup(&mut c).await;
    for i in 0..200_000u64 {
        sg.write(tiny(i)).unwrap();
        assert!(t.accounted_bytes() <= MIB, "{} bytes", t.accounted_bytes());
        assert_eq!(
            next_object(&mut live).await.id,
            i,
            "the live reader misses nothing"
        );
    }
    assert!(t.retained_objects() <= MIB / OBJECT_OVERHEAD);
    assert!(
        t.retained_objects() > MIB / (2 * OBJECT_OVERHEAD),
        "the budget is used"
    );
    assert!(t.trimmed_objects() > 190_000);
    assert_eq!(t.evicted_groups(), 0);
    assert_eq!(live.skipped(), 0);
    // What is retained is the newest objects, contiguous up to the last one.
    let held = t.fetch(
        Location::new(0, 0),
        FetchEnd {
            group: 0,
            object: None,
        },
        GroupOrder::Ascending,
    );
    assert_eq!(held.last().unwrap().object.id, 199_999);
    let first = held[0].object.id;
    assert!(held.iter().map(|f| f.object.id).eq(first..200_000));
}

/// A reader that was behind when the front of its group was trimmed continues from the oldest
/// retained object (its loss counted), then follows the writer to the end without a hang.
#[tokio::test]
async fn a_reader_behind_a_trimmed_front_skips_to_the_oldest_retained_object() {
    let t = track("behind", 64 * 1024, None);
    let mut c = t.consume(Location::new(0, 0), None);
    let mut sg = t.create_subgroup(SubgroupInfo::new(0, 0, 1));
    sg.write(tiny(0)).unwrap();
    let mut behind = next_subgroup(&mut c).await;
    assert_eq!(next_object(&mut behind).await.id, 0);
    for i in 1..10_000u64 {
        sg.write(tiny(i)).unwrap();
    }
    let resumed = next_object(&mut behind).await.id;
    assert!(
        resumed > 1,
        "objects 1.. were trimmed, yet the reader got {resumed}"
    );
    assert_eq!(behind.skipped(), resumed - 1);
    // Then in order up to the head, and on as the writer goes on, to the end.
    for id in resumed + 1..10_000 {
        assert_eq!(next_object(&mut behind).await.id, id);
    }
    let mut expect = 10_000;
    for i in 10_000..10_010u64 {
        sg.write(tiny(i)).unwrap();
    }
    sg.finish();
    loop {
        match tokio::time::timeout(T, behind.next()).await.unwrap() {
            Ok(o) => {
                assert_eq!(o.id, expect);
                expect += 1;
            }
            Err(end) => {
                assert_eq!(end, SubgroupEnd::Finished);
                break;
            }
        }
    }
    assert_eq!(expect, 10_010);
}

/// Datagrams of one endless group are trimmed from the arrival log too: a reader behind skips to
/// the oldest retained datagram, and the log does not grow.
#[tokio::test]
async fn an_endless_group_of_datagrams_is_trimmed_and_a_reader_behind_skips_ahead() {
    let t = track("datagrams", 64 * 1024, None);
    let mut c = t.consume(Location::new(0, 0), None);
    for i in 0..10_000u64 {
        t.write_datagram(0, 1, tiny(i));
        assert!(t.accounted_bytes() <= 64 * 1024);
    }
    let max = 64 * 1024 / (OBJECT_OVERHEAD + DATAGRAM_OVERHEAD);
    assert!(t.retained_objects() <= max);
    let mut expect = None;
    for _ in 0..t.retained_objects() {
        match tokio::time::timeout(T, c.next()).await.unwrap() {
            Some(TrackItem::Datagram { object, .. }) => {
                let e = *expect.get_or_insert(object.id);
                assert_eq!(object.id, e);
                expect = Some(e + 1);
            }
            _ => panic!("expected a datagram"),
        }
    }
    assert_eq!(expect, Some(10_000));
    assert!(c.lost() >= 10_000 - max as u64);
}

/// Two tracks share a budget: one endless group and one of ordinary groups. The total never
/// passes the budget by more than the object being written (with its subgroup and group).
#[tokio::test]
async fn a_shared_budget_holds_across_tracks_with_an_endless_group() {
    const N: usize = 256 * 1024;
    let budget = ByteBudget::new(N);
    let endless = track("endless", usize::MAX, Some(budget.clone()));
    let normal = track("normal", usize::MAX, Some(budget.clone()));
    let slack = GROUP_OVERHEAD + SUBGROUP_OVERHEAD + OBJECT_OVERHEAD + 100;
    let mut e = endless.create_subgroup(SubgroupInfo::new(0, 0, 1));
    for i in 0..100_000u64 {
        e.write(tiny(i)).unwrap();
        assert!(budget.used() <= N + slack, "{} bytes", budget.used());
        if i % 10 == 0 {
            let g = i / 100;
            let mut sg = normal.join_subgroup(SubgroupInfo::new(g, 0, 1));
            sg.write(Object::new(i % 100 / 10, Bytes::from(vec![0u8; 100])))
                .unwrap();
            assert!(budget.used() <= N + slack, "{} bytes", budget.used());
        }
    }
    assert_eq!(
        budget.used(),
        endless.accounted_bytes() + normal.accounted_bytes()
    );
    // Every retained object is paid for, the empty ones too.
    let objects = endless.retained_objects() + normal.retained_objects();
    assert!(
        objects <= (N + slack) / OBJECT_OVERHEAD,
        "{objects} objects"
    );
    // Both still hold their newest data.
    assert!(endless.retained_objects() > 0 && normal.retained_objects() > 0);
    drop((e, endless, normal));
    assert_eq!(budget.used(), 0);
}

/// A track that stopped being written does not keep the budget to itself: the biggest track
/// gives up its oldest data first, so a writer is not starved down to its newest object.
#[tokio::test]
async fn an_idle_track_gives_up_its_history_to_a_live_one() {
    const N: usize = 256 * 1024;
    let budget = ByteBudget::new(N);
    let idle = track("idle", usize::MAX, Some(budget.clone()));
    for g in 0..100u64 {
        let mut sg = idle.create_subgroup(SubgroupInfo::new(g, 0, 1));
        sg.write(Object::new(0, Bytes::from(vec![0u8; 4000])))
            .unwrap();
        sg.finish();
    }
    let evicted_before = idle.evicted_groups();
    let live = track("live", usize::MAX, Some(budget.clone()));
    let mut sg = live.create_subgroup(SubgroupInfo::new(0, 0, 1));
    for i in 0..20_000u64 {
        sg.write(tiny(i)).unwrap();
    }
    assert!(budget.used() <= N);
    assert!(live.accounted_bytes() >= N / 2 - OBJECT_OVERHEAD);
    assert!(idle.evicted_groups() > evicted_before);
}

/// A FETCH cannot be answered from a group whose front was trimmed: the relay must forward it.
#[test]
fn a_trimmed_prefix_is_not_retained() {
    let t = track("retains", 64 * 1024, None);
    t.set_complete_from(Location::new(0, 0));
    let mut sg = t.create_subgroup(SubgroupInfo::new(0, 0, 1));
    assert!(t.retains_from(Location::new(0, 0)));
    for i in 0..10_000u64 {
        sg.write(tiny(i)).unwrap();
    }
    let held = t.fetch(
        Location::new(0, 0),
        FetchEnd {
            group: 0,
            object: None,
        },
        GroupOrder::Ascending,
    );
    let first = held[0].object.id;
    assert!(first > 0);
    assert!(!t.retains_from(Location::new(0, 0)));
    assert!(!t.retains_from(Location::new(0, first - 1)));
    assert!(t.retains_from(Location::new(0, first)));
    assert!(t.retains_from(Location::new(1, 0)));
}

/// Subgroups cost memory even without objects: a flood of them in one group stays bounded.
#[test]
fn a_flood_of_empty_subgroups_in_one_group_stays_bounded() {
    let t = track("subgroups", 64 * 1024, None);
    for s in 0..10_000u64 {
        let sg = t.create_subgroup(SubgroupInfo::new(0, s, 1));
        if s % 2 == 0 {
            sg.finish();
        } else {
            // Open subgroups (their writers still around) are evicted too.
            std::mem::forget(sg);
        }
        assert!(t.accounted_bytes() <= 64 * 1024);
    }
}
