//! Where each table's readers are: snapshot segments (scan segments, or export files), stream
//! shards, and the SQS change buffer as last seen.

use super::rows::record;
use super::store::Store;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    pub segment: i64,
    pub done: bool,
    /// LastEvaluatedKey (DynamoDB JSON) of the last page whose items are all written.
    pub last_key: Option<String>,
    pub items: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShardRow {
    pub shard_id: String,
    pub parent_id: Option<String>,
    /// Sequence number of the last record durably applied (or skipped); resume after it.
    pub position: Option<String>,
    pub last_record_ms: Option<i64>,
    /// SHARD_END reached and every record acknowledged: children may start.
    pub done: bool,
    pub records: i64,
    /// Part of the shard tree recorded at the capture point.
    pub captured: bool,
}

/// A table's SQS change buffer as last seen by the daemon (`change_source = "sqs"`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    pub queue_url: String,
    /// ApproximateNumberOfMessages: waiting to be received.
    pub depth: Option<i64>,
    /// ApproximateNumberOfMessagesNotVisible: received, not yet deleted.
    pub in_flight: Option<i64>,
    /// Records dropped as older than the replay point (already in the snapshot, or before a
    /// replay point set on purpose).
    pub dropped: i64,
    /// The dead-letter queue watched (`queue_allow_dead_letter`), and its message count.
    pub dead_letter_url: Option<String>,
    pub dead_letter_depth: Option<i64>,
}

record!(SegmentRow in "segments", key 1: segment, done, last_key, items);
record!(ShardRow in "shards", key 1: shard_id, parent_id, position, last_record_ms, done, records, captured);
// `updated_ms`: when the daemon last looked; written, never read back.
record!(QueueRow in "queues", key 0: queue_url, depth, in_flight, dropped, dead_letter_url, dead_letter_depth;
    extra "updated_ms" = crate::clock::now_ms());

impl Store {
    pub fn queue(&self, table: &str) -> Result<Option<QueueRow>> {
        self.row(table)
    }

    pub fn put_queue(&self, table: &str, q: &QueueRow) -> Result<()> {
        self.put_rows(table, std::slice::from_ref(q))
    }

    pub fn segments(&self, table: &str) -> Result<Vec<SegmentRow>> {
        self.rows(table)
    }

    pub fn put_segment(&self, table: &str, s: &SegmentRow) -> Result<()> {
        self.put_rows(table, std::slice::from_ref(s))
    }

    pub fn shards(&self, table: &str) -> Result<Vec<ShardRow>> {
        self.rows(table)
    }

    /// Writes shard rows in one transaction (checkpoint flush, capture of the shard tree).
    pub fn put_shards(&self, table: &str, rows: &[ShardRow]) -> Result<()> {
        self.put_rows(table, rows)
    }

    pub fn clear_shards(&self, table: &str) -> Result<()> {
        self.with(|c| c.execute("DELETE FROM shards WHERE tbl = ?1", [table]).map(|_| ()))
    }
}
