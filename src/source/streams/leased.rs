//! One shard read under a lease of its own, by whichever worker holds the lease
//! ([`crate::checkpoint::lease::units`]): the shard's consumer, its row flushed every second
//! through the state view fenced by the shard's lease, and its progress left in a [`Marks`] cell
//! that the lease's renewals report to the table's coordinator ([`super::coordinate`]).
//!
//! Contract: [`super::StreamTask`]'s, for one shard. Records are applied in shard order, the row
//! moves only over acknowledged records, and the run ends `Done` only once the row says done,
//! durably. The coordinator offers a shard only when its parents are done, so the run does not
//! look at the parents.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::api::StreamApi;
use super::consumer::Outcome;
use super::gap::Listed;
use super::{Active, StreamTask, drain, shard_metrics, shard_row};
use crate::apply::Applier;
use crate::checkpoint::lease::keeper::Marks;
use crate::checkpoint::lease::units::{Done, Mark};
use crate::error::{Error, Result};

pub struct ShardRun<S> {
    /// The table's stream and context (its store fenced by the shard's lease).
    pub task: StreamTask<S>,
    pub shard: String,
    /// What the coordinator's listings knew of the shard's birth (from its lease).
    pub facts: Listed,
    /// The shard's latest progress, for the lease's next renewal.
    pub marks: Marks,
}

impl<S: StreamApi> ShardRun<S> {
    /// Reads the shard until it is finished (`Some`, its row durably done) or the context's stop
    /// (`None`, its row flushed over what was applied).
    pub async fn run(self, applier: Applier) -> Result<Option<Done>> {
        let (task, id) = (&self.task, self.shard.as_str());
        let row = task
            .ctx
            .store
            .shards(&task.ctx.table)
            .await?
            .into_iter()
            .find(|r| r.shard_id == id)
            .ok_or_else(|| task.no_row(id))?;
        if row.done {
            applier.finish().await?;
            return Ok(Some(done_of(&row)));
        }
        let applier = Arc::new(applier);
        let stop = CancellationToken::new();
        let (consumer, active) = task.launch(row, &self.facts, &applier, &stop);
        let mut active = HashMap::from([(id.to_string(), active)]);
        let mut consumers = JoinSet::new();
        let sid = id.to_string();
        consumers.spawn(async move { (sid, consumer.run().await) });
        tracing::info!(table = %task.ctx.table, shard = %id, "reading shard");
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ran: Result<Option<Outcome>> = async {
            loop {
                tokio::select! {
                    _ = task.ctx.stop.cancelled() => return Ok(None),
                    _ = applier.failed.cancelled() => return Ok(None),
                    _ = tick.tick() => self.flush(&mut active).await?,
                    Some(joined) = consumers.join_next() => {
                        let (_, outcome) = joined.map_err(|e| Error::fatal(format!("shard consumer panicked: {e}")))?;
                        return outcome.map(Some);
                    }
                }
            }
        }
        .await;
        stop.cancel();
        let (outcome, mut first_err) = match ran {
            Ok(o) => (o, None),
            Err(e) => (None, Some(e)),
        };
        if let Err(e) = drain(consumers, applier).await {
            crate::error::keep_first(&mut first_err, e);
        }
        let Some(Outcome::Done) = outcome.filter(|_| first_err.is_none()) else {
            self.flush(&mut active).await?;
            return first_err.map_or(Ok(None), Err);
        };
        let mut row = shard_row(&active[id]);
        row.done = true;
        task.ctx
            .store
            .put_shards(&task.ctx.table, std::slice::from_ref(&row))
            .await?;
        tracing::info!(table = %task.ctx.table, shard = %id, "shard finished");
        shard_metrics::finished(&task.ctx.table, id);
        Ok(Some(done_of(&row)))
    }

    /// Writes the shard's row if it moved, and leaves its mark for the next renewal.
    async fn flush(&self, active: &mut HashMap<String, Active>) -> Result<()> {
        let ctx = &self.task.ctx;
        let Some(a) = active.get_mut(&self.shard) else {
            return Ok(());
        };
        let row = shard_row(a);
        if a.written.as_ref() != Some(&row) {
            ctx.store.put_shards(&ctx.table, std::slice::from_ref(&row)).await?;
            a.written = Some(row.clone());
        }
        let idle = a.idle.load(Relaxed);
        if let Some(applied_ms) = a.ack.marked() {
            *self.marks.lock().unwrap() = Some(Mark {
                applied_ms,
                idle,
                records: row.records,
                last_ms: row.last_record_ms,
            });
        }
        let now = self.task.clock.now_ms();
        shard_metrics::lags(
            &ctx.table,
            std::iter::once((self.shard.as_str(), shard_metrics::lag(idle, row.last_record_ms, now))),
        );
        Ok(())
    }
}

fn done_of(row: &crate::checkpoint::ShardRow) -> Done {
    Done {
        seq: row.position.clone(),
        time_ms: row.last_record_ms,
        records: row.records,
    }
}
