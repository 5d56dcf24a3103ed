//! A table's stream when its shards are leased to several workers (the DynamoDB state): the
//! holder of the table's lease coordinates and reads no record itself. It lists the stream and
//! records new shards as [`super::StreamTask`] does (the same gap checks), offers each shard once
//! it is ready (its parents finished) as a lease of its own ([`Offers`]), and learns from
//! the leases what their holders report: a finished shard (its children are then offered), a
//! failed one (the table fails with the shard's reason), and how far each is applied, from which
//! it keeps the table's caught-up, applied-as-of and counters.
//!
//! The holders' reports reach the coordinator with their lease renewals, so applied-as-of runs
//! a few seconds behind the single-process stream's; it is never ahead of what is applied.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::StreamTask;
use super::api::StreamApi;
use super::gap::{Listed, born_after};
use super::lineage::Lineage;
use crate::checkpoint::ShardRow;
use crate::checkpoint::lease::units::{Mark, Offers};
use crate::error::{Error, Result};

/// What the coordinator knows of the shard tree.
#[derive(Default)]
struct Board {
    lineage: Lineage,
    rows: HashMap<String, ShardRow>,
    listed: HashMap<String, Listed>,
    /// The shards offered and not finished, each with its holder's last mark.
    offered: HashMap<String, Option<Mark>>,
    /// Finished shards whose leases were removed (the listing of leases may still show them).
    removed: HashSet<String>,
    /// Start of the last complete listing of the stream (0: none yet).
    listed_at: i64,
    /// Whether the last listing failed.
    failing: bool,
}

impl<S: StreamApi> StreamTask<S> {
    /// Coordinates the table's shard leases until stopped, or until a shard fails.
    pub(super) async fn coordinate(&self, leasing: &dyn Offers) -> Result<()> {
        let (lineage, rows) = self.saved_shards().await?;
        // The table's counter is what it was plus what the shards applied since.
        let loaded = self.ctx.stats.records_applied.load(Relaxed) as i64;
        let base = (loaded - rows.values().map(|r| r.records).sum::<i64>()).max(0);
        let mut b = Board {
            lineage,
            rows,
            ..Board::default()
        };
        let mut list_tick = tokio::time::interval(self.list_every);
        let mut report_tick = tokio::time::interval(Duration::from_secs(1));
        list_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        report_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.ctx.stop.cancelled() => return Ok(()),
                _ = list_tick.tick() => {
                    let t = self.clock.now_ms();
                    if self.discover(&mut b.lineage, &mut b.rows, &mut b.listed, b.listed_at, &mut b.failing).await? {
                        b.listed_at = t;
                    }
                }
                _ = report_tick.tick() => {}
            }
            self.absorb(leasing, &mut b).await?;
            self.offer_ready(leasing, &mut b).await?;
            self.report(&b, base);
        }
    }

    /// Takes in what the holders reported: a failure ends the table; a finished shard is recorded
    /// (its row is done already) and its lease removed.
    async fn absorb(&self, leasing: &dyn Offers, b: &mut Board) -> Result<()> {
        for (id, lease) in leasing.reports() {
            if let Some(why) = &lease.failed {
                return Err(Error::fatal(format!(
                    "table {}: shard {id} failed: {why}",
                    self.ctx.table
                )));
            }
            if let Some(done) = &lease.done {
                if b.removed.contains(&id) {
                    continue;
                }
                if let Some(row) = b.rows.get_mut(&id) {
                    row.done = true;
                    row.position = done.seq.clone().or(row.position.take());
                    row.last_record_ms = done.time_ms.or(row.last_record_ms);
                    row.records = done.records;
                }
                b.lineage.mark_done(&id);
                b.offered.remove(&id);
                leasing.remove_done(&id).await?;
                b.removed.insert(id);
                continue;
            }
            if let Some(mark) = b.offered.get_mut(&id) {
                *mark = lease.mark.or(*mark);
            }
        }
        Ok(())
    }

    /// Offers every shard whose parents are finished.
    async fn offer_ready(&self, leasing: &dyn Offers, b: &mut Board) -> Result<()> {
        for id in b.lineage.take_ready() {
            if !b.rows.contains_key(&id) {
                return Err(self.no_row(&id));
            }
            let facts = Listed {
                born_after_ms: born_after(&id, &b.rows, &b.listed),
                first_seq: b.listed.get(&id).and_then(|l| l.first_seq.clone()),
            };
            leasing
                .offer(&id, facts.born_after_ms, facts.first_seq.as_deref())
                .await?;
            tracing::debug!(table = %self.ctx.table, shard = %id, "shard offered to the workers");
            b.offered.insert(id, None);
        }
        Ok(())
    }

    /// The table's caught-up, applied-as-of and counters, from the holders' marks.
    fn report(&self, b: &Board, base: i64) {
        let stats = &self.ctx.stats;
        let (open, _) = b.lineage.counts();
        let marks: Option<Vec<Mark>> = b.offered.values().copied().collect();
        let marks = marks.filter(|m| !m.is_empty() && open == b.offered.len());
        stats
            .caught_up
            .store(marks.as_ref().is_some_and(|m| m.iter().all(|m| m.idle)), Relaxed);
        let as_of = marks
            .as_ref()
            .and_then(|m| m.iter().map(|m| m.applied_ms).min())
            .map_or(0, |m| m.min(b.listed_at));
        stats.applied_as_of_ms.store(as_of, Relaxed);
        let mark_of = |r: &ShardRow| b.offered.get(&r.shard_id).copied().flatten();
        let newest = b
            .rows
            .values()
            .filter_map(|r| mark_of(r).and_then(|m| m.last_ms).or(r.last_record_ms))
            .max();
        if let Some(n) = newest {
            stats.newest_applied_ms.fetch_max(n, Relaxed);
        }
        let records: i64 = b
            .rows
            .values()
            .map(|r| mark_of(r).map_or(r.records, |m| m.records))
            .sum();
        stats.records_applied.fetch_max((base + records).max(0) as u64, Relaxed);
    }
}
