//! The read pace at a shard's tip, under paused time: small pages of fresh records are read every
//! [`GATHER`] (so records gather into fuller pages, and fewer calls), full pages at once (a busy
//! shard, or one catching up, never waits).

use std::sync::atomic::AtomicBool;

use super::super::api::StartAt;
use super::super::consumer::{GATHER, GATHER_BELOW, IDLE_MAX, Outcome};
use super::long_runs::one_shard;
use super::*;
use crate::checkpoint::OrderedAck;

/// One open shard that answers `pages` pages of `size` fresh records each, then SHARD_END; notes
/// when each read was asked for.
struct Tail {
    size: usize,
    pages: usize,
    script: Scripted,
    reads: Mutex<Vec<tokio::time::Instant>>,
}

impl StreamApi for Tail {
    async fn list_shards(&self, _: &str) -> Result<Listing> {
        unreachable!()
    }
    async fn iterator(&self, _: &str, _: &str, _: &StartAt) -> Result<String> {
        Ok("page-0".into())
    }
    async fn records(&self, iterator: &str) -> Result<Page> {
        let mut reads = self.reads.lock().unwrap();
        reads.push(tokio::time::Instant::now());
        let n: usize = iterator.strip_prefix("page-").unwrap().parse().unwrap();
        if n == self.pages {
            return Ok(Page {
                records: vec![],
                next: None,
            });
        }
        let records = (0..self.size)
            .map(|i| {
                let seq = (n * self.size + i + 1) as u64;
                self.script.record(&format!("k{seq}"), Some(seq as i64), seq)
            })
            .collect();
        Ok(Page {
            records,
            next: Some(format!("page-{}", n + 1)),
        })
    }
}

/// Reads a [`Tail`] of `pages` pages of `size` records (each of its own key) to its end; the gaps
/// between reads, and how many items the destination holds.
async fn read_tail(size: usize, pages: usize) -> (Vec<Duration>, usize) {
    let api = Arc::new(Tail {
        size,
        pages,
        script: Scripted::new(vec![], RecordingIo::default()),
        reads: Mutex::new(vec![]),
    });
    let io = RecordingIo::default();
    let ack = Arc::new(OrderedAck::new(None));
    let idle = Arc::new(AtomicBool::new(false));
    let (c, stats) = one_shard(api.clone(), &io, ack, idle, CancellationToken::new());
    assert_eq!(c.run().await.unwrap(), Outcome::Done);
    let reads = api.reads.lock().unwrap();
    assert_eq!(
        stats.read_calls.load(std::sync::atomic::Ordering::Relaxed),
        reads.len() as u64,
        "ferry_read_calls_total counts every GetRecords answered"
    );
    let gaps = reads.windows(2).map(|w| w[1] - w[0]).collect();
    let written = io.0.lock().unwrap().current.len();
    (gaps, written)
}

#[tokio::test(start_paused = true)]
async fn small_pages_at_the_tip_are_read_every_gather_interval_not_at_once() {
    let (gaps, written) = read_tail(5, 30).await;
    assert_eq!(written, 5 * 30, "every record applied");
    // The read after the last page finds SHARD_END; every read before it waited.
    assert_eq!(gaps.len(), 30);
    for (i, gap) in gaps.iter().enumerate() {
        assert!(
            *gap >= GATHER && *gap < IDLE_MAX,
            "read {} came {gap:?} after the one before: small fresh pages are read every {GATHER:?}",
            i + 1
        );
    }
}

#[tokio::test(start_paused = true)]
async fn full_pages_are_read_at_once_even_at_the_tip() {
    let (gaps, written) = read_tail(GATHER_BELOW, 30).await;
    assert_eq!(written, GATHER_BELOW * 30, "every record applied");
    assert!(
        gaps.iter().all(|g| g.is_zero()),
        "a busy shard waited between full pages: {gaps:?}"
    );
}
