//! `ferry sync`: the daemon. Checks every table, then runs all tables concurrently until told to
//! stop, flushing progress to the state store every second.
//!
//! Shutdown (SIGINT/SIGTERM → `stop`): readers stop, in-flight writes drain, checkpoints flush.
//! A table that fails stops alone, loudly, with its reason kept in the state store; the others go on.

mod pair;
mod seams;
mod skew;
mod steps;
mod switch;
mod table;
#[cfg(test)]
mod tests;
mod worker;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::lease::units::Offers;
use crate::checkpoint::lease::watch::Window;
use crate::checkpoint::{DaemonLock, Retrying, Store};
use crate::checkpoint::{Direction, Progress, StateStore};
use crate::config::{Clients, Config, StateConfig, TableConfig, build_clients};
use crate::discover::check::{CheckOptions, Checked, check_table};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::status;
use crate::telemetry::{TableStats, metrics, progress};

/// A stop request is honoured within this, whatever the endpoints do (`systemd` and Kubernetes
/// kill a process that does not exit in 30 s; the CLI promises 10).
const STOP_GRACE: Duration = Duration::from_secs(8);

#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub checks: CheckOptions,
    /// How often each table's stream is listed for new shards.
    pub list_every: Duration,
    /// Draw progress bars (when stderr is a terminal).
    pub progress: bool,
    /// `--from`: replay fresh tables' streams from this time (ms) instead of the capture point.
    pub from_ms: Option<i64>,
    /// Enable PITR on sources that need an export (`--enable-pitr`).
    pub enable_pitr: bool,
    /// How often DescribeExport / DescribeImport are polled.
    pub export_poll: Duration,
    /// A checked plan (`--plan`): destinations are created from its schemas and get their
    /// settings and Lambda mappings restored after the bulk load.
    pub plan: Option<Arc<Plan>>,
    /// At most this many tables in create/bulk load/settings at once (`--parallel-tables`).
    pub parallel_tables: Option<usize>,
    /// `--reverse`: the direction the operator means to run; a table whose row says otherwise is
    /// refused. `None`: each table in the direction its row says.
    pub direction: Option<Direction>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            checks: CheckOptions::default(),
            list_every: Duration::from_secs(2),
            progress: false,
            from_ms: None,
            enable_pitr: false,
            export_poll: Duration::from_secs(5),
            plan: None,
            parallel_tables: None,
            direction: None,
        }
    }
}

pub async fn run(config: &Config, opts: SyncOptions, stop: CancellationToken) -> Result<()> {
    match &config.state {
        StateConfig::Sqlite(path) => {
            let state: Arc<dyn StateStore> = Arc::new(Store::open(path)?);
            // Before the lock: the refusal names the direction even while another daemon runs.
            if let Some(want) = opts.direction {
                check_intent(config, state.as_ref(), want).await?;
            }
            let _lock = DaemonLock::acquire(path)?;
            let shared = Shared {
                slots: Shared::slots(&opts),
                ..Shared::default()
            };
            run_tables(config, &opts, &state, &shared, &stop).await.map(|_| ())
        }
        StateConfig::Dynamo(_) if opts.direction.is_some() => Err(Error::fatal(
            "--reverse needs the SQLite state: switching direction is not supported with [state] in DynamoDB yet",
        )),
        StateConfig::Dynamo(d) => worker::Worker::start(config, &opts, d, &stop).await?.run(&stop).await,
    }
}

/// `ferry sync --reverse`: every table's row must say that direction (every refusal at once).
async fn check_intent(config: &Config, state: &dyn StateStore, want: Direction) -> Result<()> {
    let running = state.daemon_running().await?;
    let mut problems = Vec::new();
    for t in &config.tables {
        let row = state.table(&t.source).await?;
        let have = row.map_or(Direction::Forward, |r| r.direction);
        if let Err(e) = switch::check_direction(&t.source, have, want, running) {
            problems.push(e.to_string());
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(Error::fatal(problems.join("\n"))),
    }
}

/// What the table runs of one process share, beyond the state store.
#[derive(Clone, Default)]
pub(super) struct Shared {
    /// With several workers: the write window of the lease the tables run under.
    pub window: Option<Arc<Window>>,
    /// `--parallel-tables`: slots for create, bulk load and settings, one set per process.
    pub slots: Option<Arc<tokio::sync::Semaphore>>,
    /// With several workers (one table per run): its shard and snapshot segment leases.
    pub shards: Option<Arc<dyn Offers>>,
    pub segments: Option<Arc<dyn Offers>>,
    pub files: Option<Arc<dyn Offers>>,
}

impl Shared {
    pub fn slots(opts: &SyncOptions) -> Option<Arc<tokio::sync::Semaphore>> {
        opts.parallel_tables.map(|n| Arc::new(tokio::sync::Semaphore::new(n)))
    }
}

/// Checks and runs every table until all have ended or `stop` fires. `Ok(false)` when the stop
/// grace ran out with some table still busy (its tasks are then abandoned, possibly mid-write).
async fn run_tables(
    config: &Config,
    opts: &SyncOptions,
    state: &Arc<dyn StateStore>,
    shared: &Shared,
    stop: &CancellationToken,
) -> Result<bool> {
    let src = build_clients("source", &config.source).await?;
    let dst = build_clients("destination", &config.destination).await?;
    let checked = check_all(config, opts, state.as_ref(), &src, &dst).await?;

    let (mut tables, all_stats) = spawn_tables(checked, opts, state, (&src, &dst), shared, stop);
    let bars = progress::Progress::new(opts.progress, &all_stats);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // Metrics are cheap to publish: keep /metrics within 100 ms of the pipeline's counters.
    let mut metrics_tick = tokio::time::interval(Duration::from_millis(100));
    metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut ended = Ended::default();
    let mut published = Published::new();
    // After a stop request, how long tables get to drain and flush before ferry exits anyway.
    let grace = tokio::time::sleep(Duration::MAX);
    tokio::pin!(grace);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                grace.as_mut().reset(tokio::time::Instant::now() + STOP_GRACE);
            }
            _ = &mut grace => {
                // Checkpoints never run ahead of durable writes, so leaving now loses nothing:
                // what was not flushed is replayed by the next run, as after a kill -9.
                tracing::warn!(
                    "tables still busy {}s after the stop request (an endpoint keeps failing): exiting without them",
                    STOP_GRACE.as_secs()
                );
                ended.abandoned = true;
                break;
            }
            joined = tables.join_next() => match joined {
                None => break,
                Some(one) => ended.add(one),
            },
            _ = metrics_tick.tick() => {
                for (name, _, stats) in &all_stats {
                    metrics::publish(name, stats);
                }
            }
            _ = tick.tick() => {
                publish(state.as_ref(), &all_stats, &mut published).await?;
                draw(&bars, state.as_ref()).await?;
            }
        }
    }
    publish(state.as_ref(), &all_stats, &mut published).await?;
    bars.finish();
    ended.result()
}

/// Redraws the progress bars from the state store.
async fn draw(bars: &progress::Progress, state: &dyn StateStore) -> Result<()> {
    let mut lines = std::collections::HashMap::new();
    for name in bars.names() {
        lines.insert(name, status::line(state, name).await?);
    }
    bars.update(|name| Ok(lines.get(name).cloned().flatten()))
}

/// How the table runs ended.
#[derive(Default)]
struct Ended {
    failed: Vec<String>,
    /// Some table's state write found its lease taken over.
    lease_lost: Option<Error>,
    /// The stop grace ran out with tables still busy.
    abandoned: bool,
}

impl Ended {
    /// Logs how a table run ended; a failure joins `failed`.
    fn add(&mut self, ended: std::result::Result<(String, Result<()>), tokio::task::JoinError>) {
        match ended {
            Ok((name, Ok(()))) => tracing::info!(table = %name, "table stopped"),
            // Asked to stop while calls were still failing: not the table's failure.
            Ok((name, Err(e))) if e.is_stopped() => tracing::info!(table = %name, "table stopped ({e})"),
            // Nothing was recorded (the state refuses this worker's writes): the new holder goes on.
            Ok((name, Err(e))) if e.is_lease_lost() => {
                tracing::warn!(table = %name, "table handed over: {e}");
                self.lease_lost = Some(e);
            }
            // The table's lifecycle has recorded the failure.
            Ok((name, Err(e))) => {
                tracing::error!(table = %name, "table stopped with an error: {e}");
                self.failed.push(format!("table {name}: {e}"));
            }
            Err(e) => self.failed.push(format!("a table task panicked: {e}")),
        }
    }

    /// `Ok(true)` when every table ended; a lost lease first, then the failures.
    fn result(self) -> Result<bool> {
        match self.lease_lost {
            Some(e) => Err(e),
            None if self.failed.is_empty() => Ok(!self.abandoned),
            None => Err(Error::fatal(self.failed.join("\n"))),
        }
    }
}

/// Every table's name, destination and live counters.
type AllStats = Vec<(String, String, Arc<TableStats>)>;
/// Each table's run, ending with its name and how it ended.
type Runs = JoinSet<(String, Result<()>)>;

/// Starts one [`pair::Pair`] run per checked table, in the direction its row says.
fn spawn_tables(
    checked: Vec<Checking>,
    opts: &SyncOptions,
    store: &Arc<dyn StateStore>,
    (src, dst): (&Clients, &Clients),
    shared: &Shared,
    stop: &CancellationToken,
) -> (Runs, AllStats) {
    let mut tables = JoinSet::new();
    let mut all_stats = Vec::new();
    for (cfg, direction, c) in checked {
        let stats = Arc::new(TableStats::default());
        all_stats.push((cfg.source.clone(), cfg.destination.clone(), stats.clone()));
        let pair = pair::Pair {
            planned: opts.plan.as_ref().and_then(|p| p.table(&cfg.source).cloned()),
            cfg,
            src: src.clone(),
            dst: dst.clone(),
            store: store.clone(),
            stats,
            opts: opts.clone(),
            shared: shared.clone(),
            stop: stop.clone(),
        };
        let name = pair.cfg.source.clone();
        tables.spawn(async move { (name, pair.run(direction, c).await) });
    }
    (tables, all_stats)
}

/// A table, the direction its row says, and its checks for that direction.
type Checking = (TableConfig, Direction, Checked);

/// Every precondition of every table, before anything is written anywhere: all problems at once.
async fn check_all(
    config: &Config,
    opts: &SyncOptions,
    store: &dyn StateStore,
    src: &Clients,
    dst: &Clients,
) -> Result<Vec<Checking>> {
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    for t in &config.tables {
        let row = store.table(&t.source).await?;
        let direction = row.as_ref().map_or(Direction::Forward, |r| r.direction);
        if direction == Direction::Reverse {
            tracing::info!(table = %t.source, "replicating in reverse ({}) since `ferry cutover --switch`", direction.arrow());
            match pair::check_reverse(src, dst, t, opts.checks).await {
                Ok(c) => checked.push((t.clone(), direction, c)),
                Err(e) => problems.push(format!("table {}: {e}", t.source)),
            }
            continue;
        }
        let resuming = row.is_some_and(|r| r.capture_ms.is_some());
        if resuming && opts.from_ms.is_some() {
            problems.push(format!(
                "table {}: --from applies to a fresh start only; this table has started already \
                 (move its position with `ferry checkpoint set --at`)",
                t.source
            ));
            continue;
        }
        let ok = match check_table(src, dst, t, opts.checks, resuming).await {
            Ok(c) => crate::snapshot::export::precheck(src, t, c.destination.as_ref(), resuming, opts.enable_pitr)
                .await
                .map(|()| c),
            Err(e) => Err(e),
        };
        // An SQS buffer's redrive policy and dead-letter queue (source::sqs::dead_letter).
        let ok = match ok {
            Ok(c) => crate::source::sqs::dead_letter::precheck(&src.sqs, t).await.map(|()| c),
            Err(e) => Err(e),
        };
        match ok {
            Ok(c) => checked.push((t.clone(), direction, c)),
            Err(e) => problems.push(format!("table {}: {e}", t.source)),
        }
    }
    if !problems.is_empty() {
        return Err(Error::fatal(problems.join("\n")));
    }

    Ok(checked)
}

/// Writes live counters to the state store (for `ferry status`) and to metrics.
/// What [`publish`] last wrote for each table: it writes only what changed since, so an idle
/// table costs no state writes (a write to the DynamoDB state is a paid transaction).
type Published = std::collections::HashMap<String, (Progress, Option<Retrying>)>;

async fn publish(
    store: &dyn StateStore,
    all: &[(String, String, Arc<TableStats>)],
    last: &mut Published,
) -> Result<()> {
    for (name, _, stats) in all.iter().filter(|(_, _, s)| s.resumed.load(Relaxed)) {
        let progress = Progress {
            records_applied: stats.records_applied.load(Relaxed) as i64,
            newest_applied_ms: Some(stats.newest_applied_ms.load(Relaxed)).filter(|n| *n > 0),
            caught_up: stats.caught_up.load(Relaxed),
            applied_as_of_ms: Some(stats.applied_as_of_ms.load(Relaxed)).filter(|t| *t > 0),
        };
        let retrying = stats.health.retrying().map(|(d, last_error)| Retrying {
            for_ms: d.as_millis() as i64,
            last_error,
        });
        let before = last.get(name);
        if before.is_none_or(|(p, _)| *p != progress) {
            store.put_progress(name, progress).await?;
        }
        if before.is_none_or(|(_, r)| *r != retrying) {
            store.put_health(name, retrying.as_ref()).await?;
        }
        last.insert(name.clone(), (progress, retrying));
        metrics::publish(name, stats);
    }
    Ok(())
}
