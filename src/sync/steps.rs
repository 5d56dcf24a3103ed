//! The table run's longer steps: recording the capture point, building and driving the bulk
//! loader (scan or export) and the change source (stream or SQS buffer).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::seams::{Bulk, Changes, Seams, TableApi};
use super::table::{RunCtx, TableRun};
use crate::checkpoint::{Capture, Lifecycle, TableState};
use crate::clock::now_ms;
use crate::config::{self, Snapshot};
use crate::discover;
use crate::discover::View;
use crate::error::{Error, Result};
use crate::snapshot::export::{self, ExportSnapshot};
use crate::snapshot::scan::ScanTask;
use crate::snapshot::source::SdkScan;
use crate::snapshot::{BulkLoader, Loaded};
use crate::source::sqs::consumer::SqsTask;
use crate::source::streams::wire::Images;
use crate::source::streams::{StreamTask, api::SdkStreams};

impl TableRun {
    /// Creates the destination if needed, then records the capture point: T0 and the shard tree,
    /// durably, before a single item is copied. Returns the `Captured` state to persist.
    pub(super) async fn capture(&self, api: &dyn TableApi) -> Result<TableState> {
        let name = &self.cfg.source;
        if self.checked.destination.is_none() && !export::imports(&self.cfg, &self.checked.source) {
            self.create_destination(api).await?;
        }
        let source = if self.checked.view.is_none() {
            api.enable_stream().await?
        } else {
            self.checked.source.clone()
        };
        let stream_arn = source
            .latest_stream_arn
            .clone()
            .ok_or_else(|| Error::fatal(format!("source table {name:?} reports no stream ARN")))?;
        let skew = api.clock_skew().await;
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
        let shards = api.capture_shards(&stream_arn, self.store.as_ref()).await?;
        let overlap_start = t0 - (self.cfg.replay_overlap_seconds as i64) * 1000 - widen;
        let replay_from_ms = match (self.from_ms, &self.cfg.snapshot) {
            (Some(from), Snapshot::None) => from,
            // With a snapshot, starting later than the capture point would lose changes.
            (Some(from), _) => from.min(overlap_start),
            (None, _) => overlap_start,
        };
        let segments = (self.cfg.snapshot != Snapshot::None).then(|| self.planned_segments());
        tracing::info!(table = %name, shards, "capture point recorded");
        Ok(TableState::Captured {
            capture: Capture {
                stream_arn,
                t0_ms: t0,
                replay_from_ms,
            },
            segments,
        })
    }

    async fn create_destination(&self, api: &dyn TableApi) -> Result<()> {
        let name = &self.cfg.source;
        tracing::info!(table = %name, destination = %self.cfg.destination, "creating destination table");
        if let Some(p) = &self.planned {
            // The planned schema is already the destination's: compare the source's keys as the
            // transform renames them.
            let rename = |n| self.cfg.transform.renamed(n);
            let (want, have) = (
                p.schema.key_signature(),
                discover::key_signature_as(&self.checked.source, rename),
            );
            if want != have {
                return Err(Error::fatal(format!(
                    "the plan's schema of {name} has keys [{want}] but the source has [{have}]: every \
                     replicated write would fail. Fix schemas/{name}.json."
                )));
            }
        }
        api.create_destination(self.planned.as_ref(), &self.checked.source)
            .await
    }

    /// The bulk load: the capture (its replay point moved to the export time for an export) when
    /// every item is durable, `None` when stopped first.
    pub(super) async fn bulk_load<S: Seams>(
        &self,
        seams: &S,
        life: &mut Lifecycle,
        ctx: &RunCtx,
        capture: Capture,
        segments: u32,
    ) -> Result<Option<Capture>> {
        let loader = seams.bulk_loader(self, ctx, segments);
        match loader.load(life, capture).await? {
            Loaded::Complete(capture) => {
                let what = match self.cfg.snapshot {
                    Snapshot::Export(_) => "export loaded",
                    _ => "snapshot finished",
                };
                tracing::info!(table = %self.cfg.source, items = self.stats.snapshot_items.load(Relaxed), "{what}");
                Ok(Some(capture))
            }
            Loaded::Stopped => Ok(None),
        }
    }

    /// The bulk loader the config asks for: an export's loader or a parallel scan.
    pub(super) fn bulk_loader(&self, ctx: &RunCtx, segments: u32) -> Bulk {
        let name = &self.cfg.source;
        if let Snapshot::Export(conf) = &self.cfg.snapshot {
            return Bulk::Export(Box::new(ExportSnapshot {
                cfg: self.cfg.clone(),
                conf: conf.clone(),
                src: self.src.clone(),
                dst: self.dst.clone(),
                source: self.checked.source.clone(),
                ctx: ctx.table.child(),
                enable_pitr: self.enable_pitr,
                poll: self.export_poll,
                files: self.files.clone(),
            }));
        }
        let segments = self.snapshot_segments(segments);
        tracing::info!(table = %name, segments, "snapshot: parallel scan");
        // DescribeTable's count is refreshed about every six hours: an estimate, for the ETA.
        if let Some(n) = self.checked.source.item_count {
            self.stats.snapshot_expected.store(n, Relaxed);
        }
        Bulk::Scan(ScanTask {
            source: Arc::new(SdkScan {
                client: self.src.dynamodb.clone(),
                table: name.clone(),
            }),
            ctx: ctx.table.child(),
            segments,
            read_limiter: ctx.read_limiter.clone(),
            read_budget: ctx.read_budget.clone(),
            table_bytes: self.checked.source.table_size_bytes.unwrap_or(0).max(0) as u64,
            table_items: self.checked.source.item_count.unwrap_or(0).max(0) as u64,
            only: None,
            leasing: self.segments.clone(),
        })
    }

    /// The change source the config names: the captured stream, or the SQS buffer.
    pub(super) fn change_source(&self, ctx: &RunCtx, capture: &Capture) -> Changes {
        let name = self.cfg.source.clone();
        let view = self.checked.view.unwrap_or(View::NewImage);
        let replay_from_ms = capture.replay_from_ms;
        if let config::ChangeSource::Sqs(queue) = &self.cfg.change_source {
            tracing::info!(table = %name, queue = %queue.url, "applying changes from the SQS buffer");
            return Changes::Sqs(SqsTask {
                sqs: self.src.sqs.clone(),
                s3: self.src.s3.clone(),
                ctx: ctx.table.clone(),
                queue: queue.clone(),
                view,
                replay_from_ms,
            });
        }
        tracing::info!(table = %name, stream = %capture.stream_arn, "streaming changes");
        Changes::Stream(StreamTask {
            api: Arc::new(SdkStreams(
                self.src.streams.clone(),
                Images::for_transform(&self.cfg.transform),
            )),
            ctx: ctx.table.clone(),
            stream_arn: capture.stream_arn.clone(),
            view,
            replay_from_ms,
            list_every: self.list_every,
            clock: Default::default(),
            leasing: self.shards.clone(),
        })
    }
}
