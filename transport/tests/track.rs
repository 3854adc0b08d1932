//! Track handles: fan-out without copies, filters, bounded history, FETCH ranges, the end.

use bytes::Bytes;
use moqlink_model::control::FetchEnd;
use moqlink_model::data::ObjectStatus;
use moqlink_model::{GroupOrder, Location};
use moqlink_transport::track::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(2);

fn track(max_groups: usize) -> TrackProducer {
    TrackProducer::new(
        TrackName::new("moq-test/interop", "test-track"),
        TrackConfig {
            max_groups,
            ..Default::default()
        },
    )
}

async fn next_subgroup(c: &mut TrackConsumer) -> SubgroupConsumer {
    match tokio::time::timeout(T, c.next()).await.unwrap() {
        Some(TrackItem::Subgroup(s)) => s,
        _ => panic!("expected a subgroup"),
    }
}

async fn ids(s: &mut SubgroupConsumer) -> (Vec<u64>, SubgroupEnd) {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(T, s.next()).await.unwrap() {
            Ok(o) => out.push(o.id),
            Err(end) => return (out, end),
        }
    }
}

#[tokio::test]
async fn two_consumers_share_one_copy() {
    let t = track(4);
    let mut a = t.consume(Location::new(0, 0), None);
    let mut b = t.consume(Location::new(0, 0), None);
    let mut sg = t.create_subgroup(SubgroupInfo::new(0, 0, 1));
    let payload = Bytes::from_static(b"shared");
    sg.write(Object::new(0, payload.clone())).unwrap();
    sg.finish();
    let mut sa = next_subgroup(&mut a).await;
    let mut sb = next_subgroup(&mut b).await;
    let oa = sa.next().await.unwrap();
    let ob = sb.next().await.unwrap();
    // Same allocation: no per-consumer copy.
    assert_eq!(oa.payload.as_ptr(), payload.as_ptr());
    assert_eq!(ob.payload.as_ptr(), payload.as_ptr());
    assert_eq!(sa.next().await, Err(SubgroupEnd::Finished));
}

#[tokio::test]
async fn start_location_filters_groups_and_objects() {
    let t = track(8);
    for g in 0..3 {
        let mut sg = t.create_subgroup(SubgroupInfo::new(g, 0, 1));
        for _ in 0..4 {
            sg.write_next(Bytes::from_static(b"x")).unwrap();
        }
        sg.finish();
    }
    // Largest Object semantics: after {2, 3} nothing is left; {1, 2} starts mid-group.
    let mut c = t.consume(Location::new(1, 2), Some(1));
    let mut s = next_subgroup(&mut c).await;
    assert_eq!(s.info().group, 1);
    assert_eq!(ids(&mut s).await, (vec![2, 3], SubgroupEnd::Finished));
    t.finish(TrackEnd {
        status: moqlink_model::codes::PublishDoneCode::TrackEnded,
        reason: "done".into(),
    });
    // Group 2 is past the end group.
    assert!(tokio::time::timeout(T, c.next()).await.unwrap().is_none());
    assert!(c.past_end());
}

#[tokio::test]
async fn a_slow_consumer_loses_whole_old_groups_and_the_producer_never_waits() {
    let t = track(2);
    let mut slow = t.consume(Location::new(0, 0), None);
    let mut first = next_subgroup_after_write(&t, &mut slow).await;
    for g in 1..10u64 {
        let mut sg = t.create_subgroup(SubgroupInfo::new(g, 0, 1));
        sg.write_next(Bytes::from_static(b"y")).unwrap();
        sg.finish();
    }
    // The group the slow reader was inside was evicted under it.
    assert_eq!(ids(&mut first).await.1, SubgroupEnd::Evicted);
    // It resumes at the oldest retained group.
    let s = next_subgroup(&mut slow).await;
    assert_eq!(s.info().group, 8);
    assert!(slow.lost() > 0);
    assert_eq!(t.evicted_groups(), 8);
}

async fn next_subgroup_after_write(t: &TrackProducer, c: &mut TrackConsumer) -> SubgroupConsumer {
    let mut sg = t.create_subgroup(SubgroupInfo::new(0, 0, 1));
    sg.write_next(Bytes::from_static(b"g0")).unwrap();
    std::mem::forget(sg);
    next_subgroup(c).await
}

#[tokio::test]
async fn byte_budget_bounds_memory() {
    let t = TrackProducer::new(
        TrackName::new("a", "b"),
        TrackConfig {
            max_groups: 100,
            max_bytes: 1000,
            max_age: None,
            budget: None,
            stats: None,
        },
    );
    for g in 0..50u64 {
        let mut sg = t.create_subgroup(SubgroupInfo::new(g, 0, 1));
        sg.write_next(Bytes::from(vec![0u8; 100])).unwrap();
    }
    let fetched = t.fetch(
        Location::new(0, 0),
        FetchEnd {
            group: 100,
            object: None,
        },
        GroupOrder::Ascending,
    );
    assert!(fetched.len() <= 11, "{} objects retained", fetched.len());
    assert_eq!(fetched.last().unwrap().group, 49);
}

#[tokio::test]
async fn fetch_returns_the_range_in_group_order() {
    let t = track(8);
    for g in 0..3u64 {
        let mut sg = t.create_subgroup(SubgroupInfo::new(g, 0, 5));
        sg.write(Object::new(0, Bytes::from_static(b"a"))).unwrap();
        sg.write(Object::new(2, Bytes::from_static(b"b"))).unwrap();
        sg.write(Object::status(3, ObjectStatus::EndOfGroup))
            .unwrap();
    }
    t.write_datagram(3, 9, Object::new(0, Bytes::from_static(b"d")));
    let got: Vec<(u64, u64)> = t
        .fetch(
            Location::new(0, 2),
            FetchEnd {
                group: 2,
                object: Some(0),
            },
            GroupOrder::Ascending,
        )
        .iter()
        .map(|f| (f.group, f.object.id))
        .collect();
    assert_eq!(got, vec![(0, 2), (0, 3), (1, 0), (1, 2), (1, 3), (2, 0)]);
    let desc: Vec<u64> = t
        .fetch(
            Location::new(1, 0),
            FetchEnd {
                group: 3,
                object: None,
            },
            GroupOrder::Descending,
        )
        .iter()
        .map(|f| f.group)
        .collect();
    assert_eq!(desc, vec![3, 2, 2, 2, 1, 1, 1]);
    let dg = t.fetch(
        Location::new(3, 0),
        FetchEnd {
            group: 3,
            object: None,
        },
        GroupOrder::Ascending,
    );
    // §10.4.4: a datagram object's Subgroup ID is its Object ID.
    assert_eq!((dg[0].subgroup, dg[0].priority), (0, 9));
    assert_eq!(t.status().largest, Some(Location::new(3, 0)));
}

#[tokio::test]
async fn object_ids_must_increase_and_status_objects_carry_no_payload() {
    let t = track(2);
    let mut sg = t.create_subgroup(SubgroupInfo::new(0, 0, 1));
    sg.write(Object::new(5, Bytes::from_static(b"x"))).unwrap();
    assert!(sg.write(Object::new(5, Bytes::from_static(b"x"))).is_err());
    let mut bad = Object::status(6, ObjectStatus::EndOfGroup);
    bad.payload = Bytes::from_static(b"no");
    assert!(sg.write(bad).is_err());
}

#[tokio::test]
async fn readers_wait_for_new_data_and_see_the_end() {
    let t = track(4);
    let mut c = t.consume_new();
    let waiter = tokio::spawn(async move {
        let mut s = next_subgroup(&mut c).await;
        let o = s.next().await.unwrap();
        (o.id, c)
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut sg = t.create_subgroup(SubgroupInfo::new(7, 0, 1));
    sg.write(Object::new(4, Bytes::from_static(b"late")))
        .unwrap();
    let (id, mut c) = waiter.await.unwrap();
    assert_eq!(id, 4);
    t.finish(TrackEnd {
        status: moqlink_model::codes::PublishDoneCode::TrackEnded,
        reason: String::new(),
    });
    assert!(tokio::time::timeout(T, c.next()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_shared_budget_bounds_several_tracks() {
    // What one group of one 100-byte object costs, overheads included.
    let group = GROUP_OVERHEAD + SUBGROUP_OVERHEAD + OBJECT_OVERHEAD + 100;
    let budget = ByteBudget::new(10 * group);
    let config = TrackConfig {
        max_groups: 100,
        max_bytes: usize::MAX,
        max_age: None,
        budget: Some(budget.clone()),
        stats: None,
    };
    let a = TrackProducer::new(TrackName::new("a", "1"), config.clone());
    let b = TrackProducer::new(TrackName::new("a", "2"), config);
    for g in 0..30u64 {
        for t in [&a, &b] {
            let mut sg = t.create_subgroup(SubgroupInfo::new(g, 0, 1));
            sg.write_next(Bytes::from(vec![0u8; 100])).unwrap();
        }
    }
    // The budget holds, but for the object being written (with its subgroup and group).
    assert!(
        budget.used() <= 11 * group,
        "{} bytes retained",
        budget.used()
    );
    drop(a);
    drop(b);
    assert_eq!(budget.used(), 0);
}

/// A track, a consumer from its start, and two writers joined to subgroup `info` (two
/// publishers of the same subgroup, merged).
fn two_writers(info: SubgroupInfo) -> (TrackProducer, TrackConsumer, [SubgroupProducer; 2]) {
    let t = track(4);
    let c = t.consume(Location::new(0, 0), None);
    let writers = [t.join_subgroup(info), t.join_subgroup(info)];
    (t, c, writers)
}

#[tokio::test]
async fn joined_subgroups_merge_two_writers_each_object_once() {
    // Two publishers send subgroup 0 of group 0; the second lags one object behind.
    let (t, mut c, [mut a, mut b]) = two_writers(SubgroupInfo::new(0, 0, 1));
    a.write(Object::new(0, "x")).unwrap();
    a.write(Object::new(1, "y")).unwrap();
    b.write(Object::new(0, "x")).unwrap();
    b.write(Object::new(1, "y")).unwrap();
    b.write(Object::new(2, "z")).unwrap();
    a.write(Object::new(2, "z")).unwrap();
    // The first writer's reset does not end it while the other can still complete it.
    a.reset(0x1);
    b.write(Object::new(3, "w")).unwrap();
    b.finish();
    let mut s = next_subgroup(&mut c).await;
    assert_eq!(ids(&mut s).await, (vec![0, 1, 2, 3], SubgroupEnd::Finished));
    // One stream for readers, not two.
    t.finish(TrackEnd {
        status: moqlink_model::codes::PublishDoneCode::TrackEnded,
        reason: "done".into(),
    });
    assert!(tokio::time::timeout(T, c.next()).await.unwrap().is_none());
}

/// §10.4.3: an object is known to be the next one when its ID follows the previous object's,
/// or its writer's own previous object was that one; otherwise a sender needs a new stream.
#[tokio::test]
async fn an_object_after_a_gap_from_another_writer_is_not_known_next() {
    let (_t, mut c, [mut a, mut b]) = two_writers(SubgroupInfo::new(0, 0, 1));
    a.write(Object::new(0, "x")).unwrap();
    a.write(Object::new(1, "y")).unwrap();
    b.write(Object::new(3, "w")).unwrap();
    b.write(Object::new(5, "v")).unwrap();
    a.write(Object::new(6, "u")).unwrap();
    a.reset(0x1);
    b.finish();
    let s = next_subgroup(&mut c).await;
    let known: Vec<bool> = [0, 1, 3, 5, 6].iter().map(|id| s.known_next(*id)).collect();
    assert_eq!(known, [true, true, false, true, true]);
}

#[tokio::test]
async fn a_joined_subgroup_resets_when_every_writer_reset() {
    let (_t, mut c, [a, mut b]) = two_writers(SubgroupInfo::new(3, 1, 1));
    b.write(Object::new(5, "x")).unwrap();
    a.reset(0x1);
    b.reset(0x2);
    let mut s = next_subgroup(&mut c).await;
    assert_eq!(ids(&mut s).await, (vec![5], SubgroupEnd::Reset(0x2)));
}

/// A merged writer dropped without FIN or reset (its publisher's session went away) leaves the
/// subgroup to the other writer; the last one dropped finishes it.
#[tokio::test]
async fn a_dropped_joined_writer_leaves_the_subgroup_to_the_other() {
    let (_t, mut c, [mut a, mut b]) = two_writers(SubgroupInfo::new(0, 0, 1));
    a.write(Object::new(0, "x")).unwrap();
    drop(a);
    b.write(Object::new(1, "y")).unwrap();
    b.write(Object::new(2, "z")).unwrap();
    drop(b);
    let mut s = next_subgroup(&mut c).await;
    assert_eq!(ids(&mut s).await, (vec![0, 1, 2], SubgroupEnd::Finished));
}

#[tokio::test]
async fn a_range_waits_for_its_groups_when_a_later_group_arrives_first() {
    let t = track(8);
    let mut c = t.consume(Location::new(1, 0), Some(2));
    // Group 3's stream overtakes groups 1 and 2 (§9.7: they still pass the filter).
    t.create_subgroup(SubgroupInfo::new(3, 0, 1))
        .write(Object::new(0, "late"))
        .unwrap();
    let writer = {
        let t = t.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            for g in [2, 1] {
                let mut sg = t.create_subgroup(SubgroupInfo::new(g, 0, 1));
                sg.write(Object::new(0, "in range")).unwrap();
                sg.finish();
            }
        })
    };
    let mut groups = Vec::new();
    while let Some(item) = tokio::time::timeout(T, c.next()).await.unwrap() {
        if let TrackItem::Subgroup(s) = item {
            groups.push(s.info().group);
        }
    }
    writer.await.unwrap();
    assert_eq!(groups, vec![2, 1]);
    assert!(c.past_end());
}

#[test]
fn a_track_retains_from_where_it_was_complete_until_eviction() {
    let t = track(2);
    assert!(!t.retains_from(Location::new(5, 0)), "nothing known yet");
    t.set_complete_from(Location::new(3, 1));
    assert!(!t.retains_from(Location::new(3, 0)));
    assert!(t.retains_from(Location::new(3, 1)));
    // An earlier start (a second source) widens it; a later one does not narrow it.
    t.set_complete_from(Location::new(2, 0));
    t.set_complete_from(Location::new(9, 0));
    assert!(t.retains_from(Location::new(2, 0)));
    for g in 2..6 {
        t.create_subgroup(SubgroupInfo::new(g, 0, 1))
            .write(Object::new(0, "x"))
            .unwrap();
    }
    // Two groups are kept (4 and 5): groups 2 and 3 are gone.
    assert!(!t.retains_from(Location::new(3, 0)));
    assert!(t.retains_from(Location::new(4, 0)));
}

/// Groups arriving out of order are evicted in arrival order: a kept lower group does not mean
/// everything after it is kept.
#[test]
fn retention_after_out_of_order_eviction_counts_the_evicted_group() {
    let t = track(2);
    t.set_complete_from(Location::new(0, 0));
    for g in [5, 1, 6] {
        t.create_subgroup(SubgroupInfo::new(g, 0, 1))
            .write(Object::new(0, "x"))
            .unwrap();
    }
    // Group 5 arrived first and was evicted; groups 1 and 6 are kept.
    assert!(!t.retains_from(Location::new(1, 0)));
    assert!(t.retains_from(Location::new(6, 0)));
}

#[tokio::test]
async fn writers_joining_one_subgroup_at_the_same_moment_share_it() {
    // Two publishers' streams for the same subgroup start together (§8.4.1): one subgroup.
    let t = track(256);
    let mut c = t.consume(Location::new(0, 0), None);
    for g in 0..200 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (t, barrier) = (t.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut sg = t.join_subgroup(SubgroupInfo::new(g, 0, 1));
                    sg.write(Object::new(0, "x")).unwrap();
                    sg.finish();
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
    }
    t.finish(TrackEnd {
        status: moqlink_model::codes::PublishDoneCode::TrackEnded,
        reason: "done".into(),
    });
    let mut groups = Vec::new();
    while let Some(item) = tokio::time::timeout(T, c.next()).await.unwrap() {
        if let TrackItem::Subgroup(s) = item {
            groups.push(s.info().group);
        }
    }
    assert_eq!(groups, (0..200).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_datagram_two_merged_publishers_send_is_held_and_read_once() {
    // §8.4: a relay subscribed to two publishers of one track writes both into it; a datagram
    // (group, object) already held is the same object (§8.5), not a second one.
    let t = track(8);
    let mut c = t.consume(Location::new(0, 0), None);
    t.write_datagram(0, 1, Object::new(0, Bytes::from_static(b"d0")));
    t.write_datagram(0, 1, Object::new(0, Bytes::from_static(b"d0")));
    t.write_datagram(0, 1, Object::new(1, Bytes::from_static(b"d1")));
    t.write_datagram(0, 1, Object::new(1, Bytes::from_static(b"d1")));
    let mut got = Vec::new();
    while let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(50), c.next()).await {
        if let TrackItem::Datagram { object, .. } = item {
            got.push(object.id);
        }
    }
    assert_eq!(got, [0, 1]);
    assert_eq!(t.retained_objects(), 2);
}

#[tokio::test]
async fn a_publishers_max_cache_duration_expires_cached_objects() {
    let t = track(8);
    t.set_complete_from(Location::new(0, 0));
    let mut sg = t.create_subgroup(SubgroupInfo::new(0, 0, 1));
    sg.write(Object::new(0, Bytes::from_static(b"a"))).unwrap();
    sg.finish();
    let whole = FetchEnd {
        group: 0,
        object: None,
    };
    t.limit_max_age(Duration::from_secs(60));
    assert_eq!(
        t.fetch(Location::new(0, 0), whole, GroupOrder::Ascending)
            .len(),
        1
    );
    assert!(t.retains_from(Location::new(0, 0)));
    // A stricter duration wins; a laxer one later does not undo it.
    t.limit_max_age(Duration::from_millis(20));
    t.limit_max_age(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(t
        .fetch(Location::new(0, 0), whole, GroupOrder::Ascending)
        .is_empty());
    assert!(!t.retains_from(Location::new(0, 0)));
    assert!(t.gap_from(Location::new(0, 0)));
}
