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
//! shard is ready. Polling is adaptive: at once while full pages come (far behind, or a busy
//! shard), every [`GATHER`] while small pages of fresh records come (at the tip of a shard with a
//! modest write rate), backing off to 250 ms idle.
//!
//! Why gather at the tip: read at once, a shard taking 1,000 writes/s on the rig answered 116–132
//! pages a second of 7–9 records, each call costing the source (and on AWS, billed per call);
//! every 20 ms it takes 40–45, and a record waits at most 20 ms more. A shard on AWS takes at most
//! a partition's ~1,000 writes/s, far below what 50 reads a second of up to 100 records carry.
//!
//! A trimmed position is a gap and stops the table with guidance; nothing is skipped silently; a
//! shard read from its trim horizon first proves that nothing it needs was trimmed ([`super::gap`]).
//!
//! Caught-up: GetRecords may answer an empty page while records remain further in the shard (a
//! position far behind), so an empty page alone is not "caught up". The shard is at its tip, idle
//! and applied up to the read's time only when the iterator did not move, when the page before
//! held recent records (within [`NEAR_TIP`]), or after [`TIP_PAGES`] empty pages in a row. Until
//! then an empty page is read past at once, without sleeping. (Neither AWS nor DynamoDB Local
//! hands back the same iterator at the tip: both encode the time of the call, so the iterator's
//! position cannot be watched directly.)

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::api::{StartAt, StreamApi};
use super::gap::{Clock, Horizon};
use super::record;
use super::wire::RawRecord;
use crate::apply::{Applier, Change, Ticket};
use crate::checkpoint::OrderedAck;
use crate::discover::View;
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
/// At the tip, the least time from one read's start to the next while pages are small.
pub const GATHER: Duration = Duration::from_millis(20);
/// A page this full is read past at once even at the tip: the shard is busy enough that
/// waiting would only build a backlog.
pub const GATHER_BELOW: usize = 100;
/// Records this recent put the read position at the shard's tip (DynamoDB Local rounds record
/// times down to the minute).
pub const NEAR_TIP: Duration = Duration::from_secs(120);
/// Empty pages in a row, read at once, after which the shard counts as at its tip.
pub const TIP_PAGES: u32 = 10;

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
    /// With a trim-horizon start: what proves that nothing ferry needs was trimmed.
    pub horizon: Option<Horizon>,
    pub clock: Clock,
    /// Records older than this are already in the snapshot: acknowledged without a write.
    pub replay_from_ms: i64,
    pub view: View,
    pub key_names: Arc<[String]>,
    pub applier: Arc<Applier>,
    pub ack: Arc<OrderedAck<Pos>>,
    pub stats: Arc<TableStats>,
    /// At the shard's tip with nothing in flight.
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

/// Whether the read position is at the shard's tip (see the module docs), and the idle poll
/// interval there.
struct Tip {
    /// A new consumer may start far behind the tip.
    at_tip: bool,
    /// Empty pages in a row.
    empty_run: u32,
    idle_wait: Duration,
}

impl Default for Tip {
    fn default() -> Self {
        Tip {
            at_tip: false,
            empty_run: 0,
            idle_wait: IDLE_MIN,
        }
    }
}

impl Tip {
    /// After a page of `got` records (the newest created at `newest`) read at `read_at`, the
    /// iterator having `moved` or not: `true` when the shard is idle at its tip (poll again after
    /// [`Tip::idle_wait`]), `false` to read on at once.
    fn after_page(&mut self, got: usize, newest: Option<i64>, read_at: i64, moved: bool) -> bool {
        if got > 0 {
            self.idle_wait = IDLE_MIN;
            self.empty_run = 0;
            self.at_tip = newest.is_some_and(|t| t >= read_at - NEAR_TIP.as_millis() as i64);
            return false;
        }
        self.empty_run = self.empty_run.saturating_add(1);
        self.at_tip |= !moved || self.empty_run >= TIP_PAGES;
        self.at_tip
    }
}

impl<S: StreamApi> ShardConsumer<S> {
    pub async fn run(self) -> Result<Outcome> {
        // Initializing
        let mut last_read = match &self.start {
            StartAt::After(seq) => Some(seq.clone()),
            StartAt::TrimHorizon => None,
        };
        let mut unproven = match (&self.start, &self.horizon) {
            (StartAt::TrimHorizon, Some(h)) if !h.safe_at(self.clock.now_ms()) => Some(h),
            _ => None,
        };
        let mut iter = self.open(&last_read).await?;
        let mut retrier = Retrier::daemon(format!("reading shard {}", self.shard_id), &self.stop, &self.stats);
        let mut tip = Tip::default();
        // Processing
        loop {
            if self.stop.is_cancelled() || self.applier.failed.is_cancelled() {
                return Ok(Outcome::Stopped);
            }
            let read_at = self.clock.now_ms();
            let asked = tokio::time::Instant::now();
            let page = match self.api.records(&iter).await {
                Ok(p) => {
                    retrier.succeeded();
                    self.stats.read_calls.fetch_add(1, Relaxed);
                    p
                }
                Err(e) => match self.read_failed(e, &mut iter, &last_read, &mut retrier).await? {
                    Some(outcome) => return Ok(outcome),
                    None => continue,
                },
            };
            if let Some(h) = unproven {
                unproven = self.prove(h, &page)?;
            }
            let got = page.records.len();
            let newest = page.records.last().map(|r| r.time_ms);
            let read = asked.elapsed();
            self.submit(page.records, &mut last_read).await?;
            tracing::trace!(shard = %self.shard_id, got, read_ms = read.as_millis() as u64, queued_ms = (asked.elapsed() - read).as_millis() as u64, "page");
            let Some(next) = page.next else {
                return Ok(self.shard_end().await);
            };
            let moved = next != iter;
            iter = next;
            if !tip.after_page(got, newest, read_at, moved) {
                // Records came, or possibly far behind: read on, claiming nothing.
                self.idle.store(false, Relaxed);
                if tip.at_tip && got < GATHER_BELOW {
                    self.pause(GATHER.saturating_sub(asked.elapsed())).await;
                }
                continue;
            }
            // Nothing new at `read_at` at the tip: once what came before is acknowledged, the
            // shard is applied up to that moment (what `verify` waits for). Not while a gap
            // before the first record is still possible.
            if unproven.is_none() {
                self.ack.mark(read_at);
                self.idle.store(self.ack.outstanding() == 0, Relaxed);
            }
            self.pause(tip.idle_wait).await;
            tip.idle_wait = (tip.idle_wait * 2).min(IDLE_MAX);
        }
    }

    /// After a failed GetRecords: re-opens an expired iterator after the last record read, stops
    /// on a trimmed position (a gap), otherwise backs off. `Some` when the consumer ends, `None`
    /// to read again.
    async fn read_failed(
        &self,
        e: Error,
        iter: &mut String,
        last_read: &Option<String>,
        retrier: &mut Retrier,
    ) -> Result<Option<Outcome>> {
        match e.code() {
            Some("ExpiredIteratorException") => {
                *iter = self.open(last_read).await?;
                return Ok(None);
            }
            Some("TrimmedDataAccessException") => return Err(self.gap(last_read, e)),
            _ => {}
        }
        match retrier.backoff(e).await {
            Ok(()) => Ok(None),
            Err(e) if e.is_stopped() => Ok(Some(Outcome::Stopped)),
            Err(e) => {
                let at = last_read
                    .as_deref()
                    .map_or("from its start".into(), |s| format!("after sequence number {s}"));
                Err(e.context(format!("shard {}, reading {at}", self.shard_id)))
            }
        }
    }

    /// While a gap before the first record is possible: the first record read proves there is
    /// none (the horizon is settled: `None`), or shows one.
    fn prove<'h>(&self, h: &'h Horizon, page: &super::api::Page) -> Result<Option<&'h Horizon>> {
        match page.records.first() {
            Some(r) if h.first_record_proves(&r.seq, r.time_ms) => Ok(None),
            Some(r) => Err(self.horizon_gap(h, Some(&r.seq))),
            None if page.next.is_none() => Err(self.horizon_gap(h, None)),
            None => Ok(Some(h)),
        }
    }

    /// Submits a page's changes; `last_read` moves to its last record.
    async fn submit(&self, records: Vec<RawRecord>, last_read: &mut Option<String>) -> Result<()> {
        let got = records.len();
        let (changes, last) = page_changes(records, self.view, &self.key_names, self.replay_from_ms, &self.ack)
            .map_err(|e| e.context(format!("table {} shard {}", self.table, self.shard_id)))?;
        if last.is_some() {
            *last_read = last;
        }
        self.stats.records_read.fetch_add(got as u64, Relaxed);
        self.applier.submit_all(changes).await
    }

    /// ShardEnd: done only once everything read is durable.
    async fn shard_end(&self) -> Outcome {
        tokio::select! {
            _ = self.ack.drained() => Outcome::Done,
            _ = self.applier.failed.cancelled() => Outcome::Stopped,
            _ = self.stop.cancelled() => Outcome::Stopped,
        }
    }

    /// A shard read from its trim horizon whose first record (`None`: an ended shard without
    /// records) cannot show that nothing ferry needs was trimmed before it.
    fn horizon_gap(&self, h: &Horizon, first: Option<&str>) -> Error {
        let seen = first.map_or("no record at all".to_string(), |s| format!("record {s} first"));
        Error::fatal(format!(
            "table {}: possible gap in stream {}: shard {} was never read and its trim horizon shows {seen}; \
             the replay point is more than 24 h old and the shard may be older than 24 h, so records \
             ferry needs may have been trimmed before ferry read them (shard's first sequence number: {}). \
             The destination cannot be proven in sync from this stream: re-run the table from a fresh \
             snapshot, or buffer changes in SQS when ferry may be stopped for longer than a day.",
            self.table,
            self.stream_arn,
            self.shard_id,
            h.first_seq.as_deref().unwrap_or("unknown")
        ))
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
