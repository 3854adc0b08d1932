//! Accounted bytes against what the allocator actually hands out for a track's objects,
//! subgroups and groups: the overhead constants must not undercount. One test in this binary,
//! so the counting allocator sees nothing else.

use bytes::Bytes;
use moqlink_model::Location;
use moqlink_transport::track::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn track() -> TrackProducer {
    TrackProducer::new(
        TrackName::new("mem", "t"),
        TrackConfig {
            max_groups: usize::MAX,
            max_bytes: usize::MAX,
            max_age: None,
            budget: None,
            stats: None,
        },
    )
}

#[test]
fn accounted_bytes_cover_allocated_bytes() {
    const N: u64 = 10_000;
    // Objects: 1-byte payloads in their own allocation, each handed to a reader once (the
    // payload handle's shared header is allocated on the first clone).
    let t = track();
    let before = live();
    let mut c = t.consume(Location::new(0, 0), None);
    let mut sg = t.create_subgroup(SubgroupInfo::new(0, 0, 1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut reader = rt.block_on(async {
        match c.next().await {
            Some(TrackItem::Subgroup(s)) => s,
            _ => unreachable!(),
        }
    });
    let base = live();
    for i in 0..N {
        sg.write(Object::new(i, Bytes::from(vec![b'x']))).unwrap();
        let o = rt.block_on(reader.next()).unwrap();
        drop(o);
    }
    let per_object = (live() - base) as f64 / N as f64;
    let accounted = t.accounted_bytes();
    let allocated = (live() - before) as usize;
    eprintln!("OBJECT_OVERHEAD {OBJECT_OVERHEAD} DATAGRAM_OVERHEAD {DATAGRAM_OVERHEAD}");
    eprintln!(
        "objects: {per_object:.1} B allocated per 1-byte object, {} accounted; \
         track {allocated} B allocated, {accounted} B accounted",
        OBJECT_OVERHEAD + 1
    );
    assert!(per_object <= (OBJECT_OVERHEAD + 1) as f64);
    drop((reader, sg, c, t));

    // Subgroups, empty, in one group.
    let t = track();
    let before = live();
    let subs: Vec<_> = (0..N)
        .map(|s| t.create_subgroup(SubgroupInfo::new(0, s, 1)))
        .collect();
    let allocated = (live() - before) as usize;
    let accounted = t.accounted_bytes();
    eprintln!(
        "subgroups: {:.1} B allocated per subgroup (its writer included), {SUBGROUP_OVERHEAD} \
         accounted",
        allocated as f64 / N as f64
    );
    assert!(allocated <= accounted + subs.capacity() * std::mem::size_of::<SubgroupProducer>());
    drop((subs, t));

    // Groups of one empty subgroup.
    let t = track();
    let before = live();
    let subs: Vec<_> = (0..N)
        .map(|g| t.create_subgroup(SubgroupInfo::new(g, 0, 1)))
        .collect();
    let allocated = (live() - before) as usize;
    let accounted = t.accounted_bytes();
    eprintln!(
        "groups: {:.1} B allocated per group of one subgroup, {} accounted",
        allocated as f64 / N as f64,
        GROUP_OVERHEAD + SUBGROUP_OVERHEAD
    );
    assert!(allocated <= accounted + subs.capacity() * std::mem::size_of::<SubgroupProducer>());
}
