//! One table's life: create → capture → snapshot → settings (with a plan) → stream (or drain the
//! SQS change buffer), resumable at every step from the state store.
//!
//! With `change_source = "sqs"` the capture is the same (T0, the stream's ARN and shard tree: the
//! forwarder reads that stream, so a replaced stream is still a gap); the replay point
//! `replay_from_ms` is then the only position ferry keeps, because the queue holds the rest.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::apply::{Applier, DynamoIo, Limiter};
use crate::checkpoint::{Phase, Store, TableRow};
use crate::clock::now_ms;
use crate::config::{ChangeSource, Clients, Snapshot, TableConfig};
use crate::discover::{self, check::Checked, create};
use crate::error::{Error, Result};
use crate::plan::{PlannedTable, restore};
use crate::retry::{Policy, Retrier};
use crate::snapshot::budget;
use crate::snapshot::export::{self, ExportSnapshot};
use crate::snapshot::scan::{ScanTask, segments_for};
use crate::snapshot::source::SdkScan;
use crate::source::sqs::consumer::SqsTask;
use crate::source::streams::{self, StreamTask, View, api::SdkStreams};
use crate::telemetry::TableStats;

pub struct TableRun {
    pub cfg: TableConfig,
    pub src: Clients,
    pub dst: Clients,
    pub store: Arc<Store>,
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
}

impl TableRun {
    pub async fn run(self) -> Result<()> {
        let name = self.cfg.source.clone();
        let mut row = self
            .store
            .table(&name)?
            .unwrap_or_else(|| TableRow::new(&name, &self.cfg.destination));
        row.error = None;
        // Counters carry over from the last run until this run's first flush.
        self.stats
            .records_applied
            .store(row.records_applied.max(0) as u64, std::sync::atomic::Ordering::Relaxed);
        self.stats
            .newest_applied_ms
            .store(row.newest_applied_ms.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
        let key_names: Arc<[String]> = discover::key_names(&self.checked.source).into();
        let limiter = Arc::new(Limiter::new(self.cfg.max_write_units_per_second));
        let read_budget = budget::resolve(self.cfg.max_read_units_per_second, &self.checked.source);
        let read_limiter = Arc::new(Limiter::new(read_budget.units_per_second));

        let mut _slot = None;
        if let Some(slots) = self.slots.clone().filter(|_| !row.snapshot_done) {
            row.phase = Phase::Queued;
            self.store.put_table(&row)?;
            tokio::select! {
                permit = slots.acquire_owned() => _slot = permit.ok(),
                _ = self.stop.cancelled() => return Ok(()),
            }
        }
        if row.capture_ms.is_none() {
            row.phase = Phase::Creating;
            self.store.put_table(&row)?;
            self.capture(&mut row).await?;
        }
        let view = self.view()?;
        let stream_arn = row.stream_arn.clone().expect("captured");
        self.check_stream_unchanged(&stream_arn).await?;

        if !row.snapshot_done && self.cfg.snapshot == Snapshot::Export {
            row.phase = Phase::Snapshot;
            self.store.put_table(&row)?;
            let snap = ExportSnapshot {
                cfg: self.cfg.clone(),
                src: self.src.clone(),
                dst: self.dst.clone(),
                source: self.checked.source.clone(),
                store: self.store.clone(),
                stats: self.stats.clone(),
                stop: self.stop.child_token(),
                key_names: key_names.clone(),
                enable_pitr: self.enable_pitr,
                poll: self.export_poll,
            };
            if !snap
                .run(&mut row, || {
                    self.applier(key_names.clone(), limiter.clone(), read_limiter.clone())
                })
                .await?
            {
                return Ok(()); // stopped; resumes with the files not yet loaded
            }
            row.snapshot_done = true;
            tracing::info!(table = %name, items = self.stats.snapshot_items.load(std::sync::atomic::Ordering::Relaxed), "export loaded");
        }
        if !row.snapshot_done {
            row.phase = Phase::Snapshot;
            self.store.put_table(&row)?;
            let segments = self.snapshot_segments(&row);
            tracing::info!(table = %name, segments, "snapshot: parallel scan");
            let scan = ScanTask {
                source: Arc::new(SdkScan {
                    client: self.src.dynamodb.clone(),
                    table: name.clone(),
                }),
                table: name.clone(),
                segments,
                key_names: key_names.clone(),
                store: self.store.clone(),
                stats: self.stats.clone(),
                stop: self.stop.child_token(),
                read_limiter: read_limiter.clone(),
                read_budget,
                table_bytes: self.checked.source.table_size_bytes.unwrap_or(0).max(0) as u64,
                table_items: self.checked.source.item_count.unwrap_or(0).max(0) as u64,
            };
            let applier = self.applier(key_names.clone(), limiter.clone(), read_limiter.clone());
            if !scan.run(applier).await? {
                return Ok(()); // stopped; resumes from the saved segments
            }
            row.snapshot_done = true;
            tracing::info!(table = %name, items = self.stats.snapshot_items.load(std::sync::atomic::Ordering::Relaxed), "snapshot finished");
        }
        if self.stop.is_cancelled() {
            self.store.put_table(&row)?;
            return Ok(());
        }
        if let Some(planned) = &self.planned {
            // Every run: each step checks and fixes only what differs from the plan.
            row.phase = Phase::Settings;
            self.store.put_table(&row)?;
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
                tracing::info!(table = %name, destination = %self.cfg.destination, "settings: {change}");
            }
        }
        drop(_slot);
        row.phase = Phase::Streaming;
        self.store.put_table(&row)?;
        if let ChangeSource::Sqs(queue) = &self.cfg.change_source {
            tracing::info!(table = %name, queue = %queue.url, "applying changes from the SQS buffer");
            let task = SqsTask {
                sqs: self.src.sqs.clone(),
                s3: self.src.s3.clone(),
                table: name.clone(),
                queue: queue.clone(),
                view,
                key_names: key_names.clone(),
                replay_from_ms: row.replay_from_ms.unwrap_or(0),
                store: self.store.clone(),
                stats: self.stats.clone(),
                stop: self.stop.clone(),
            };
            return task.run(self.applier(key_names, limiter, read_limiter)).await;
        }
        tracing::info!(table = %name, stream = %stream_arn, "streaming changes");
        let task = StreamTask {
            api: Arc::new(SdkStreams(self.src.streams.clone())),
            table: name.clone(),
            stream_arn,
            view,
            key_names: key_names.clone(),
            replay_from_ms: row.replay_from_ms.unwrap_or(0),
            store: self.store.clone(),
            stats: self.stats.clone(),
            stop: self.stop.clone(),
            list_every: self.list_every,
            clock: Default::default(),
        };
        task.run(self.applier(key_names, limiter, read_limiter)).await
    }

    /// TotalSegments of the snapshot scan: the count recorded at the capture point, so that a
    /// resumed scan splits the table as the saved positions did, whatever the config says now.
    fn snapshot_segments(&self, row: &TableRow) -> u32 {
        let recorded = u32::try_from(row.snapshot_segments).unwrap_or(0);
        if recorded == 0 {
            return self.planned_segments();
        }
        if let Some(n) = self.cfg.scan_segments.filter(|n| *n != recorded) {
            tracing::warn!(table = %self.cfg.source, recorded, configured = n, "the snapshot started with {recorded} segments; it resumes with them (scan_segments applies to the next snapshot)");
        }
        recorded
    }

    /// TotalSegments for a new snapshot: as configured, or sized from the source's item count.
    fn planned_segments(&self) -> u32 {
        let items = self.checked.source.item_count.unwrap_or(0).max(0) as u64;
        segments_for(self.cfg.scan_segments, items)
    }

    /// Creates the destination if needed, then records the capture point: T0 and the shard tree,
    /// durably, before a single item is copied.
    async fn capture(&self, row: &mut TableRow) -> Result<()> {
        let name = &self.cfg.source;
        if self.checked.destination.is_none() && !export::imports(&self.cfg, &self.checked.source) {
            tracing::info!(table = %name, destination = %self.cfg.destination, "creating destination table");
            match &self.planned {
                Some(p) => {
                    let (want, have) = (p.schema.key_signature(), discover::key_signature(&self.checked.source));
                    if want != have {
                        return Err(Error::fatal(format!(
                            "the plan's schema of {name} has keys [{want}] but the source has [{have}]: every \
                             replicated write would fail. Fix schemas/{name}.json."
                        )));
                    }
                    p.schema.create(&self.dst, &self.cfg.destination).await?
                }
                None => create::create_like(&self.dst, &self.cfg.destination, &self.checked.source).await?,
            };
        }
        let source = if self.checked.view.is_none() {
            create::enable_stream(&self.src, name).await?
        } else {
            self.checked.source.clone()
        };
        let stream_arn = source
            .latest_stream_arn
            .clone()
            .ok_or_else(|| Error::fatal(format!("source table {name:?} reports no stream ARN")))?;
        let skew = super::skew::measure(&self.src.dynamodb, name).await;
        let widen = super::skew::widen_ms(skew);
        if widen > 0 {
            tracing::warn!(
                table = %name,
                skew_seconds = skew.unwrap_or(0) / 1000,
                "this host's clock and the source endpoint's differ by {:.0}s: the replay starts that much earlier \
                 (fix the host's time sync)",
                widen as f64 / 1000.0
            );
        }
        let t0 = now_ms();
        let shards = streams::capture(&SdkStreams(self.src.streams.clone()), &stream_arn, &self.store, name).await?;
        row.capture_ms = Some(t0);
        let overlap_start = t0 - (self.cfg.replay_overlap_seconds as i64) * 1000 - widen;
        row.replay_from_ms = Some(match (self.from_ms, self.cfg.snapshot) {
            (Some(from), Snapshot::None) => from,
            // With a snapshot, starting later than the capture point would lose changes.
            (Some(from), _) => from.min(overlap_start),
            (None, _) => overlap_start,
        });
        row.stream_arn = Some(stream_arn);
        row.snapshot_done = self.cfg.snapshot == Snapshot::None;
        row.snapshot_segments = if row.snapshot_done {
            0
        } else {
            self.planned_segments() as i64
        };
        self.store.put_table(row)?;
        tracing::info!(table = %name, shards, "capture point recorded");
        Ok(())
    }

    fn view(&self) -> Result<View> {
        Ok(self.checked.view.unwrap_or(View::NewImage))
    }

    /// A different stream than the one captured means changes between them are lost to ferry.
    async fn check_stream_unchanged(&self, captured: &str) -> Result<()> {
        let now = discover::describe(&self.src, &self.cfg.source, Policy::DAEMON).await?;
        let current = now.as_ref().and_then(|t| {
            t.stream_specification
                .as_ref()
                .filter(|s| s.stream_enabled)
                .and(t.latest_stream_arn.clone())
        });
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

    fn applier(&self, key_names: Arc<[String]>, limiter: Arc<Limiter>, read_limiter: Arc<Limiter>) -> Applier {
        let io = DynamoIo {
            destination: self.dst.dynamodb.clone(),
            destination_table: self.cfg.destination.clone(),
            source: self.src.dynamodb.clone(),
            source_table: self.cfg.source.clone(),
            key_names,
            read_limiter,
            stop: self.stop.clone(),
            stats: self.stats.clone(),
        };
        Applier::start_with_stop(
            Arc::new(io),
            self.cfg.write_concurrency as usize,
            limiter,
            self.stats.clone(),
            self.stop.clone(),
        )
    }
}
