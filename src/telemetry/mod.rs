//! What ferry reports about itself: counters shared by the pipeline stages, Prometheus metrics and
//! progress output.

pub mod eta;
pub mod health;
pub mod metrics;
pub mod progress;

use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};

pub use eta::Eta;

pub use health::Health;

use crate::checkpoint::Phase;

/// Live counters for one table, written by the pipeline and read by the state flusher, the
/// metrics exporter and the progress display. Monotonic except where noted.
#[derive(Debug)]
pub struct TableStats {
    /// Set once the run has loaded the counters the last run saved: published before, the fresh
    /// zeros would overwrite them.
    pub resumed: AtomicBool,
    /// Stream records (or snapshot items) whose writes are durable.
    pub records_applied: AtomicU64,
    /// Items written to the destination (after coalescing).
    pub items_written: AtomicU64,
    pub write_units: AtomicU64,
    /// BatchWriteItem calls the destination answered (items written over calls: how full batches are).
    pub write_calls: AtomicU64,
    /// Batches the apply path may write at once now ([`crate::apply::concurrency`]; gauge).
    pub write_concurrency: AtomicU64,
    /// Transient failures retried.
    pub retries: AtomicU64,
    /// Throttling errors and UnprocessedItems responses.
    pub throttles: AtomicU64,
    /// Records merged into a later change to the same key before being written.
    pub coalesced: AtomicU64,
    /// Items copied by the snapshot.
    pub snapshot_items: AtomicU64,
    /// Stream records read, including those skipped as older than the replay point.
    pub records_read: AtomicU64,
    /// GetRecords (or SQS ReceiveMessage) calls answered: what reading costs, since AWS bills
    /// stream reads per call.
    pub read_calls: AtomicU64,
    /// ApproximateCreationDateTime (ms) of the newest applied stream record (gauge).
    pub newest_applied_ms: AtomicI64,
    /// Every open shard is idle and fully applied (gauge).
    pub caught_up: AtomicBool,
    /// Every change written to the source before this time (ms) is durable at the destination
    /// (0 = not known yet). A watermark: it moves while changes keep flowing.
    pub applied_as_of_ms: AtomicI64,
    /// Records dropped as older than the replay point (SQS change source).
    pub records_dropped: AtomicU64,
    /// SQS change source: messages waiting in the queue (gauge; -1 = not an SQS source or not
    /// yet known).
    pub queue_depth: AtomicI64,
    /// SQS change source: messages received and not yet deleted (gauge).
    pub queue_in_flight: AtomicI64,
    /// Whether calls are failing and being retried right now (see [`Health`]).
    pub health: Health,
    /// SQS change source with `queue_allow_dead_letter`: messages in the dead-letter queue
    /// (gauge; -1 = none watched or not yet known).
    pub dead_letter_depth: AtomicI64,
    /// The table's lifecycle phase, as last persisted (`None` before its run starts).
    pub phase: Mutex<Option<Phase>>,
    /// The oldest stream record (ms) the table still needs: its capture's replay point (0 = none yet).
    pub replay_from_ms: AtomicI64,
    /// Items the bulk load expects: the export's count, or the source's approximate ItemCount
    /// (-1 = not known).
    pub snapshot_expected: AtomicI64,
    /// The bulk load's recent rate, for its ETA.
    pub snapshot_eta: Mutex<Eta>,
}

impl Default for TableStats {
    fn default() -> Self {
        Self {
            resumed: AtomicBool::new(false),
            records_applied: AtomicU64::new(0),
            items_written: AtomicU64::new(0),
            write_units: AtomicU64::new(0),
            write_calls: AtomicU64::new(0),
            write_concurrency: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            throttles: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            snapshot_items: AtomicU64::new(0),
            records_read: AtomicU64::new(0),
            read_calls: AtomicU64::new(0),
            newest_applied_ms: AtomicI64::new(0),
            caught_up: AtomicBool::new(false),
            applied_as_of_ms: AtomicI64::new(0),
            records_dropped: AtomicU64::new(0),
            queue_depth: AtomicI64::new(-1),
            queue_in_flight: AtomicI64::new(-1),
            health: Health::default(),
            dead_letter_depth: AtomicI64::new(-1),
            phase: Mutex::new(None),
            replay_from_ms: AtomicI64::new(0),
            snapshot_expected: AtomicI64::new(-1),
            snapshot_eta: Mutex::new(Eta::default()),
        }
    }
}

impl TableStats {
    /// What the metrics show of the table's persisted row: its phase and replay point.
    pub fn show_row(&self, phase: Phase, replay_from_ms: Option<i64>) {
        *self.phase.lock().expect("phase lock") = Some(phase);
        self.replay_from_ms.store(replay_from_ms.unwrap_or(0), Relaxed);
    }
}

/// Replication lag in ms: 0 when caught up, else the smaller of now minus the applied-as-of
/// watermark (never below the age of the oldest change not yet applied, but it moves only at
/// reads that find nothing new) and now minus the newest applied record's creation time (coarse
/// where record times are rounded: DynamoDB Local cuts them to the minute). `None` when neither is
/// known yet.
pub fn lag_ms(
    now_ms: i64,
    caught_up: bool,
    newest_applied_ms: Option<i64>,
    applied_as_of_ms: Option<i64>,
) -> Option<i64> {
    if caught_up {
        return Some(0);
    }
    let bounds = newest_applied_ms.into_iter().chain(applied_as_of_ms);
    bounds.map(|t| (now_ms - t).max(0)).min()
}

#[cfg(test)]
mod tests {
    use super::lag_ms;

    #[test]
    fn lag_is_the_tighter_of_the_two_bounds() {
        assert_eq!(lag_ms(100_000, true, Some(1), None), Some(0));
        assert_eq!(lag_ms(100_000, false, None, None), None);
        // Record time cut to the minute: 60 s old on paper, the watermark says 0.5 s.
        assert_eq!(lag_ms(100_000, false, Some(40_000), Some(99_500)), Some(500));
        assert_eq!(lag_ms(100_000, false, Some(98_000), Some(90_000)), Some(2_000));
        assert_eq!(lag_ms(100_000, false, None, Some(99_000)), Some(1_000));
    }
}
