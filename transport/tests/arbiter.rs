//! Send arbitration (§7.2) against a stand-in for QUIC connection-level flow control: every
//! write takes credit from one shared pool, which the "peer" refills in small steps. Time is
//! tokio's paused clock, so the arbiter's timings are judged without the machine's load.

use bytes::Bytes;
use moqlink_model::GroupOrder;
use moqlink_transport::connection::{SendStream, StreamError};
use moqlink_transport::data::{stream_priority, SendArbiter};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// A stream whose writes wait for connection credit (one permit per byte), logging who wrote.
struct Credited {
    name: &'static str,
    credit: Arc<Semaphore>,
    log: Arc<Mutex<Vec<(&'static str, usize)>>>,
}

impl SendStream for Credited {
    async fn write(&mut self, buf: &[u8]) -> Result<(), StreamError> {
        self.write_chunk(Bytes::copy_from_slice(buf)).await
    }

    async fn write_chunk(&mut self, buf: Bytes) -> Result<(), StreamError> {
        // Like QUIC: the data is accepted as credit arrives, a piece at a time.
        let mut left = buf.len();
        while left > 0 {
            let take = left.min(1024);
            let permit = self.credit.acquire_many(take as u32).await.expect("open");
            permit.forget();
            self.log.lock().unwrap().push((self.name, take));
            left -= take;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn reset(&mut self, _code: u64) -> Result<(), StreamError> {
        Ok(())
    }

    fn set_priority(&self, _priority: i32) {}

    async fn stopped(&mut self) -> Option<u64> {
        std::future::pending().await
    }
}

const CHUNK: usize = 16 * 1024;
const CHUNKS: usize = 32;

/// Two writers of 512 KiB each, queued while there is no credit, then credit in 8 KiB steps.
async fn contend(high: i32, low: i32) -> Vec<(&'static str, usize)> {
    let arbiter = SendArbiter::new();
    let credit = Arc::new(Semaphore::new(0));
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (name, priority) in [("low", low), ("high", high)] {
        let slot = arbiter.register(priority);
        let mut stream = Credited {
            name,
            credit: credit.clone(),
            log: log.clone(),
        };
        tasks.push(tokio::spawn(async move {
            for _ in 0..CHUNKS {
                slot.send(&mut stream, Bytes::from(vec![0u8; CHUNK]))
                    .await
                    .unwrap();
            }
        }));
    }
    // Both writers block on the empty window long enough to be seen as stuck.
    tokio::time::sleep(Duration::from_millis(100)).await;
    while tasks.iter().any(|t| !t.is_finished()) {
        credit.add_permits(8 * 1024);
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let out = log.lock().unwrap().clone();
    out
}

/// Bytes the writer at (subscriber, publisher) priority `low` and group `low_group` had written
/// when the one at `high` (group 0) completed.
async fn low_share(high: (u8, u8), low: (u8, u8), low_group: u64) -> usize {
    let prio = |(s, p): (u8, u8), g| stream_priority(s, p, GroupOrder::Ascending, g);
    let log = contend(prio(high, 0), prio(low, low_group)).await;
    let total = CHUNK * CHUNKS;
    let (mut hi, mut lo) = (0, 0);
    for (name, n) in log {
        match name {
            "high" => hi += n,
            _ => lo += n,
        }
        if hi == total {
            return lo;
        }
    }
    panic!("the high writer never completed");
}

#[tokio::test(start_paused = true)]
async fn the_more_important_writer_takes_the_window_first() {
    // Subscriber Priority 10 against 200 (§7.2 rule 1): at most a few probes' worth of 512 KiB.
    let low = low_share((10, 128), (200, 128), 0).await;
    assert!(
        low <= 64 * 1024,
        "low wrote {low} bytes before high completed"
    );
}

#[tokio::test(start_paused = true)]
async fn publisher_priority_decides_between_equal_subscriber_priorities() {
    let low = low_share((128, 10), (128, 200), 0).await;
    assert!(
        low <= 64 * 1024,
        "low wrote {low} bytes before high completed"
    );
}

#[tokio::test(start_paused = true)]
async fn group_order_alone_does_not_starve_another_subscription() {
    // §7.2: subscriptions with equal priorities are unordered; both must progress. Group 0
    // against group 9 would rank the first higher in QUIC terms.
    let low = low_share((128, 128), (128, 128), 9).await;
    assert!(
        low >= 64 * 1024,
        "only {low} bytes of the other subscription before the first completed"
    );
}
