//! A table pair's life in the daemon: runs it in the direction its row says, and on a switch
//! (see [`super::switch`]) runs it the other way, until stopped or failed. The reverse direction
//! is the same [`TableRun`] (apply path, checkpoints, status, metrics) with the sides swapped.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::table::{RunEnd, TableRun};
use super::{Shared, SyncOptions};
use crate::checkpoint::{Direction, StateStore};
use crate::config::{Clients, TableConfig};
use crate::discover::check::{CheckOptions, Checked, check_table};
use crate::error::{Error, Result};
use crate::plan::PlannedTable;
use crate::telemetry::TableStats;

pub(super) struct Pair {
    /// The table as ferry.toml names it (forward).
    pub cfg: TableConfig,
    pub src: Clients,
    pub dst: Clients,
    pub store: Arc<dyn StateStore>,
    pub stats: Arc<TableStats>,
    pub opts: SyncOptions,
    pub shared: Shared,
    pub planned: Option<PlannedTable>,
    pub stop: CancellationToken,
}

impl Pair {
    /// Runs the pair from `direction` (checked as `checked`) until stopped or failed.
    pub async fn run(self, mut direction: Direction, mut checked: Checked) -> Result<()> {
        loop {
            match self.table_run(direction, checked)?.run().await? {
                RunEnd::Stopped => return Ok(()),
                RunEnd::Switched => {
                    direction = direction.other();
                    checked = match self.check(direction).await {
                        Ok(c) => c,
                        Err(e) => {
                            // Recorded as the table's failure; a restart resumes the switch.
                            self.store.put_error(&self.cfg.source, &e.to_string()).await?;
                            return Err(e);
                        }
                    };
                }
            }
        }
    }

    /// The preconditions of running `direction`, as at start-up.
    async fn check(&self, direction: Direction) -> Result<Checked> {
        match direction {
            Direction::Forward => check_table(&self.src, &self.dst, &self.cfg, self.opts.checks, true).await,
            Direction::Reverse => check_reverse(&self.src, &self.dst, &self.cfg, self.opts.checks).await,
        }
    }

    fn table_run(&self, direction: Direction, checked: Checked) -> Result<TableRun> {
        let forward = direction == Direction::Forward;
        let (cfg, src, dst) = match direction {
            Direction::Forward => (self.cfg.clone(), self.src.clone(), self.dst.clone()),
            Direction::Reverse => (self.cfg.reversed()?, self.dst.clone(), self.src.clone()),
        };
        let shared = &self.shared;
        Ok(TableRun {
            key: self.cfg.source.clone(),
            direction,
            cfg,
            src,
            dst,
            store: self.store.clone(),
            stats: self.stats.clone(),
            checked,
            stop: self.stop.child_token(),
            list_every: self.opts.list_every,
            // Bulk loads, plans and leases belong to the migration: forward only.
            from_ms: self.opts.from_ms.filter(|_| forward),
            enable_pitr: self.opts.enable_pitr,
            export_poll: self.opts.export_poll,
            planned: self.planned.clone().filter(|_| forward),
            slots: shared.slots.clone().filter(|_| forward),
            window: shared.window.clone(),
            shards: shared.shards.clone().filter(|_| forward),
            segments: shared.segments.clone().filter(|_| forward),
            files: shared.files.clone().filter(|_| forward),
        })
    }
}

/// The reverse direction's preconditions: the destination is read (its stream must be on) and
/// the source written.
pub(super) async fn check_reverse(
    src: &Clients,
    dst: &Clients,
    t: &TableConfig,
    checks: CheckOptions,
) -> Result<Checked> {
    let reversed = t.reversed()?;
    let c = check_table(dst, src, &reversed, checks, true).await?;
    if c.view.is_none() {
        return Err(Error::fatal(format!(
            "destination table {:?} has no stream: the reverse direction reads it. Enable one \
             (NEW_AND_OLD_IMAGES) and restart ferry sync",
            t.destination
        )));
    }
    Ok(c)
}
