//! What the load tool measures: a lock-free latency histogram, send timestamps carried in
//! payloads, and a relay process's CPU time and resident memory read from `/proc`.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Sub-buckets per power of two: values are kept to within 1/32 (about 3%).
const SUB: usize = 32;
/// Powers of two covered: up to 2^40 µs.
const POWERS: usize = 40;

/// Microseconds since the first call in this process (the clock send timestamps use).
pub fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// A histogram of microsecond values, safe to record into from many tasks at once.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..SUB * (POWERS + 1)).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let power = 63 - v.leading_zeros() as usize; // >= 5
    let shift = power - 5;
    let sub = ((v >> shift) as usize) - SUB; // 0..SUB
    ((power - 4) * SUB + sub).min(SUB * (POWERS + 1) - 1)
}

fn value_of(bucket: usize) -> u64 {
    if bucket < SUB {
        return bucket as u64;
    }
    let power = bucket / SUB + 4;
    let sub = (bucket % SUB) as u64;
    // The upper edge of the bucket.
    ((SUB as u64 + sub + 1) << (power - 5)) - 1
}

impl Histogram {
    /// Records one value.
    pub fn record(&self, us: u64) {
        self.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(us, Ordering::Relaxed);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The value at quantile `q` (0..=1), as the upper edge of its bucket; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return value_of(i).min(self.max.load(Ordering::Relaxed));
            }
        }
        self.max.load(Ordering::Relaxed)
    }

    /// p50, p90, p99 and max in milliseconds.
    pub fn summary(&self) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            samples: self.count(),
            p50_ms: ms(self.quantile(0.50)),
            p90_ms: ms(self.quantile(0.90)),
            p99_ms: ms(self.quantile(0.99)),
            max_ms: ms(self.max.load(Ordering::Relaxed)),
        }
    }
}

/// Publish-to-deliver latency percentiles.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Objects measured.
    pub samples: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

/// A payload of `size` bytes (at least 8) starting with the send time.
pub fn stamped(size: usize) -> bytes::Bytes {
    let mut v = vec![0u8; size.max(8)];
    v[..8].copy_from_slice(&now_us().to_be_bytes());
    v.into()
}

/// The send time a payload carries, if it has one.
pub fn stamp_of(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.get(..8)?.try_into().ok()?))
}

/// A process's CPU time and resident memory at one moment.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// utime + stime, µs.
    pub cpu_us: u64,
    /// VmRSS, KiB.
    pub rss_kib: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` if the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let tick = clock_ticks();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(ProcSample {
        cpu_us: (utime + stime) * 1_000_000 / tick,
        rss_kib,
    })
}

/// Clock ticks per second of `/proc` CPU times (USER_HZ, 100 on Linux).
fn clock_ticks() -> u64 {
    100
}

/// The least-squares slope of `(seconds, KiB)` points, in KiB/s.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_values_within_three_percent() {
        for v in [0u64, 1, 31, 32, 33, 100, 1000, 12_345, 1 << 30] {
            let edge = value_of(bucket_of(v));
            assert!(edge >= v, "{v} -> {edge}");
            assert!(edge as f64 <= v as f64 * 1.04 + 1.0, "{v} -> {edge}");
        }
    }

    #[test]
    fn quantiles() {
        let h = Histogram::default();
        for v in 1..=100 {
            h.record(v * 1000);
        }
        assert_eq!(h.count(), 100);
        let p50 = h.quantile(0.5);
        assert!((50_000..=52_000).contains(&p50), "{p50}");
        assert_eq!(h.quantile(1.0), 100_000);
        assert_eq!(stamp_of(&stamped(16)).map(|_| ()), Some(()));
        assert!((slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) - 2.0).abs() < 1e-9);
    }
}
