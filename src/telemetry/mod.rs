//! What ferry reports about itself: counters shared by the pipeline stages, Prometheus metrics and
//! progress output.

pub mod metrics;
pub mod progress;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};

/// Live counters for one table, written by the pipeline and read by the state flusher, the
/// metrics exporter and the progress display. Monotonic except where noted.
#[derive(Default, Debug)]
pub struct TableStats {
    /// Stream records (or snapshot items) whose writes are durable.
    pub records_applied: AtomicU64,
    /// Items written to the destination (after coalescing).
    pub items_written: AtomicU64,
    pub write_units: AtomicU64,
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
    /// ApproximateCreationDateTime (ms) of the newest applied stream record (gauge).
    pub newest_applied_ms: AtomicI64,
    /// Every open shard is idle and fully applied (gauge).
    pub caught_up: AtomicBool,
}
