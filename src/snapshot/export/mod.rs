//! `snapshot = "export"`: bulk load from a point-in-time export to S3.
//!
//! ```text
//!  capture point ─▶ PITR export as of T0 (request) ─▶ manifests (manifest) ─▶ data files (reader)
//!                 ─▶ ferry's loader through the apply path (load) │ or native ImportTable (import)
//!                 ─▶ stream replay from exportTime − overlap, only once the load finished
//! ```
//!
//! The export is made by the source side (its credentials, into a bucket possibly owned by the
//! destination account: `bucket_owner`); the destination side reads it. Every step is recorded in
//! the state store before the next starts, so a rerun never starts a second export or import and a
//! restarted load skips the files already loaded.

pub mod import;
pub mod load;
pub mod manifest;
pub mod objects;
mod progress;
pub mod reader;
pub mod request;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::TableDescription;

use crate::apply::Applier;
use crate::checkpoint::lease::units::Offers;
use crate::checkpoint::{Capture, ExportRow, Lifecycle, TableState};
use crate::clock::now_ms;
use crate::config::{Clients, ExportConfig, ExportSource, ExportTarget, Loader, TableConfig};
use crate::error::{Error, Result};
use crate::snapshot::Loaded;
use crate::source::TableContext;
use load::{FileLoader, STREAM_RETENTION_MS};
use manifest::{Export, url};

/// Data files read at once by ferry's loader.
const PARALLEL_FILES: usize = 4;

/// Checks before anything is written: PITR when a new export is needed, and for ImportTable a
/// destination that does not exist yet.
pub async fn precheck(
    src: &Clients,
    t: &TableConfig,
    destination: Option<&TableDescription>,
    resuming: bool,
    enable_pitr: bool,
) -> Result<()> {
    let Some(e) = t.export() else { return Ok(()) };
    if resuming {
        return Ok(());
    }
    if e.target().is_some() && !enable_pitr && !request::pitr_enabled(src, &t.source).await? {
        return Err(request::pitr_off_error(&t.source));
    }
    if e.loader == Loader::Import && destination.is_some() {
        return Err(Error::fatal(format!(
            "destination table {:?} exists, but loader = \"import\" creates it (ImportTable works on new tables \
             only). Delete it, or use loader = \"ferry\".",
            t.destination
        )));
    }
    Ok(())
}

/// Whether the destination is created by ImportTable (so ferry must not create it itself).
pub fn imports(t: &TableConfig, source: &TableDescription) -> bool {
    t.export()
        .is_some_and(|e| e.loader == Loader::Import && import::import_possible(source).is_ok())
}

pub struct ExportSnapshot {
    pub cfg: TableConfig,
    /// The table's `snapshot = "export"` settings.
    pub conf: ExportConfig,
    pub src: Clients,
    pub dst: Clients,
    pub source: TableDescription,
    /// The table's context, with a stop of its own ([`TableContext::child`]).
    pub ctx: TableContext,
    pub enable_pitr: bool,
    /// DescribeExport / DescribeImport / PITR polling interval.
    pub poll: Duration,
    /// With several workers: the data files are leased to them ([`crate::snapshot::spread`]).
    pub files: Option<Arc<dyn Offers>>,
}

impl super::BulkLoader for ExportSnapshot {
    async fn load(self, life: &mut Lifecycle, capture: Capture) -> Result<Loaded> {
        let ctx = self.ctx.clone();
        Ok(match self.run(life, capture, || ctx.applier()).await? {
            Some(capture) => Loaded::Complete(capture),
            None => Loaded::Stopped,
        })
    }
}

impl ExportSnapshot {
    /// A wait for a long-running job of this table's (PITR, the export, the import).
    fn poller(&self, what: String) -> request::Poll {
        request::Poll::new(self.poll, what, &self.ctx.stop, &self.ctx.stats)
    }

    fn conf(&self) -> &ExportConfig {
        &self.conf
    }

    /// The manifest reads retry until the table stops.
    fn watch(&self) -> manifest::Watch<'_> {
        manifest::Watch {
            stop: &self.ctx.stop,
            stats: &self.ctx.stats,
        }
    }

    /// Exports (or finds the export), loads it, and moves the stream's replay point to the export
    /// time (a `BulkLoading` step of `life`). The capture with that replay point when the load is
    /// complete, `None` when stopped first.
    pub async fn run(
        &self,
        life: &mut Lifecycle,
        capture: Capture,
        applier: impl FnOnce() -> Applier,
    ) -> Result<Option<Capture>> {
        let name = self.cfg.source.clone();
        let capture_ms = capture.t0_ms;
        let er = match self.ctx.store.export(&name).await? {
            Some(er) if er.bucket.is_some() && er.folder.is_some() => er,
            er => self.find_or_start(er.unwrap_or_default(), capture_ms).await?,
        };
        let (Some(bucket), Some(folder)) = (er.bucket.clone(), er.folder.clone()) else {
            return Err(Error::fatal(format!(
                "table {name}: the export's folder is not recorded"
            )));
        };
        let export = manifest::locate(&self.dst.s3, &bucket, &folder, self.watch()).await?;
        let export_ms = export.export_time_ms.or(er.export_time_ms).unwrap_or_else(|| {
            tracing::warn!(table = %name, export = %url(&bucket, &folder), "the export names no export time: using the capture point");
            capture_ms
        });
        let mut er = ExportRow {
            export_time_ms: Some(export_ms),
            items_total: export.item_count.map(|n| n as i64),
            ..er
        };
        self.ctx.store.put_export(&name, &er).await?;
        if let Some(n) = er.items_total {
            self.ctx
                .stats
                .snapshot_expected
                .store(n, std::sync::atomic::Ordering::Relaxed);
        }
        let capture = Capture {
            replay_from_ms: export_ms - self.conf().overlap_seconds as i64 * 1000,
            ..capture
        };
        life.transition(TableState::BulkLoading {
            capture: capture.clone(),
            segments: export.files.len() as u32,
        })
        .await?;
        check_retention(&name, export_ms)?;
        tracing::info!(table = %name, export = %url(&bucket, &folder), files = export.files.len(), items = ?export.item_count, "loading export");
        let loaded = match self.conf().loader {
            Loader::Import => match import::import_possible(&self.source) {
                Ok(()) => self.import(&mut er, &export).await.map(|_| true)?,
                Err(why) => {
                    tracing::warn!(table = %name, "loader = \"import\" is not possible ({why}): using ferry's loader instead");
                    self.load(export, export_ms, applier()).await?
                }
            },
            Loader::Ferry => self.load(export, export_ms, applier()).await?,
        };
        if loaded {
            check_retention(&name, export_ms)?;
        }
        Ok(loaded.then_some(capture))
    }

    /// The export's bucket, folder (and ARN, time), starting the export if needed.
    async fn find_or_start(&self, mut er: ExportRow, capture_ms: i64) -> Result<ExportRow> {
        let name = &self.cfg.source;
        let (arn, root) = match &self.conf().source {
            ExportSource::Folder { bucket, folder } => {
                er.bucket = Some(bucket.clone());
                er.folder = Some(folder.clone());
                tracing::info!(table = %name, export = %url(bucket, folder), "reusing an existing export (export_s3)");
                self.ctx.store.put_export(name, &er).await?;
                return Ok(er);
            }
            ExportSource::Arn(arn) => (arn.clone(), None),
            ExportSource::New(target) => {
                let root = export_root(target.prefix.as_deref(), name, capture_ms);
                let arn = match &er.export_arn {
                    Some(a) => a.clone(),
                    None => self.start(target, capture_ms, &root).await?,
                };
                er.export_arn = Some(arn.clone());
                self.ctx.store.put_export(name, &er).await?;
                (arn, Some(root))
            }
        };
        er.export_arn = Some(arn.clone());
        let poll = self.poller(format!("waiting for export {arn}"));
        let d = request::wait_export(&self.src, name, &arn, poll).await?;
        let folder = self.folder_of(&d, &arn, root).await?;
        er.bucket = Some(d.bucket);
        er.folder = Some(folder);
        er.export_time_ms = d.export_time_ms.filter(|t| *t > 0).or(er.export_time_ms);
        if let ExportSource::New(_) = self.conf().source {
            // ferry asked for the export as of the capture time.
            er.export_time_ms = er.export_time_ms.or(Some(capture_ms));
        }
        self.ctx.store.put_export(name, &er).await?;
        Ok(er)
    }

    /// The folder of a finished export.
    async fn folder_of(&self, d: &request::Described, arn: &str, root: Option<String>) -> Result<String> {
        let folder = request::export_folder(d, arn);
        match manifest::locate(&self.dst.s3, &d.bucket, &folder, self.watch()).await {
            Ok(_) => return Ok(folder),
            Err(e) if e.is_stopped() => return Err(e),
            Err(_) => {}
        }
        // Endpoints whose export ARNs do not name the folder (moto): ferry's own export root
        // holds exactly this one export.
        let root = root.unwrap_or_else(|| {
            d.prefix
                .as_deref()
                .map(|p| format!("{}/", p.trim_matches('/')))
                .unwrap_or_default()
        });
        match manifest::single_export_under(&self.dst.s3, &d.bucket, &root, self.watch()).await? {
            Some(f) => {
                tracing::info!(table = %self.cfg.source, export = %url(&d.bucket, &f), "the export ARN names no folder: using the only export under its prefix");
                Ok(f)
            }
            None => Ok(folder),
        }
    }

    async fn start(&self, target: &ExportTarget, capture_ms: i64, root: &str) -> Result<String> {
        let name = &self.cfg.source;
        if !request::pitr_enabled(&self.src, name).await? {
            if !self.enable_pitr {
                return Err(request::pitr_off_error(name));
            }
            request::enable_pitr(&self.src, name, self.poller(format!("enabling PITR on {name:?}"))).await?;
        }
        let table_arn = self
            .source
            .table_arn
            .clone()
            .ok_or_else(|| Error::fatal(format!("source table {name:?} reports no ARN")))?;
        let mut t = target.clone();
        t.prefix = Some(root.trim_end_matches('/').to_string());
        let token = request::client_token(&table_arn, capture_ms, &t);
        let arn = request::start_export(
            &self.src,
            &table_arn,
            capture_ms,
            &t,
            &token,
            &self.ctx.stop,
            &self.ctx.stats,
        )
        .await?;
        tracing::info!(table = %name, export = %arn, bucket = %t.bucket, prefix = %root, "export started");
        Ok(arn)
    }

    async fn import(&self, er: &mut ExportRow, export: &Export) -> Result<()> {
        let name = &self.cfg.source;
        let arn = match &er.import_arn {
            Some(a) => a.clone(),
            None => {
                let owner = self.conf().target().and_then(|t| t.bucket_owner.clone());
                let token = request::client_token(
                    &format!("import:{}", self.cfg.destination),
                    er.export_time_ms.unwrap_or(0),
                    &ExportTarget {
                        bucket: export.bucket.clone(),
                        prefix: Some(export.folder.clone()),
                        ..Default::default()
                    },
                );
                let a = import::start_import(
                    &self.dst,
                    &self.cfg.destination,
                    &self.source,
                    export,
                    owner,
                    &token,
                    crate::retry::Retrier::daemon(
                        format!("importing into {:?}", self.cfg.destination),
                        &self.ctx.stop,
                        &self.ctx.stats,
                    ),
                )
                .await?;
                er.import_arn = Some(a.clone());
                self.ctx.store.put_export(name, er).await?;
                tracing::info!(table = %name, destination = %self.cfg.destination, import = %a, "ImportTable started");
                a
            }
        };
        let poll = self.poller(format!("waiting for import {arn}"));
        let n = import::wait_import(&self.dst, &self.cfg.destination, &arn, poll).await?;
        self.ctx
            .stats
            .snapshot_items
            .store(n.max(0) as u64, std::sync::atomic::Ordering::Relaxed);
        crate::discover::wait_active(&self.dst, &self.cfg.destination).await?;
        Ok(())
    }

    async fn load(&self, export: Export, export_ms: i64, applier: Applier) -> Result<bool> {
        FileLoader {
            s3: self.dst.s3.clone(),
            export: Arc::new(export),
            table: self.cfg.source.clone(),
            key_names: self.ctx.key_names.clone(),
            store: self.ctx.store.clone(),
            stats: self.ctx.stats.clone(),
            stop: self.ctx.stop.clone(),
            parallel_files: PARALLEL_FILES,
            export_time_ms: export_ms,
            report_every: Duration::from_secs(10),
            only: None,
            leasing: self.files.clone(),
        }
        .run(applier)
        .await
    }
}

/// Where ferry asks DynamoDB to write a new export: one folder per table and capture, so the
/// export is the only one under it.
fn export_root(prefix: Option<&str>, table: &str, capture_ms: i64) -> String {
    let base = prefix.map(|p| format!("{p}/")).unwrap_or_default();
    format!("{base}ferry/{table}/{capture_ms}/")
}

/// The stream keeps records 24 h: replaying from the export time needs them all.
fn check_retention(table: &str, export_ms: i64) -> Result<()> {
    let age = now_ms() - export_ms;
    if age >= STREAM_RETENTION_MS {
        return Err(Error::fatal(format!(
            "table {table}: gap: the export reflects the table at {}, {} ago, but the source stream keeps \
             records for 24 h only, so changes made in the first {} after the export may already be trimmed. \
             Remedies: start again from a fresh export (remove the table from the state store and empty the \
             destination) and load it faster (a higher write budget: max_write_units_per_second, by default 80% \
             of the destination's write capacity; write_concurrency; or loader = \"import\"), or use \
             snapshot = \"scan\".",
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(export_ms.max(0) as u64)),
            humantime::format_duration(Duration::from_secs((age / 1000) as u64)),
            humantime::format_duration(Duration::from_secs(((age - STREAM_RETENTION_MS).max(0) / 1000) as u64))
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_older_than_stream_retention_is_a_gap() {
        check_retention("T", now_ms() - STREAM_RETENTION_MS + 60_000).unwrap();
        let err = check_retention("T", now_ms() - STREAM_RETENTION_MS - 3_600_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("table T: gap") && err.contains("first 1h"), "{err}");
        assert!(err.contains("Remedies"), "{err}");
    }

    #[test]
    fn new_exports_get_a_folder_of_their_own() {
        assert_eq!(export_root(Some("p"), "T", 5), "p/ferry/T/5/");
        assert_eq!(export_root(None, "T", 5), "ferry/T/5/");
    }
}
