//! Tailing a table's DynamoDB stream: discover shards, run one consumer per ready shard in lineage
//! order, and persist each shard's checkpoint at least every second.
//!
//! Contract: every record from the replay point on is submitted to the apply path exactly in
//! shard order; a shard is marked done (durably, before any child starts) only when all its
//! records are acknowledged. Gaps stop the table loudly: a shard that vanishes before ferry
//! finished it, a saved position that is trimmed, and a shard read from its trim horizon that
//! may have lost records ferry needs ([`gap`]). A shard created after the replay point is no
//! gap, however old the replay point: runs of many days read every new shard from its start.
//!
//! Caught-up (what `applied_as_of`, `ferry status` and verify's waits rely on) means every open
//! shard's consumer has read to its shard's tip ([`consumer`]), not merely seen an empty page.
//!
//! With several workers the same task coordinates instead of reading ([`coordinate`]): each
//! ready shard becomes a lease, read by whichever worker holds it ([`leased`]).

pub mod api;
pub mod consumer;
pub mod coordinate;
pub mod gap;
pub mod leased;
pub mod lineage;
mod listing;
mod page;
pub mod record;
pub mod seek;
pub mod shard_metrics;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::apply::Applier;
use crate::checkpoint::StateStore;
use crate::checkpoint::{OrderedAck, ShardRow};
use crate::discover::View;
use crate::error::{Error, Result};
use crate::retry::{Policy, Retrier};
use crate::source::TableContext;
use api::{StartAt, StreamApi};
use consumer::{Outcome, Pos, ShardConsumer};
pub use gap::{Clock, RETENTION_MS};
use gap::{Horizon, Listed, born_after};
use lineage::Lineage;

/// Records the shard tree at the capture point (before the snapshot starts).
pub async fn capture<S: StreamApi>(api: &S, stream_arn: &str, store: &dyn StateStore, table: &str) -> Result<usize> {
    let shards = Retrier::new(Policy::STARTUP, "ListShards")
        .run(|| api.list_shards(stream_arn))
        .await?
        .shards;
    let rows: Vec<ShardRow> = shards
        .iter()
        .map(|s| ShardRow {
            shard_id: s.id.clone(),
            parent_id: s.parent.clone(),
            position: None,
            last_record_ms: None,
            done: false,
            records: 0,
            captured: true,
        })
        .collect();
    store.put_shards(table, &rows).await?;
    Ok(rows.len())
}

pub struct StreamTask<S> {
    pub api: Arc<S>,
    pub ctx: TableContext,
    pub stream_arn: String,
    pub view: View,
    pub replay_from_ms: i64,
    /// How often to look for new shards.
    pub list_every: Duration,
    /// Wall-clock time (real unless a test runs it ahead).
    pub clock: Clock,
    /// With several workers: the shards are leased to them, and this task coordinates
    /// ([`coordinate`]) instead of reading.
    pub leasing: Option<Arc<dyn crate::checkpoint::lease::units::Offers>>,
}

/// Waits for the (stopped) consumers, then for the writes they submitted; the first error.
async fn drain(mut consumers: JoinSet<(String, Result<Outcome>)>, applier: Arc<Applier>) -> Result<()> {
    let mut first_err = None;
    while let Some(joined) = consumers.join_next().await {
        if let Ok((_, Err(e))) = joined {
            crate::error::keep_first(&mut first_err, e);
        }
    }
    let applier = Arc::try_unwrap(applier).map_err(|_| Error::fatal("apply path still shared at shutdown"))?;
    if let Err(e) = applier.finish().await {
        crate::error::keep_first(&mut first_err, e);
    }
    first_err.map_or(Ok(()), Err)
}

/// A shard being consumed.
struct Active {
    row: ShardRow,
    /// The row as last written: a flush skips a shard whose row has not moved since (an idle
    /// table writes nothing).
    written: Option<ShardRow>,
    ack: Arc<OrderedAck<Pos>>,
    idle: Arc<AtomicBool>,
}

impl Active {
    fn new(row: ShardRow, ack: Arc<OrderedAck<Pos>>, idle: Arc<AtomicBool>) -> Active {
        Active {
            row,
            written: None,
            ack,
            idle,
        }
    }
}

impl<S: StreamApi> StreamTask<S> {
    /// Runs until `stop` or a fatal error; on return, in-flight writes are drained and every
    /// shard's checkpoint is flushed.
    pub async fn run(self, applier: Applier) -> Result<()> {
        let Some(leasing) = self.leasing.clone() else {
            return self.read(applier).await;
        };
        let coordinated = self.coordinate(leasing.as_ref()).await;
        applier.finish().await?;
        coordinated
    }

    /// Reads every shard here, through `applier`.
    async fn read(self, applier: Applier) -> Result<()> {
        let applier = Arc::new(applier);
        let (mut lineage, mut rows) = self.saved_shards().await?;
        let mut listed: HashMap<String, Listed> = HashMap::new();
        let consumers_stop = CancellationToken::new();
        let mut consumers: JoinSet<(String, Result<Outcome>)> = JoinSet::new();
        let mut active: HashMap<String, Active> = HashMap::new();
        // Start of the last completed shard listing: a shard created before it is known, so the
        // table is applied up to no later than this. (0: none yet in this run.)
        let mut listed_at = 0i64;
        let mut list_tick = tokio::time::interval(self.list_every);
        let mut flush_tick = tokio::time::interval(Duration::from_secs(1));
        flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        list_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        // Whether the last shard listing failed (the table shows as retrying until one works).
        let mut listing_failing = false;
        let result: Result<()> = async {
            loop {
                tokio::select! {
                    _ = self.ctx.stop.cancelled() => return Ok(()),
                    _ = applier.failed.cancelled() => return Ok(()),
                    _ = list_tick.tick() => {
                        let t = self.clock.now_ms();
                        if self.discover(&mut lineage, &mut rows, &mut listed, listed_at, &mut listing_failing).await? {
                            listed_at = t;
                        }
                        self.start_ready(&mut lineage, &rows, &listed, &mut active, &mut consumers, &applier, &consumers_stop)?;
                    }
                    _ = flush_tick.tick() => self.flush(&mut active, &lineage, listed_at).await?,
                    Some(joined) = consumers.join_next() => {
                        let (id, outcome) = joined.map_err(|e| Error::fatal(format!("shard consumer panicked: {e}")))?;
                        match outcome? {
                            Outcome::Done => {
                                self.shard_done(&id, &mut active, &mut rows, &mut lineage).await?;
                                let t = self.clock.now_ms();
                                if self.discover(&mut lineage, &mut rows, &mut listed, listed_at, &mut listing_failing).await? {
                                    listed_at = t;
                                }
                                self.start_ready(&mut lineage, &rows, &listed, &mut active, &mut consumers, &applier, &consumers_stop)?;
                            }
                            Outcome::Stopped => {}
                        }
                    }
                }
            }
        }
        .await;

        // Shutdown or failure: stop reading, drain writes, flush what is durable.
        consumers_stop.cancel();
        let mut first_err = result.err();
        if let Err(e) = drain(consumers, applier).await {
            crate::error::keep_first(&mut first_err, e);
        }
        self.flush(&mut active, &lineage, listed_at).await?;
        first_err.map_or(Ok(()), Err)
    }

    /// The shard tree as saved, and every shard's row.
    async fn saved_shards(&self) -> Result<(Lineage, HashMap<String, ShardRow>)> {
        let mut lineage = Lineage::default();
        let mut rows = HashMap::new();
        for r in self.ctx.store.shards(&self.ctx.table).await? {
            if r.done {
                lineage.add_done(&r.shard_id, r.parent_id.as_deref());
            } else {
                lineage.add(&r.shard_id, r.parent_id.as_deref());
            }
            rows.insert(r.shard_id.clone(), r);
        }
        Ok((lineage, rows))
    }

    /// A shard read to its end with every record durable: recorded done, durably, before any
    /// child starts (see the module docs).
    async fn shard_done(
        &self,
        id: &str,
        active: &mut HashMap<String, Active>,
        rows: &mut HashMap<String, ShardRow>,
        lineage: &mut Lineage,
    ) -> Result<()> {
        let a = active
            .remove(id)
            .ok_or_else(|| Error::fatal(format!("shard {id} finished but was not being read")))?;
        let mut row = shard_row(&a);
        row.done = true;
        self.ctx.store.put_shards(&self.ctx.table, &[row.clone()]).await?;
        rows.insert(id.to_string(), row);
        lineage.mark_done(id);
        tracing::info!(table = %self.ctx.table, shard = %id, "shard finished");
        shard_metrics::finished(&self.ctx.table, id);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn start_ready(
        &self,
        lineage: &mut Lineage,
        rows: &HashMap<String, ShardRow>,
        listed: &HashMap<String, Listed>,
        active: &mut HashMap<String, Active>,
        consumers: &mut JoinSet<(String, Result<Outcome>)>,
        applier: &Arc<Applier>,
        stop: &CancellationToken,
    ) -> Result<()> {
        for id in lineage.take_ready() {
            let row = rows.get(&id).cloned().ok_or_else(|| self.no_row(&id))?;
            let facts = Listed {
                born_after_ms: born_after(&id, rows, listed),
                first_seq: listed.get(&id).and_then(|l| l.first_seq.clone()),
            };
            let (c, a) = self.launch(row, &facts, applier, stop);
            tracing::debug!(table = %self.ctx.table, shard = %id, "shard consumer starting");
            let sid = id.clone();
            consumers.spawn(async move { (sid, c.run().await) });
            active.insert(id, a);
        }
        Ok(())
    }

    fn no_row(&self, id: &str) -> Error {
        Error::fatal(format!(
            "table {}: shard {id} has no checkpoint row in the state file",
            self.ctx.table
        ))
    }

    /// A consumer of `row`'s shard, resuming after its saved position (or, from the trim
    /// horizon, first proving from `facts` that nothing it needs was trimmed), and its [`Active`].
    fn launch(
        &self,
        row: ShardRow,
        facts: &Listed,
        applier: &Arc<Applier>,
        stop: &CancellationToken,
    ) -> (ShardConsumer<S>, Active) {
        let horizon = row.position.is_none().then(|| Horizon {
            replay_from_ms: self.replay_from_ms,
            born_after_ms: facts.born_after_ms,
            first_seq: facts.first_seq.clone(),
        });
        let start = match &row.position {
            Some(seq) => StartAt::After(seq.clone()),
            None => StartAt::TrimHorizon,
        };
        let committed = row.position.clone().map(|seq| Pos {
            seq,
            time_ms: row.last_record_ms.unwrap_or(0),
        });
        let stats = self.ctx.stats.clone();
        let ack = Arc::new(OrderedAck::with_counter(committed, move |n| {
            stats.records_applied.fetch_add(n, Relaxed);
        }));
        let idle = Arc::new(AtomicBool::new(false));
        let c = ShardConsumer {
            api: self.api.clone(),
            stream_arn: self.stream_arn.clone(),
            shard_id: row.shard_id.clone(),
            table: self.ctx.table.clone(),
            start,
            horizon,
            clock: self.clock.clone(),
            replay_from_ms: self.replay_from_ms,
            view: self.view,
            key_names: self.ctx.key_names.clone(),
            applier: applier.clone(),
            ack: ack.clone(),
            stats: self.ctx.stats.clone(),
            idle: idle.clone(),
            stop: stop.clone(),
        };
        (c, Active::new(row, ack, idle))
    }

    /// Persists the checkpoints of active shards and refreshes lag, caught-up and applied-as-of.
    async fn flush(&self, active: &mut HashMap<String, Active>, lineage: &Lineage, listed_at: i64) -> Result<()> {
        let rows: Vec<ShardRow> = active.values().map(shard_row).collect();
        let moved: Vec<ShardRow> = active
            .values()
            .zip(&rows)
            .filter(|(a, row)| a.written.as_ref() != Some(*row))
            .map(|(_, row)| row.clone())
            .collect();
        if !moved.is_empty() {
            self.ctx.store.put_shards(&self.ctx.table, &moved).await?;
            for row in moved {
                if let Some(a) = active.get_mut(&row.shard_id) {
                    a.written = Some(row);
                }
            }
        }
        let newest = rows.iter().filter_map(|r| r.last_record_ms).max();
        if let Some(n) = newest {
            self.ctx.stats.newest_applied_ms.fetch_max(n, Relaxed);
        }
        let (open, _) = lineage.counts();
        let all_idle = active.values().all(|a| a.idle.load(Relaxed)) && open == active.len();
        self.ctx.stats.caught_up.store(all_idle && !active.is_empty(), Relaxed);
        // Every open shard is being read and applied up to its mark: the table is applied up to
        // the oldest mark (and no later than the listing that found all its shards).
        let marks: Option<Vec<i64>> = active.values().map(|a| a.ack.marked()).collect();
        let as_of = marks
            .filter(|m| !m.is_empty() && open == active.len())
            .and_then(|m| m.into_iter().min())
            .map_or(0, |m| m.min(listed_at));
        self.ctx.stats.applied_as_of_ms.store(as_of, Relaxed);
        let now = self.clock.now_ms();
        shard_metrics::lags(
            &self.ctx.table,
            active.iter().map(|(id, a)| {
                let lag = shard_metrics::lag(a.idle.load(Relaxed), a.ack.committed().map(|p| p.time_ms), now);
                (id.as_str(), lag)
            }),
        );
        Ok(())
    }
}

fn shard_row(a: &Active) -> ShardRow {
    let mut row = a.row.clone();
    if let Some(p) = a.ack.committed() {
        row.position = Some(p.seq);
        row.last_record_ms = Some(p.time_ms);
    }
    row.records = a.row.records + a.ack.committed_count() as i64;
    row
}

#[cfg(test)]
mod tests;
