//! Parallel segmented scan with consistent reads, written through the apply path.
//!
//! Each segment pages through its part of the table. Pages are pipelined (the next page is read
//! while the previous one is written); a segment's resume point (the page's LastEvaluatedKey) is
//! persisted only once every item up to it is durably written, so a restart re-copies at most the
//! pages that were in flight.
//!
//! Reads stay within the table's read budget ([`super::budget`]): each page is paid for with the
//! read units it consumed, and pages are kept small enough that reading ahead of the payment
//! cannot overshoot it by much. Source throttles are retried with backoff, never fatal.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::task::JoinSet;

use super::Loaded;
use super::budget::{self, ReadBudget};
use super::segment::{SegPos, SegmentReader};
use super::source::ScanSource;
use crate::apply::{Applier, Limiter};
use crate::checkpoint::lease::units::Offers;
use crate::checkpoint::{Capture, Lifecycle, OrderedAck, SegmentRow};
use crate::error::{Error, Result};
use crate::source::TableContext;

/// Items per segment aimed at when `scan_segments` is not set.
const ITEMS_PER_SEGMENT: u64 = 4_000;
/// Segments when the table's size is unknown or small.
const MIN_SEGMENTS: u32 = 16;
/// Segments read at once; the rest wait their turn.
const SEGMENTS_AT_ONCE: usize = 32;

/// TotalSegments for a scan of a table of about `items` items (DescribeTable's ItemCount,
/// refreshed about every six hours on AWS): the configured count when set, else one segment per
/// ~[`ITEMS_PER_SEGMENT`] items and at least [`MIN_SEGMENTS`].
///
/// Small segments cost no extra read units. They make a resumed snapshot lose less work, keep the
/// key-by-key work of `verify` behind one differing key small (only its segment's digest differs),
/// and matter on DynamoDB Local, whose scan pages get slower as a segment grows (measured at 200,000
/// items: 16 segments scan at 9k items/s, 64 at 22k/s).
pub fn segments_for(configured: Option<u32>, items: u64) -> u32 {
    configured.unwrap_or_else(|| {
        let by_size = items.div_ceil(ITEMS_PER_SEGMENT).min(1_000_000) as u32;
        by_size.max(MIN_SEGMENTS)
    })
}

pub struct ScanTask<S> {
    pub source: Arc<S>,
    /// The table's context, with a stop of its own ([`TableContext::child`]).
    pub ctx: TableContext,
    /// TotalSegments, as recorded at the capture point: a resumed scan must split the table the
    /// same way as the run that saved the segments' positions.
    pub segments: u32,
    /// The source's read budget, shared with the apply path's source reads.
    pub read_limiter: Arc<Limiter>,
    pub read_budget: ReadBudget,
    /// DescribeTable's TableSizeBytes and ItemCount, for page sizes and the expected time.
    pub table_bytes: u64,
    pub table_items: u64,
    /// Reads this segment only (the holder of its lease, with several workers).
    pub only: Option<i64>,
    /// With several workers: the segments are leased to them, and this task coordinates
    /// ([`super::spread`]) instead of reading.
    pub leasing: Option<Arc<dyn Offers>>,
}

struct Seg {
    row: SegmentRow,
    ack: Arc<OrderedAck<SegPos>>,
}

impl<S: ScanSource> super::BulkLoader for ScanTask<S> {
    /// The scan's positions are its segments' rows; it has nothing to record in the lifecycle.
    async fn load(self, _: &mut Lifecycle, capture: Capture) -> Result<Loaded> {
        let applier = self.ctx.applier();
        Ok(match self.run(applier).await? {
            true => Loaded::Complete(capture),
            false => Loaded::Stopped,
        })
    }
}

impl<S: ScanSource> ScanTask<S> {
    /// Copies every segment not yet done. Returns `true` when the whole table is copied, `false`
    /// when stopped first (progress is saved either way). Returns promptly on a stop or on the
    /// first failure (of a segment or of the apply path); no reader outlives it.
    pub async fn run(self, applier: Applier) -> Result<bool> {
        if let Some(leasing) = self.leasing.clone() {
            applier.finish().await?;
            return self.coordinate(leasing.as_ref()).await;
        }
        let applier = Arc::new(applier);
        let saved: HashMap<i64, SegmentRow> = self
            .ctx
            .store
            .segments(&self.ctx.table)
            .await?
            .into_iter()
            .map(|s| (s.segment, s))
            .collect();
        if self.only.is_none() {
            self.log_expected_time(saved.values().map(|r| r.items.max(0) as u64).sum());
        }
        let read_units = Arc::new(AtomicU64::new(0));
        let started = tokio::time::Instant::now();
        let (mut segs, tasks) = self.spawn_readers(&saved, &applier, &read_units);
        self.flush(&mut segs).await?;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut first_err = self.join_readers(tasks, &applier, &mut segs, &mut tick).await?;
        // Every page is read; the writes may still be draining. Progress keeps being saved.
        let applier = Arc::try_unwrap(applier).map_err(|_| Error::fatal("apply path still shared after the scan"))?;
        let finish = applier.finish();
        tokio::pin!(finish);
        let drained = loop {
            tokio::select! {
                r = &mut finish => break r,
                _ = tick.tick() => { self.flush(&mut segs).await?; }
            }
        };
        if let Err(e) = drained {
            crate::error::keep_first(&mut first_err, e);
        }
        let done = self.flush(&mut segs).await?;
        self.log_read_units(read_units.load(Relaxed), started.elapsed().as_secs_f64());
        match first_err {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    /// A reader task for every segment not yet done (started in order, [`SEGMENTS_AT_ONCE`] at a
    /// time, as earlier ones finish), and every segment's progress.
    fn spawn_readers(
        &self,
        saved: &HashMap<i64, SegmentRow>,
        applier: &Arc<Applier>,
        read_units: &Arc<AtomicU64>,
    ) -> (Vec<Seg>, JoinSet<Result<()>>) {
        let pending = self.mine().filter(|i| !saved.get(i).is_some_and(|r| r.done)).count();
        let limit = budget::page_limit(
            self.read_budget.units_per_second,
            pending.min(SEGMENTS_AT_ONCE),
            self.table_bytes.checked_div(self.table_items).unwrap_or(1024),
        );
        let mut segs = Vec::new();
        let mut tasks = JoinSet::new();
        let turns = Arc::new(tokio::sync::Semaphore::new(SEGMENTS_AT_ONCE));
        for i in self.mine() {
            let row = saved.get(&i).cloned().unwrap_or(SegmentRow {
                segment: i,
                done: false,
                last_key: None,
                items: 0,
            });
            let ack = Arc::new(OrderedAck::new(None));
            if !row.done {
                let reader = SegmentReader {
                    source: self.source.clone(),
                    table: self.ctx.table.clone(),
                    segment: i as i32,
                    total: self.segments as i32,
                    limit,
                    start: row.last_key.clone(),
                    items_before: row.items,
                    key_names: self.ctx.key_names.clone(),
                    applier: applier.clone(),
                    ack: ack.clone(),
                    stop: self.ctx.stop.clone(),
                    limiter: self.read_limiter.clone(),
                    read_units: read_units.clone(),
                    stats: self.ctx.stats.clone(),
                };
                let (turns, stop) = (turns.clone(), self.ctx.stop.clone());
                tasks.spawn(async move {
                    let _turn = tokio::select! {
                        t = turns.acquire_owned() => t.map_err(|_| Error::fatal("scan turns closed"))?,
                        _ = stop.cancelled() => return Ok(()),
                    };
                    reader.run().await
                });
            }
            segs.push(Seg { row, ack });
        }
        (segs, tasks)
    }

    /// Waits for every reader, saving progress every tick; the first failure (of a reader or of
    /// the apply path) stops the others, and is returned.
    async fn join_readers(
        &self,
        mut tasks: JoinSet<Result<()>>,
        applier: &Applier,
        segs: &mut [Seg],
        tick: &mut tokio::time::Interval,
    ) -> Result<Option<Error>> {
        let mut first_err = None;
        loop {
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    None => break,
                    Some(Ok(Ok(()))) => {}
                    Some(Ok(Err(e))) => { crate::error::keep_first(&mut first_err, e); self.ctx.stop.cancel(); }
                    Some(Err(e)) => { crate::error::keep_first(&mut first_err, Error::fatal(format!("scan segment panicked: {e}"))); self.ctx.stop.cancel(); }
                },
                _ = tick.tick() => { self.flush(segs).await?; }
                // Once stopped, this arm is off: a completed future polled in a loop would spin
                // (and, on one worker, starve the readers it waits for).
                _ = applier.failed.cancelled(), if !self.ctx.stop.is_cancelled() => { self.ctx.stop.cancel(); }
            }
        }
        Ok(first_err)
    }

    /// The segments this task reads: all, or its one.
    fn mine(&self) -> impl Iterator<Item = i64> + use<S> {
        let only = self.only;
        (0..self.segments as i64).filter(move |i| only.is_none_or(|o| o == *i))
    }

    fn log_read_units(&self, units: u64, secs: f64) {
        tracing::info!(
            table = %self.ctx.table,
            read_units = units,
            seconds = secs.round(),
            units_per_second = (units as f64 / secs.max(1.0)).round(),
            budget = self.read_budget.units_per_second,
            "snapshot scan read {units} read units in {}", crate::clock::human(secs)
        );
    }

    /// Logs the budget and the time the rest of the scan should take at it.
    fn log_expected_time(&self, items_done: u64) {
        let left = if self.table_items == 0 {
            self.table_bytes
        } else {
            let share = 1.0 - (items_done as f64 / self.table_items as f64).min(1.0);
            (self.table_bytes as f64 * share) as u64
        };
        let b = &self.read_budget;
        match budget::expected_seconds(left, b.units_per_second) {
            Some(s) => tracing::info!(
                table = %self.ctx.table,
                budget = b.units_per_second,
                "snapshot scan: read budget {} units/s ({}): ~{:.0} read units left, expected ~{} (DescribeTable's size, refreshed about every 6 h)",
                b.units_per_second, b.basis, budget::scan_units(left), crate::clock::human(s)
            ),
            None => tracing::info!(table = %self.ctx.table, "snapshot scan: read budget {}", b.basis),
        }
    }

    /// Persists the durable resume point of each segment that moved; returns whether all
    /// segments are done.
    async fn flush(&self, segs: &mut [Seg]) -> Result<bool> {
        let mut all_done = true;
        let mut items = 0;
        for s in segs.iter_mut() {
            if let Some(p) = s.ack.committed() {
                let row = SegmentRow {
                    segment: s.row.segment,
                    done: p.next.is_none(),
                    last_key: p.next,
                    items: p.items,
                };
                if row != s.row {
                    self.ctx.store.put_segment(&self.ctx.table, &row).await?;
                    s.row = row;
                }
            }
            all_done &= s.row.done;
            items += s.row.items;
        }
        self.ctx.stats.snapshot_items.store(items as u64, Relaxed);
        Ok(all_done)
    }
}

#[cfg(test)]
mod tests {
    use super::segments_for;

    #[test]
    fn segments_are_sized_from_the_table_unless_configured() {
        assert_eq!(segments_for(None, 0), 16);
        assert_eq!(segments_for(None, 50_000), 16);
        assert_eq!(segments_for(None, 1_000_000), 250);
        assert_eq!(segments_for(None, u64::MAX), 1_000_000);
        assert_eq!(segments_for(Some(4), 1_000_000), 4);
    }
}
