//! Where each table's readers are: snapshot segments (scan segments, or export files), stream
//! shards, and the SQS change buffer as last seen.

use rusqlite::{OptionalExtension, params};

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

impl Store {
    pub fn queue(&self, table: &str) -> Result<Option<QueueRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT queue_url, depth, in_flight, dropped, dead_letter_url, dead_letter_depth FROM queues WHERE tbl = ?1",
                [table],
                |r| {
                    Ok(QueueRow {
                        queue_url: r.get(0)?,
                        depth: r.get(1)?,
                        in_flight: r.get(2)?,
                        dropped: r.get(3)?,
                        dead_letter_url: r.get(4)?,
                        dead_letter_depth: r.get(5)?,
                    })
                },
            )
            .optional()
        })
    }

    pub fn put_queue(&self, table: &str, q: &QueueRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO queues (tbl, queue_url, depth, in_flight, dropped, updated_ms, dead_letter_url, dead_letter_depth)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8)
                 ON CONFLICT(tbl) DO UPDATE SET queue_url=?2, depth=?3, in_flight=?4, dropped=?5, updated_ms=?6,
                 dead_letter_url=?7, dead_letter_depth=?8",
                params![
                    table,
                    q.queue_url,
                    q.depth,
                    q.in_flight,
                    q.dropped,
                    crate::clock::now_ms(),
                    q.dead_letter_url,
                    q.dead_letter_depth
                ],
            )
            .map(|_| ())
        })
    }

    pub fn segments(&self, table: &str) -> Result<Vec<SegmentRow>> {
        self.with(|c| {
            let mut st =
                c.prepare("SELECT segment, done, last_key, items FROM segments WHERE tbl = ?1 ORDER BY segment")?;
            st.query_map([table], |r| {
                Ok(SegmentRow {
                    segment: r.get(0)?,
                    done: r.get(1)?,
                    last_key: r.get(2)?,
                    items: r.get(3)?,
                })
            })?
            .collect()
        })
    }

    pub fn put_segment(&self, table: &str, s: &SegmentRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO segments (tbl, segment, done, last_key, items) VALUES (?1,?2,?3,?4,?5)
                 ON CONFLICT(tbl, segment) DO UPDATE SET done=?3, last_key=?4, items=?5",
                params![table, s.segment, s.done, s.last_key, s.items],
            )
            .map(|_| ())
        })
    }

    pub fn shards(&self, table: &str) -> Result<Vec<ShardRow>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT shard_id, parent_id, position, last_record_ms, done, records, captured
                 FROM shards WHERE tbl = ?1 ORDER BY shard_id",
            )?;
            st.query_map([table], |r| {
                Ok(ShardRow {
                    shard_id: r.get(0)?,
                    parent_id: r.get(1)?,
                    position: r.get(2)?,
                    last_record_ms: r.get(3)?,
                    done: r.get(4)?,
                    records: r.get(5)?,
                    captured: r.get(6)?,
                })
            })?
            .collect()
        })
    }

    /// Writes shard rows in one transaction (checkpoint flush, capture of the shard tree).
    pub fn put_shards(&self, table: &str, rows: &[ShardRow]) -> Result<()> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO shards (tbl, shard_id, parent_id, position, last_record_ms, done, records, captured)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8)
                 ON CONFLICT(tbl, shard_id) DO UPDATE SET parent_id=?3, position=?4, last_record_ms=?5,
                   done=?6, records=?7, captured=?8",
            )?;
            for s in rows {
                st.execute(params![
                    table,
                    s.shard_id,
                    s.parent_id,
                    s.position,
                    s.last_record_ms,
                    s.done,
                    s.records,
                    s.captured
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
