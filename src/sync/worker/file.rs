//! One data file of a table's export, loaded by this worker under the file's own lease: the
//! export's manifest is read from the folder the table's holder recorded, then ferry's loader
//! loads that one file, its progress fenced by the lease.

use std::sync::Arc;
use std::time::Duration;

use super::kit::{Kit, Ready};
use super::unit::{Held, context, part_done};
use crate::checkpoint::lease::units::Done;
use crate::error::{Error, Result};
use crate::snapshot::export::load::FileLoader;
use crate::snapshot::export::manifest;

/// Loads file `file` (its index in the manifest): `Some` once it is loaded, `None` when stopped.
pub(super) async fn load_file(ready: &Ready, kit: &Kit, table: &str, file: usize, held: Held) -> Result<Option<Done>> {
    let ctx = context(table, ready, &ready.scan, &held);
    let export = ctx.store.export(table).await?;
    let (Some(bucket), Some(folder), Some(export_ms)) = export
        .map(|e| (e.bucket, e.folder, e.export_time_ms))
        .unwrap_or_default()
    else {
        return Err(Error::fatal(format!(
            "table {table}: an export file is leased but the export is not recorded"
        )));
    };
    let s3 = kit.clients.1.s3.clone();
    let watch = manifest::Watch {
        stop: &held.stop,
        stats: &ready.stats,
    };
    let manifest = manifest::locate(&s3, &bucket, &folder, watch).await?;
    let loader = FileLoader {
        s3,
        export: Arc::new(manifest),
        table: table.into(),
        key_names: ctx.key_names.clone(),
        store: ctx.store.clone(),
        stats: ready.stats.clone(),
        stop: held.stop.clone(),
        parallel_files: 1,
        export_time_ms: export_ms,
        report_every: Duration::from_secs(60),
        only: Some(file),
        leasing: None,
    };
    let loaded = loader.run(ctx.applier()).await?;
    part_done(&ctx, loaded, file as i64).await
}
