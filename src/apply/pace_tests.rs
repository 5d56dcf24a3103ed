//! The lanes and the adaptive limit together: how many batches reach the destination at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use super::*;
use crate::apply::test_support::{change, put, write_only};
use crate::error::Kind;

/// A destination `delay` away that counts the batches in flight, and throttles every batch while
/// `throttling` is set.
struct Far {
    delay: Duration,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    throttling: AtomicBool,
}

impl ApplyIo for Far {
    async fn write_batch(&self, _: &[WriteOp]) -> Result<Vec<WriteOp>> {
        let n = self.in_flight.fetch_add(1, Relaxed) + 1;
        self.peak.fetch_max(n, Relaxed);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Relaxed);
        if self.throttling.load(Relaxed) {
            return Err(Error::new(Kind::Throttled, "ProvisionedThroughputExceededException"));
        }
        Ok(Vec::new())
    }
    write_only!();
}

/// Waits (simulated time) until `cond` holds; fails after `within`.
async fn until(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let end = tokio::time::Instant::now() + within;
    while !cond() {
        assert!(tokio::time::Instant::now() < end, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// 50 ms away, the lanes come to write more than the 16 batches at once ferry used to; when the
/// destination throttles, fewer than 16 × 0.7; nothing is lost either way.
#[tokio::test(start_paused = true)]
async fn batches_in_flight_follow_what_the_destination_takes() {
    let io = Arc::new(Far {
        delay: Duration::from_millis(50),
        in_flight: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
        throttling: AtomicBool::new(false),
    });
    let stats = Arc::new(TableStats::default());
    let applier = Arc::new(Applier::start(io.clone(), 64, Arc::new(Limiter::new(0)), stats.clone()));
    let feeding = Arc::new(AtomicBool::new(true));
    let feeder = tokio::spawn({
        let (applier, feeding) = (applier.clone(), feeding.clone());
        async move {
            let mut i = 0usize;
            while feeding.load(Relaxed) {
                let page = (i..i + 500).map(|n| change(&format!("k{}", n % 20_000), put(n), n as u64));
                applier.submit_all(page.collect()).await.unwrap();
                i += 500;
            }
        }
    });
    let limit = || stats.write_concurrency.load(Relaxed) as usize;
    until("more than 16 in flight", Duration::from_secs(30), || {
        io.peak.load(Relaxed) > 16 && limit() > 16
    })
    .await;

    io.throttling.store(true, Relaxed);
    until("the limit cut", Duration::from_secs(30), || limit() <= 11).await;
    // Writes sent before the cut come back (retrying) and their extra slots are retired.
    tokio::time::sleep(Duration::from_secs(30)).await;
    io.peak.store(0, Relaxed);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (peak, now) = (io.peak.load(Relaxed), limit());
    assert!((1..=11).contains(&peak), "while throttled: {peak} at once, limit {now}");

    io.throttling.store(false, Relaxed);
    feeding.store(false, Relaxed);
    feeder.await.unwrap();
    let applier = Arc::into_inner(applier).expect("the feeder is done");
    applier.finish().await.unwrap();
    assert!(stats.throttles.load(Relaxed) > 0);
}
