//! One shard's consumer, a state machine in the manner of KCL's:
//!
//! ```text
//!   WaitingOnParents ──(lineage: parent done)──▶ Initializing ──iterator──▶ Processing ─┐
//!                                                     ▲                      │  ▲     │ records:
//!                                                     └──iterator expired────┘  └─────┘ submit, poll again
//!                                                                            │
//!                                                          NextShardIterator = null
//!                                                                            ▼
//!                                                ShardEnd ──every record acknowledged──▶ Done
//! ```
//!
//! WaitingOnParents is the scheduler's job ([`super::lineage`]); a consumer is spawned when its
//! shard is ready. Polling is adaptive: at once while records come, backing off to 250 ms idle.
//! A trimmed position is a gap and stops the table with guidance; nothing is skipped silently.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::api::{StartAt, StreamApi};
use super::record::{self, View};
use super::wire::RawRecord;
use crate::apply::{Applier, Change, Ticket};
use crate::checkpoint::OrderedAck;
use crate::error::{Error, Result};
use crate::retry::Retrier;
use crate::telemetry::TableStats;

/// A resumable stream position: the record's sequence number and approximate time.
#[derive(Debug, Clone, PartialEq)]
pub struct Pos {
    pub seq: String,
    pub time_ms: i64,
}

pub const IDLE_MAX: Duration = Duration::from_millis(250);
const IDLE_MIN: Duration = Duration::from_millis(20);

#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Read to SHARD_END and every record durably applied.
    Done,
    /// Asked to stop; the checkpoint covers what was applied.
    Stopped,
}

pub struct ShardConsumer<S> {
    pub api: Arc<S>,
    pub stream_arn: String,
    pub shard_id: String,
    /// The table, for messages.
    pub table: String,
    pub start: StartAt,
    /// Records older than this are already in the snapshot: acknowledged without a write.
    pub replay_from_ms: i64,
    pub view: View,
    pub key_names: Arc<[String]>,
    pub applier: Arc<Applier>,
    pub ack: Arc<OrderedAck<Pos>>,
    pub stats: Arc<TableStats>,
    /// Last read returned nothing and nothing is in flight.
    pub idle: Arc<AtomicBool>,
    pub stop: CancellationToken,
}

/// Turns one GetRecords page into changes: every record takes its place in `ack`, in order, and
/// records older than the replay point (already in the snapshot) are acknowledged without a write.
///
/// The whole page is registered at once (one lock) so that the applier can queue it with one
/// operation per lane. Also returns the page's last sequence number (where a refreshed iterator
/// resumes).
pub fn page_changes(
    records: Vec<RawRecord>,
    view: View,
    key_names: &[String],
    replay_from_ms: i64,
    ack: &Arc<OrderedAck<Pos>>,
) -> Result<(Vec<Change>, Option<String>)> {
    let mut slots = Vec::with_capacity(records.len());
    let mut parsed = Vec::with_capacity(records.len());
    for rec in records {
        let c = record::parse(rec, view, key_names)?;
        let applied = !crate::source::before_replay_point(c.time_ms, replay_from_ms);
        slots.push((
            Some(Pos {
                seq: c.seq,
                time_ms: c.time_ms,
            }),
            applied,
        ));
        if applied {
            parsed.push((slots.len() as u64 - 1, c.key, c.op));
        }
    }
    let last = slots.last().and_then(|(p, _)| p.as_ref().map(|p| p.seq.clone()));
    let first = ack.register_all(slots);
    let changes = parsed
        .into_iter()
        .map(|(off, key, op)| Change {
            key,
            op,
            ticket: Ticket {
                sink: ack.clone(),
                index: first + off,
            },
        })
        .collect();
    Ok((changes, last))
}

impl<S: StreamApi> ShardConsumer<S> {
    pub async fn run(self) -> Result<Outcome> {
        // Initializing
        let mut last_read = match &self.start {
            StartAt::After(seq) => Some(seq.clone()),
            StartAt::TrimHorizon => None,
        };
        let mut iter = self.open(&last_read).await?;
        let mut idle_wait = IDLE_MIN;
        let mut retrier = Retrier::daemon(format!("reading shard {}", self.shard_id), &self.stop, &self.stats);
        // Processing
        loop {
            if self.stop.is_cancelled() || self.applier.failed.is_cancelled() {
                return Ok(Outcome::Stopped);
            }
            let read_at = crate::checkpoint::now_ms();
            let page = match self.api.records(&iter).await {
                Ok(p) => {
                    retrier.succeeded();
                    p
                }
                Err(e) if e.code() == Some("ExpiredIteratorException") => {
                    iter = self.open(&last_read).await?;
                    continue;
                }
                Err(e) if e.code() == Some("TrimmedDataAccessException") => {
                    return Err(self.gap(&last_read, e));
                }
                Err(e) => match retrier.backoff(e).await {
                    Ok(()) => continue,
                    Err(e) if e.is_stopped() => return Ok(Outcome::Stopped),
                    Err(e) => {
                        let at = last_read
                            .as_deref()
                            .map_or("from its start".into(), |s| format!("after sequence number {s}"));
                        return Err(e.context(format!("shard {}, reading {at}", self.shard_id)));
                    }
                },
            };
            let got = page.records.len();
            let (changes, last) =
                page_changes(page.records, self.view, &self.key_names, self.replay_from_ms, &self.ack)
                    .map_err(|e| e.context(format!("table {} shard {}", self.table, self.shard_id)))?;
            if last.is_some() {
                last_read = last;
            }
            self.stats.records_read.fetch_add(got as u64, Relaxed);
            self.applier.submit_all(changes).await?;
            let Some(next) = page.next else {
                // ShardEnd: done only once everything read is durable.
                tokio::select! {
                    _ = self.ack.drained() => return Ok(Outcome::Done),
                    _ = self.applier.failed.cancelled() => return Ok(Outcome::Stopped),
                    _ = self.stop.cancelled() => return Ok(Outcome::Stopped),
                }
            };
            iter = next;
            if got > 0 {
                idle_wait = IDLE_MIN;
                self.idle.store(false, Relaxed);
            } else {
                // Nothing new at `read_at`: once what came before is acknowledged, the shard is
                // applied up to that moment (what `verify` waits for).
                self.ack.mark(read_at);
                self.idle.store(self.ack.outstanding() == 0, Relaxed);
                self.pause(idle_wait).await;
                idle_wait = (idle_wait * 2).min(IDLE_MAX);
            }
        }
    }

    async fn open(&self, last_read: &Option<String>) -> Result<String> {
        let at = match last_read {
            Some(seq) => StartAt::After(seq.clone()),
            None => StartAt::TrimHorizon,
        };
        let r = Retrier::daemon(format!("opening shard {}", self.shard_id), &self.stop, &self.stats)
            .run(|| self.api.iterator(&self.stream_arn, &self.shard_id, &at))
            .await;
        match r {
            Err(e) if e.code() == Some("TrimmedDataAccessException") => Err(self.gap(last_read, e)),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Err(Error::fatal(format!(
                "table {}: shard {} of stream {} no longer exists (trimmed or the stream was replaced); \
                 records ferry had not applied are lost to the stream. Re-run the table from a fresh snapshot.",
                self.table, self.shard_id, self.stream_arn
            ))),
            other => other,
        }
    }

    fn gap(&self, last_read: &Option<String>, e: Error) -> Error {
        let from = last_read
            .as_deref()
            .map_or("the start of the shard".to_string(), |s| format!("sequence number {s}"));
        Error::fatal(format!(
            "table {}: gap in stream {}: shard {} was trimmed past {from} before ferry applied it \
             (stream records are kept 24 h). The destination cannot be brought in sync from this stream: \
             re-run the table from a fresh snapshot (delete its rows from the state store and empty the \
             destination), or buffer changes in SQS for longer outages. ({})",
            self.table,
            self.stream_arn,
            self.shard_id,
            e.message()
        ))
    }

    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.stop.cancelled() => {}
        }
    }
}
