//! Switching a pair's direction, inside the daemon that runs it (the only writer of the row's
//! direction, so the two directions never run at once):
//!
//! ```text
//!   Streaming (this way) ── a request for the other way, while its command waits ──▶ drain:
//!     go on applying until every change made before the request is durable (applied-as-of),
//!     then stop reading, finish in-flight writes, flush checkpoints
//!   ── the command still waits ──▶ S = now (after this direction's last write);
//!     Switching{S, S − overlap} with the row's direction flipped, in one write
//!   ── the other direction's run ──▶ its source's stream captured (shard rows replaced)
//!     ──▶ Streaming (the other way), replaying from S − overlap
//! ```
//!
//! The overlap before S holds the stopped direction's own writes (images the new destination
//! already holds), applied in order per key, so they converge; it absorbs the coarse record
//! times (AWS: 1 s, DynamoDB Local: 1 min), as at the first capture point.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::seams::{Seams, TableApi};
use super::table::{RunCtx, RunEnd, TableRun};
use crate::checkpoint::{Capture, Direction, Lifecycle, StateStore, TableState};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::source::ChangeSource;
use crate::telemetry::TableStats;

/// How often the row is read for a switch request.
const POLL: Duration = Duration::from_millis(500);

/// How a stretch of streaming ended.
pub(super) enum Streamed {
    /// The change source returned: the run was asked to stop.
    Stopped,
    /// A switch to this direction drained the one streaming, and its command still waits.
    Switch(Direction),
    /// A switch drained the stream, but its command has gone: stream on.
    GaveUp,
}

impl TableRun {
    /// Applies changes until stopped, or until a switch asked for while streaming has drained
    /// this direction.
    pub(super) async fn stream_until_switch<S: Seams>(
        &self,
        seams: &S,
        ctx: &RunCtx,
        capture: &Capture,
    ) -> Result<Streamed> {
        let sub = RunCtx {
            table: ctx.table.child(),
            read_limiter: ctx.read_limiter.clone(),
            read_budget: ctx.read_budget.clone(),
        };
        let end = sub.table.stop.clone();
        let run = seams.change_source(self, &sub, capture).run();
        tokio::pin!(run);
        let to = tokio::select! {
            ran = &mut run => return ran.map(|()| Streamed::Stopped),
            asked = drained(self.store.as_ref(), &self.key, self.direction, &self.stats) => asked?,
        };
        tracing::info!(table = %self.key, to = to.as_str(), "switch: every change before the request is applied; stopping {}", self.direction.as_str());
        end.cancel();
        run.await?;
        if self.stop.is_cancelled() {
            return Ok(Streamed::Stopped);
        }
        if !self.store.switch_awaited().await? {
            tracing::warn!(table = %self.key, "switch given up: the command that asked for it has gone; {} replication goes on", self.direction.as_str());
            return Ok(Streamed::GaveUp);
        }
        Ok(Streamed::Switch(to))
    }

    /// Records the switch point S (now: after this direction's last durable write) and flips the
    /// pair, in one write.
    pub(super) async fn switch(&self, life: &mut Lifecycle, to: Direction) -> Result<RunEnd> {
        let at_ms = now_ms();
        let replay_from_ms = at_ms - (self.cfg.replay_overlap_seconds as i64) * 1000;
        life.switch(to, at_ms, replay_from_ms).await?;
        // The watermarks were this direction's; the other direction publishes its own.
        self.stats.applied_as_of_ms.store(0, Relaxed);
        self.stats.caught_up.store(false, Relaxed);
        tracing::info!(table = %self.key, direction = to.as_str(), at = %crate::clock::fmt_ms(at_ms), "switched: now {}", to.arrow());
        Ok(RunEnd::Switched)
    }

    /// After a switch, in the new direction's run: captures its source's stream (the other
    /// table's) and replaces the shard rows of the stream left. Run again after a crash here.
    pub(super) async fn capture_after_switch(
        &self,
        api: &dyn TableApi,
        at_ms: i64,
        replay_from_ms: i64,
    ) -> Result<TableState> {
        let stream_arn = api.current_stream().await?.ok_or_else(|| {
            Error::fatal(format!(
                "table {}: {} {:?} has no stream, so the {} direction cannot read it. Enable one \
                 (NEW_AND_OLD_IMAGES) and restart ferry sync: the switch resumes from its point.",
                self.key,
                side(self.direction),
                self.cfg.source,
                self.direction.as_str()
            ))
        })?;
        let widen = super::skew::widen_ms(api.clock_skew().await);
        self.store.clear_shards(&self.key).await?;
        let shards = api.capture_shards(&stream_arn, self.store.as_ref()).await?;
        tracing::info!(table = %self.key, shards, stream = %stream_arn, "switch: the {} direction's stream captured", self.direction.as_str());
        Ok(TableState::Streaming {
            capture: Capture {
                stream_arn,
                t0_ms: at_ms,
                replay_from_ms: replay_from_ms - widen,
            },
        })
    }
}

/// What the source of a run going `d` is, for people.
fn side(d: Direction) -> &'static str {
    match d {
        Direction::Forward => "the source table",
        Direction::Reverse => "the destination table",
    }
}

/// Waits for a request to switch away from `direction`, made by a command that still waits, and
/// for every change made before it to be durable (the applied-as-of watermark past it).
async fn drained(
    store: &dyn StateStore,
    key: &str,
    direction: Direction,
    stats: &Arc<TableStats>,
) -> Result<Direction> {
    loop {
        tokio::time::sleep(POLL).await;
        // The lock first: no row read while no command waits (a paid read on a DynamoDB state).
        if !store.switch_awaited().await? {
            continue;
        }
        let asked = store
            .table(key)
            .await?
            .and_then(|row| row.switch_request)
            .filter(|r| r.to != direction);
        if let Some(r) = asked
            && stats.applied_as_of_ms.load(Relaxed) >= r.asked_ms
        {
            return Ok(r.to);
        }
    }
}

/// Refuses a table whose row replicates another way than `want` (`ferry sync --reverse`).
pub fn check_direction(key: &str, row: Direction, want: Direction, daemon_running: bool) -> Result<()> {
    if row == want {
        return Ok(());
    }
    let running = if daemon_running {
        ", and a `ferry sync` is running it now"
    } else {
        ""
    };
    let how = match want {
        Direction::Reverse => {
            "the reverse direction starts only with `ferry cutover --switch`, which drains and stops forward first"
        }
        Direction::Forward => "the forward direction comes back only with `ferry rollback`, which drains reverse first",
    };
    Err(Error::fatal(format!(
        "table {key} replicates {} ({}){running}: {how}",
        row.as_str(),
        row.arrow()
    )))
}
