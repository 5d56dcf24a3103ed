//! One table's run, driven by its lifecycle ([`crate::checkpoint::lifecycle`]): one small step per
//! state, each ending in a persisted transition, so a run resumes at every step from the state
//! store.
//!
//! The run drives its bulk loader ([`crate::snapshot::BulkLoader`]) and change source
//! ([`crate::source::ChangeSource`]) alike, over one [`TableContext`], and makes its own AWS calls
//! through [`super::seams::TableApi`]: [`TableRun::run_with`] takes scripted seams in the tests.
//!
//! With `change_source = "sqs"` the capture is the same (T0, the stream's ARN and shard tree: the
//! forwarder reads that stream, so a replaced stream is still a gap); the replay point is then
//! the only position ferry keeps, because the queue holds the rest.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::seams::{Sdk, SdkTable, Seams, TableApi};
use super::switch::Streamed;
use crate::apply::gate::Gated;
use crate::apply::{Applier, DynamoIo, Limiter};
use crate::checkpoint::StateStore;
use crate::checkpoint::lease::units::Offers;
use crate::checkpoint::lease::watch::Window;
use crate::checkpoint::{Direction, Lifecycle, TableState};
use crate::config::{Clients, TableConfig};
use crate::discover::schema::TableSchema;
use crate::discover::{self, check::Checked};
use crate::error::{Error, Result};
use crate::plan::{PlannedTable, restore};
use crate::retry::Retrier;
use crate::snapshot::budget::{self, ReadBudget};
use crate::snapshot::scan::segments_for;
use crate::source::TableContext;
use crate::telemetry::TableStats;
use crate::transform::Transform;

pub struct TableRun {
    /// The pair's name in the state store: the forward source's, whichever way this run goes.
    pub key: String,
    /// Which way this run replicates; `cfg`, `src` and `dst` are already the right way round.
    pub direction: Direction,
    pub cfg: TableConfig,
    pub src: Clients,
    pub dst: Clients,
    pub store: Arc<dyn StateStore>,
    pub stats: Arc<TableStats>,
    pub checked: Checked,
    pub stop: CancellationToken,
    pub list_every: Duration,
    /// `--from`: replay the stream from this time (ms) rather than from the capture point.
    pub from_ms: Option<i64>,
    /// `--enable-pitr`: enable PITR on a source that needs an export and has it off.
    pub enable_pitr: bool,
    /// DescribeExport / DescribeImport polling interval.
    pub export_poll: Duration,
    /// This table's part of a `--plan`: its schema, settings and Lambda mappings.
    pub planned: Option<PlannedTable>,
    /// `--parallel-tables`: a slot is held from create through settings, not while streaming.
    pub slots: Option<Arc<Semaphore>>,
    /// With several workers: the table lease's write window; each batch to the destination
    /// is sent only while it is open ([`crate::apply::gate`]).
    pub window: Option<Arc<Window>>,
    /// With several workers: the table's shards are leased to them, and its stream is
    /// coordinated here ([`crate::source::streams::coordinate`]).
    pub shards: Option<Arc<dyn Offers>>,
    /// With several workers: the snapshot scan's segments, or the export's data files, are
    /// leased to them, and the load is coordinated here.
    pub segments: Option<Arc<dyn Offers>>,
    pub files: Option<Arc<dyn Offers>>,
}

/// How a run ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Asked to stop: the daemon is shutting down.
    Stopped,
    /// The pair switched direction (persisted as `Switching`): run the other way now.
    Switched,
}

/// What every step of one run shares: the loaders' and sources' table context, and the read
/// budget.
pub(super) struct RunCtx {
    pub table: TableContext,
    pub read_limiter: Arc<Limiter>,
    pub read_budget: ReadBudget,
}

impl TableRun {
    /// Runs the table until it is stopped, switches direction or fails, recording each in its
    /// lifecycle.
    pub async fn run(self) -> Result<RunEnd> {
        let seams = Sdk(SdkTable {
            key: self.key.clone(),
            src: self.src.clone(),
            dst: self.dst.clone(),
            source: self.cfg.source.clone(),
            destination: self.cfg.destination.clone(),
            transform: self.cfg.transform.clone(),
        });
        self.run_with(&seams).await
    }

    /// [`TableRun::run`] through `seams` instead of the SDK's.
    pub(super) async fn run_with<S: Seams>(&self, seams: &S) -> Result<RunEnd> {
        let mut life = Lifecycle::resume(self.store.clone(), &self.key, &self.cfg.destination).await?;
        if life.row().direction != self.direction {
            return Err(Error::fatal(format!(
                "table {}: the state store says it replicates {}, not {}",
                self.key,
                life.row().direction.as_str(),
                self.direction.as_str()
            )));
        }
        // Counters carry over from the last run until this run's first flush.
        let row = life.row();
        self.stats
            .records_applied
            .store(row.records_applied.max(0) as u64, Relaxed);
        self.stats
            .newest_applied_ms
            .store(row.newest_applied_ms.unwrap_or(0), Relaxed);
        self.stats.resumed.store(true, Relaxed);
        let stats = self.stats.clone();
        life.watch(Box::new(move |row| stats.show_row(row.phase, row.replay_from_ms)));
        let result = self.drive(seams, &mut life).await;
        match &result {
            Ok(RunEnd::Switched) => {}
            // Asked to stop (also while calls were still failing): not the table's failure.
            Ok(RunEnd::Stopped) => life.stop().await?,
            Err(e) if e.is_stopped() => life.stop().await?,
            Err(e) => life.fail(&e.to_string()).await?,
        }
        result
    }

    /// Steps through the lifecycle; returns when stopped, switched or on an error.
    async fn drive<S: Seams>(&self, seams: &S, life: &mut Lifecycle) -> Result<RunEnd> {
        // Built once the destination exists (after `Creating`), so that a table ferry created
        // gets the write budget of what it created.
        let ctx = tokio::sync::OnceCell::new();
        let Some(mut slot) = self.wait_for_slot(life).await? else {
            return Ok(RunEnd::Stopped);
        };
        let mut stream_checked = false;
        loop {
            if let (false, Some(c)) = (stream_checked, life.state().capture()) {
                self.check_stream_unchanged(seams.api(), &c.stream_arn).await?;
                stream_checked = true;
            }
            let next = match life.state().clone() {
                TableState::Creating => self.capture(seams.api()).await?,
                TableState::Captured { capture, segments } => match segments {
                    Some(segments) => TableState::BulkLoading { capture, segments },
                    None => TableState::RestoringSettings { capture },
                },
                TableState::BulkLoading { capture, segments } => {
                    let ctx = ctx.get_or_try_init(|| self.context(seams.api())).await?;
                    match self.bulk_load(seams, life, ctx, capture, segments).await? {
                        Some(capture) if !self.stop.is_cancelled() => TableState::RestoringSettings { capture },
                        _ => return Ok(RunEnd::Stopped), // resumes from the saved positions
                    }
                }
                TableState::RestoringSettings { capture } => {
                    self.restore_settings().await?;
                    slot.take();
                    TableState::Streaming { capture }
                }
                TableState::Streaming { capture } => {
                    let ctx = ctx.get_or_try_init(|| self.context(seams.api())).await?;
                    match self.stream_until_switch(seams, ctx, &capture).await? {
                        Streamed::Switch(to) => return self.switch(life, to).await,
                        Streamed::Stopped => return Ok(RunEnd::Stopped),
                        Streamed::GaveUp => continue,
                    }
                }
                TableState::Switching { at_ms, replay_from_ms } => {
                    self.capture_after_switch(seams.api(), at_ms, replay_from_ms).await?
                }
                other => {
                    return Err(Error::fatal(format!(
                        "table {}: cannot run from {other:?}",
                        self.cfg.source
                    )));
                }
            };
            life.transition(next).await?;
        }
    }

    /// The run's context: the budgets (the write budget logged once per run), and the apply path.
    async fn context(&self, api: &dyn TableApi) -> Result<RunCtx> {
        let read_budget = budget::resolve(self.cfg.max_read_units_per_second, &self.checked.source);
        let schema = self.created_schema();
        let writes = tokio::select! {
            w = api.write_budget(self.cfg.max_write_units_per_second, &schema) => w?,
            _ = self.stop.cancelled() => return Err(Error::stopped(format!("reading table {}", self.cfg.destination))),
        };
        tracing::info!(
            table = %self.cfg.source,
            destination = %self.cfg.destination,
            budget = writes.units_per_second,
            "write budget {writes}"
        );
        let key_names: Arc<[String]> = discover::key_names(&self.checked.source).into();
        let read_limiter = Arc::new(Limiter::new(read_budget.units_per_second));
        let applier = self.applier(key_names.clone(), read_limiter.clone(), writes.units_per_second);
        Ok(RunCtx {
            table: TableContext::new(
                self.key.clone(),
                key_names,
                self.store.clone(),
                self.stats.clone(),
                self.stop.clone(),
                applier,
            ),
            read_limiter,
            read_budget,
        })
    }

    /// The schema ferry creates the destination from when it does not exist: the plan's, else one
    /// like the source (a transform renames attributes, not capacity).
    fn created_schema(&self) -> TableSchema {
        match &self.planned {
            Some(p) => p.schema.clone(),
            None => TableSchema::from_description(&self.checked.source, &Default::default()),
        }
    }

    /// `--parallel-tables`: waits for a slot before the bulk load (`Queued`). `None` when stopped
    /// while waiting; `Some(None)` when no slot is needed.
    async fn wait_for_slot(&self, life: &mut Lifecycle) -> Result<Option<Option<OwnedSemaphorePermit>>> {
        let state = life.state().clone();
        let loads = matches!(
            state,
            TableState::Creating | TableState::Captured { segments: Some(_), .. } | TableState::BulkLoading { .. }
        );
        let Some(slots) = self.slots.clone().filter(|_| loads) else {
            return Ok(Some(None));
        };
        life.transition(TableState::Queued {
            next: Box::new(state.clone()),
        })
        .await?;
        tokio::select! {
            permit = slots.acquire_owned() => {
                life.transition(state).await?;
                Ok(Some(permit.ok()))
            }
            _ = self.stop.cancelled() => Ok(None),
        }
    }

    /// TotalSegments of the snapshot scan: the count recorded at the capture point, so that a
    /// resumed scan splits the table as the saved positions did, whatever the config says now.
    pub(super) fn snapshot_segments(&self, recorded: u32) -> u32 {
        if recorded == 0 {
            return self.planned_segments();
        }
        if let Some(n) = self.cfg.scan_segments.filter(|n| *n != recorded) {
            tracing::warn!(table = %self.cfg.source, recorded, configured = n, "the snapshot started with {recorded} segments; it resumes with them (scan_segments applies to the next snapshot)");
        }
        recorded
    }

    /// TotalSegments for a new snapshot: as configured, or sized from the source's item count.
    pub(super) fn planned_segments(&self) -> u32 {
        let items = self.checked.source.item_count.unwrap_or(0).max(0) as u64;
        segments_for(self.cfg.scan_segments, items)
    }

    /// The plan's settings, on every run: each step checks and fixes only what differs.
    async fn restore_settings(&self) -> Result<()> {
        let Some(planned) = &self.planned else {
            return Ok(());
        };
        // Each step is idempotent, so a step that keeps failing transiently (a one-off call's
        // few attempts spent) is run again, whole, under the daemon's retries.
        let changes = Retrier::daemon(
            format!("restoring the settings of {}", self.cfg.destination),
            &self.stop,
            &self.stats,
        )
        .run(|| restore::restore(&self.dst, planned))
        .await?;
        for change in changes {
            tracing::info!(table = %self.cfg.source, destination = %self.cfg.destination, "settings: {change}");
        }
        Ok(())
    }

    /// A different stream than the one captured means changes between them are lost to ferry.
    async fn check_stream_unchanged(&self, api: &dyn TableApi, captured: &str) -> Result<()> {
        let current = api.current_stream().await?;
        if current.as_deref() != Some(captured) {
            return Err(Error::fatal(format!(
                "table {}: its stream changed since the capture point (captured {captured}, now {}). Changes \
                 between the two streams cannot be replayed. Re-run the table from a fresh snapshot \
                 (remove it from the state store and empty the destination).",
                self.cfg.source,
                current.as_deref().unwrap_or("no stream")
            )));
        }
        Ok(())
    }

    /// Opens the apply path to the destination, each time called (one per loader or source).
    fn applier(
        &self,
        key_names: Arc<[String]>,
        read_limiter: Arc<Limiter>,
        writes: u32,
    ) -> impl Fn() -> Applier + Send + Sync + 'static {
        let limits = (read_limiter, writes);
        let parts = ApplyParts::new(&self.cfg, (&self.src, &self.dst), key_names, limits, &self.stats);
        let (window, stop) = (self.window.clone(), self.stop.clone());
        move || parts.open(window.as_ref(), &stop)
    }
}

/// What a table's apply paths are opened from: one write budget per table and process.
#[derive(Clone)]
pub(super) struct ApplyParts {
    dst: aws_sdk_dynamodb::Client,
    src: aws_sdk_dynamodb::Client,
    destination: String,
    source: String,
    key_names: Arc<[String]>,
    read_limiter: Arc<Limiter>,
    limiter: Arc<Limiter>,
    lanes: usize,
    stats: Arc<TableStats>,
    transform: Arc<Transform>,
}

impl ApplyParts {
    /// `writes` is the table's resolved write budget ([`crate::apply::budget`]), in units/s.
    pub fn new(
        cfg: &TableConfig,
        (src, dst): (&Clients, &Clients),
        key_names: Arc<[String]>,
        (read_limiter, writes): (Arc<Limiter>, u32),
        stats: &Arc<TableStats>,
    ) -> ApplyParts {
        ApplyParts {
            dst: dst.dynamodb.clone(),
            src: src.dynamodb.clone(),
            destination: cfg.destination.clone(),
            source: cfg.source.clone(),
            read_limiter,
            limiter: Arc::new(Limiter::new(writes)),
            lanes: cfg.write_concurrency as usize,
            stats: stats.clone(),
            transform: Arc::new(Transform::new(cfg.transform.clone(), key_names.clone())),
            key_names,
        }
    }

    /// The same parts, their write budget shared with other workers as `share` says.
    pub fn shared(self, budget: u32, share: Arc<crate::apply::limit::Share>) -> ApplyParts {
        ApplyParts {
            limiter: Arc::new(Limiter::new(budget).with_share(share)),
            ..self
        }
    }

    pub fn key_names(&self) -> Arc<[String]> {
        self.key_names.clone()
    }

    /// How stream pages should read new images for this table's transform.
    pub fn images(&self) -> crate::source::streams::wire::Images {
        crate::source::streams::wire::Images::for_transform(self.transform.spec())
    }

    /// A new apply path, its batches held to `window` when one is given.
    pub fn open(&self, window: Option<&Arc<Window>>, stop: &CancellationToken) -> Applier {
        let io = DynamoIo {
            destination: self.dst.clone(),
            destination_table: self.destination.clone(),
            source: self.src.clone(),
            source_table: self.source.clone(),
            key_names: self.transform.dest_keys().clone(),
            read_limiter: self.read_limiter.clone(),
            stop: stop.clone(),
            stats: self.stats.clone(),
        };
        let (limiter, stats, stop) = (self.limiter.clone(), self.stats.clone(), stop.clone());
        let shape = self.transform.clone();
        match window {
            None => Applier::start_with_stop(Arc::new(io), self.lanes, limiter, stats, shape, stop),
            Some(w) => {
                let gated = Gated { io, window: w.clone() };
                Applier::start_with_stop(Arc::new(gated), self.lanes, limiter, stats, shape, stop)
            }
        }
    }
}
