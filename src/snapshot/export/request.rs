//! The calls that make an export, all with the source side's credentials: the PITR check (and
//! `--enable-pitr`), ExportTableToPointInTime with a deterministic ClientToken, and DescribeExport
//! until it completes.
//!
//! The daemon's calls run under the table's stop-aware [`Retrier::daemon`], and every wait for a
//! long-running job (PITR being enabled, an export, an import) is one [`Retrier::poll`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    ExportDescription, ExportFormat, ExportStatus, PointInTimeRecoverySpecification, PointInTimeRecoveryStatus,
    S3SseAlgorithm,
};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::config::{Clients, ExportTarget, Sse};
use crate::error::{Error, Result};
use crate::retry::{Policy, Retrier, retry};
use crate::telemetry::TableStats;

/// Whether PITR is on for `table`.
pub async fn pitr_enabled(src: &Clients, table: &str) -> Result<bool> {
    retry(Policy::STARTUP, |_| {}, || describe_pitr(src, table)).await
}

/// One DescribeContinuousBackups: whether PITR is on.
async fn describe_pitr(src: &Clients, table: &str) -> Result<bool> {
    let out = src
        .dynamodb
        .describe_continuous_backups()
        .table_name(table)
        .send()
        .await
        .map_err(|e| Error::from_sdk("DescribeContinuousBackups", e).context(format!("table {table:?}")))?;
    Ok(out
        .continuous_backups_description
        .and_then(|d| d.point_in_time_recovery_description)
        .and_then(|p| p.point_in_time_recovery_status)
        == Some(PointInTimeRecoveryStatus::Enabled))
}

/// The refusal when PITR is off and `--enable-pitr` was not given.
pub fn pitr_off_error(table: &str) -> Error {
    Error::fatal(format!(
        "source table {table:?} has point-in-time recovery off; snapshot = \"export\" needs it (the export reads \
         the PITR backup, no table capacity). Enable it, or run `ferry sync --enable-pitr` to let ferry enable it \
         (this changes the source's backup settings and has a storage cost)."
    ))
}

/// A wait for a long-running job (PITR being enabled, an export, an import): a look every
/// `every`, each under the table's stop-aware retrier, and a progress line now and then.
pub(super) struct Poll {
    every: Duration,
    what: String,
    retrier: Retrier,
}

/// What one look at a long-running job found.
pub(super) enum Look<T> {
    Done(T),
    /// Still running: what the progress line says about it.
    Running(String),
}

impl Poll {
    pub(super) fn new(every: Duration, what: String, stop: &CancellationToken, stats: &Arc<TableStats>) -> Poll {
        let retrier = Retrier::daemon(what.clone(), stop, stats);
        Poll { every, what, retrier }
    }

    /// Looks (`describe`) until `judge`, given what it saw and the time since the wait began, says
    /// the job is done or failed; a progress line at most once per `log_every`.
    pub(super) async fn wait<D, T, F, Fut>(
        self,
        log_every: Duration,
        describe: F,
        mut judge: impl FnMut(D, &str) -> Result<Look<T>>,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<D>>,
    {
        let Poll {
            every,
            what,
            mut retrier,
        } = self;
        let mut progress = Progress::new(log_every);
        let look = |d| {
            let elapsed = progress.elapsed().to_string();
            Ok(match judge(d, &elapsed)? {
                Look::Done(t) => Some(t),
                Look::Running(detail) => {
                    if progress.due() {
                        tracing::info!(%elapsed, "{what}: {detail}");
                    }
                    None
                }
            })
        };
        retrier.poll(every, describe, look).await
    }
}

/// Turns PITR on (`--enable-pitr`) and waits until DynamoDB reports it enabled.
pub(super) async fn enable_pitr(src: &Clients, table: &str, mut poll: Poll) -> Result<()> {
    let spec = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .map_err(|e| Error::fatal(e.to_string()))?;
    poll.retrier
        .run(|| async {
            src.dynamodb
                .update_continuous_backups()
                .table_name(table)
                .point_in_time_recovery_specification(spec.clone())
                .send()
                .await
                .map_err(|e| {
                    Error::from_sdk("UpdateContinuousBackups", e).context(format!("enabling PITR on {table:?}"))
                })
        })
        .await?;
    tracing::info!(
        table,
        "enabled point-in-time recovery on the source (--enable-pitr); waiting until it is active"
    );
    let wait = || describe_pitr(src, table);
    let judge = |on, _: &str| {
        Ok(if on {
            Look::Done(())
        } else {
            Look::Running("not active yet".into())
        })
    };
    poll.wait(Duration::from_secs(30), wait, judge).await
}

/// Same table, capture time and target → same token: a rerun (within the token's 8 h) gets the
/// export already started instead of a second one.
pub fn client_token(table_arn: &str, capture_ms: i64, target: &ExportTarget) -> String {
    let mut h = Sha256::new();
    for part in [
        table_arn,
        &capture_ms.to_string(),
        &target.bucket,
        target.prefix.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Starts the export of `table_arn` as of `export_ms` (the capture time). Returns the export ARN.
pub async fn start_export(
    src: &Clients,
    table_arn: &str,
    export_ms: i64,
    target: &ExportTarget,
    token: &str,
    stop: &CancellationToken,
    stats: &Arc<TableStats>,
) -> Result<String> {
    let at = aws_smithy_types::DateTime::from_millis(export_ms);
    let out = Retrier::daemon(format!("exporting {table_arn}"), stop, stats)
        .run(|| async {
            let mut req = src
                .dynamodb
                .export_table_to_point_in_time()
                .table_arn(table_arn)
                .export_time(at)
                .client_token(token)
                .s3_bucket(&target.bucket)
                .set_s3_bucket_owner(target.bucket_owner.clone())
                .export_format(ExportFormat::DynamodbJson);
            // moto answers 500 without a prefix; AWS accepts an empty one.
            req = req.s3_prefix(target.prefix.clone().unwrap_or_else(|| "ferry".into()));
            req = match &target.sse {
                None => req,
                Some(Sse::Aes256) => req.s3_sse_algorithm(S3SseAlgorithm::Aes256),
                Some(Sse::Kms(k)) => req.s3_sse_algorithm(S3SseAlgorithm::Kms).s3_sse_kms_key_id(k),
            };
            req.send()
                .await
                .map_err(|e| Error::from_sdk("ExportTableToPointInTime", e).context(format!("exporting {table_arn}")))
        })
        .await?;
    out.export_description
        .and_then(|d| d.export_arn)
        .ok_or_else(|| Error::fatal("ExportTableToPointInTime returned no export ARN"))
}

/// A finished export, as DescribeExport reports it.
#[derive(Debug, Clone)]
pub struct Described {
    pub bucket: String,
    pub prefix: Option<String>,
    /// Key of manifest-summary.json, when reported.
    pub manifest: Option<String>,
    pub export_time_ms: Option<i64>,
    pub item_count: Option<i64>,
}

/// Polls DescribeExport until the export completes, logging progress and elapsed time.
pub(super) async fn wait_export(src: &Clients, table: &str, export_arn: &str, poll: Poll) -> Result<Described> {
    let judge = |d: ExportDescription, elapsed: &str| match d.export_status {
        Some(ExportStatus::Completed) => {
            tracing::info!(table, export = export_arn, items = ?d.item_count, bytes = ?d.billed_size_bytes, elapsed, "export completed");
            Ok(Look::Done(Described {
                bucket: d
                    .s3_bucket
                    .ok_or_else(|| Error::fatal(format!("DescribeExport {export_arn}: no S3 bucket")))?,
                prefix: d.s3_prefix,
                manifest: d.export_manifest,
                export_time_ms: d.export_time.map(|t| t.to_millis().unwrap_or(0)),
                item_count: d.item_count,
            }))
        }
        Some(ExportStatus::Failed) => Err(Error::fatal(format!(
            "export {export_arn} of {table:?} failed: {} {} (fix the cause, e.g. bucket policy or KMS \
                 grants, then remove the table from the state store to start a new export)",
            d.failure_code.unwrap_or_default(),
            d.failure_message.unwrap_or_default()
        ))),
        _ => Ok(Look::Running(
            "in progress (DynamoDB reports no per-item progress)".into(),
        )),
    };
    let describe = || async {
        src.dynamodb
            .describe_export()
            .export_arn(export_arn)
            .send()
            .await
            .map_err(|e| Error::from_sdk("DescribeExport", e).context(format!("export {export_arn}")))?
            .export_description
            .ok_or_else(|| Error::fatal(format!("DescribeExport {export_arn}: no description")))
    };
    poll.wait(Duration::from_secs(30), describe, judge).await
}

/// A wait's progress log: the time since it began, and a line at most once per period (the first
/// at once).
struct Progress {
    started: Instant,
    period: Duration,
    last: Option<Instant>,
}

impl Progress {
    fn new(period: Duration) -> Progress {
        Progress {
            started: Instant::now(),
            period,
            last: None,
        }
    }

    /// Whole seconds since the wait began, for people.
    fn elapsed(&self) -> humantime::FormattedDuration {
        humantime::format_duration(Duration::from_secs(self.started.elapsed().as_secs()))
    }

    /// Whether to log now; if so, the next line is a period away.
    fn due(&mut self) -> bool {
        if self.last.is_some_and(|t| t.elapsed() < self.period) {
            return false;
        }
        self.last = Some(Instant::now());
        true
    }
}

/// The folder an export writes (`<prefix>/AWSDynamoDB/<id>/`), from DescribeExport.
pub fn export_folder(d: &Described, export_arn: &str) -> String {
    if let Some(m) = &d.manifest
        && let Some((dir, _)) = m.rsplit_once('/')
    {
        return format!("{dir}/");
    }
    let id = export_arn.rsplit('/').next().unwrap_or(export_arn);
    match d
        .prefix
        .as_deref()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        Some(p) => format!("{p}/AWSDynamoDB/{id}/"),
        None => format!("AWSDynamoDB/{id}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_token_is_stable_and_distinct() {
        let t = ExportTarget {
            bucket: "b".into(),
            ..Default::default()
        };
        let a = client_token("arn:t", 1, &t);
        assert_eq!(a, client_token("arn:t", 1, &t));
        assert_eq!(a.len(), 32);
        assert_ne!(a, client_token("arn:t", 2, &t));
    }

    #[test]
    fn export_folder_from_manifest_or_arn() {
        let d = Described {
            bucket: "b".into(),
            prefix: Some("p/".into()),
            manifest: None,
            export_time_ms: None,
            item_count: None,
        };
        assert_eq!(
            export_folder(&d, "arn:aws:dynamodb:r:1:table/T/export/0169"),
            "p/AWSDynamoDB/0169/"
        );
        let d = Described {
            manifest: Some("p/AWSDynamoDB/0170/manifest-summary.json".into()),
            ..d
        };
        assert_eq!(export_folder(&d, "x"), "p/AWSDynamoDB/0170/");
    }
}
