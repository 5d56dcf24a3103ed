//! Finds an export's data files and what the manifests promise about them.
//!
//! DynamoDB writes `<prefix>/AWSDynamoDB/<id>/manifest-summary.json` (export time, item count, the
//! key of `manifest-files.json`) and `manifest-files.json` (one JSON line per data file: its key
//! relative to the bucket root, item count and MD5). An export without manifests (moto writes
//! none) is read by listing `data/`, with nothing to verify against.

use std::sync::Arc;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::objects::{ExportObjects, S3Objects};
use super::reader::Expect;
use crate::error::{Error, Result};
use crate::retry::Retrier;
use crate::telemetry::TableStats;

#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// Key relative to the bucket root.
    pub key: String,
    pub expect: Expect,
}

/// An export as ferry loads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub bucket: String,
    /// `<prefix>/AWSDynamoDB/<id>/`.
    pub folder: String,
    /// From the manifest; `None` when there is none.
    pub export_time_ms: Option<i64>,
    pub item_count: Option<u64>,
    /// In a stable order (the manifest's, or by key): a file's index is its resume slot.
    pub files: Vec<DataFile>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    export_time: Option<serde_json::Value>,
    item_count: Option<u64>,
    manifest_files_s3_key: Option<String>,
    output_format: Option<String>,
    export_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileLine {
    data_file_s3_key: String,
    item_count: u64,
    md5_checksum: Option<String>,
}

pub fn url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Whose stop ends the manifest reads' retries and whose counters they feed: a load waits out an
/// S3 outage rather than fail, for as long as its table runs.
#[derive(Clone, Copy)]
pub struct Watch<'a> {
    pub stop: &'a CancellationToken,
    pub stats: &'a Arc<TableStats>,
}

impl Watch<'_> {
    fn retrier(&self, what: String) -> Retrier {
        Retrier::daemon(what, self.stop, self.stats)
    }
}

/// Reads the manifests of the export in `folder` (falls back to listing `data/`).
pub async fn locate(s3: &aws_sdk_s3::Client, bucket: &str, folder: &str, watch: Watch<'_>) -> Result<Export> {
    locate_in(&S3Objects(s3.clone()), bucket, folder, watch).await
}

/// [`locate`] through `objects`.
pub async fn locate_in(objects: &dyn ExportObjects, bucket: &str, folder: &str, watch: Watch<'_>) -> Result<Export> {
    let summary_key = format!("{folder}manifest-summary.json");
    let Some(bytes) = get_small(objects, bucket, &summary_key, watch).await? else {
        let files = list_data(objects, bucket, folder, watch).await?;
        if files.is_empty() {
            return Err(Error::fatal(format!(
                "no export at {}: neither manifest-summary.json nor data files (check export_s3 / export_arn, \
                 and that the destination side may read the bucket)",
                url(bucket, folder)
            )));
        }
        tracing::warn!(
            export = %url(bucket, folder),
            files = files.len(),
            "export has no manifest-summary.json (not written by AWS DynamoDB?): loading every object under data/ \
             without item counts or MD5s, and taking the export time from the capture point"
        );
        return Ok(Export {
            bucket: bucket.into(),
            folder: folder.into(),
            export_time_ms: None,
            item_count: None,
            files,
        });
    };
    let summary = parse_summary(&bytes, &url(bucket, &summary_key))?;
    let files_key = summary.1;
    let files_bytes = get_small(objects, bucket, &files_key, watch).await?.ok_or_else(|| {
        Error::fatal(format!(
            "{} names {} as its manifest-files, which does not exist",
            url(bucket, &summary_key),
            url(bucket, &files_key)
        ))
    })?;
    let files = parse_files(&files_bytes, &url(bucket, &files_key))?;
    let sum: u64 = files.iter().filter_map(|f| f.expect.items).sum();
    if let Some(n) = summary.0.item_count
        && n != sum
    {
        return Err(Error::fatal(format!(
            "{}: itemCount {n} differs from the {sum} items listed in {}",
            url(bucket, &summary_key),
            url(bucket, &files_key)
        )));
    }
    Ok(Export {
        bucket: bucket.into(),
        folder: folder.into(),
        export_time_ms: summary.0.export_time_ms,
        item_count: Some(sum),
        files,
    })
}

#[derive(Debug, PartialEq)]
pub struct SummaryInfo {
    pub export_time_ms: Option<i64>,
    pub item_count: Option<u64>,
}

/// Parses manifest-summary.json; returns what ferry needs and the key of manifest-files.json.
pub fn parse_summary(bytes: &[u8], url: &str) -> Result<(SummaryInfo, String)> {
    let s: Summary =
        serde_json::from_slice(bytes).map_err(|e| Error::fatal(format!("{url}: not a manifest summary: {e}")))?;
    if let Some(f) = s.output_format.as_deref()
        && f != "DYNAMODB_JSON"
    {
        return Err(Error::fatal(format!(
            "{url}: outputFormat {f} is not DYNAMODB_JSON (the only format ferry reads)"
        )));
    }
    if let Some(t) = s.export_type.as_deref()
        && t != "FULL_EXPORT"
    {
        return Err(Error::fatal(format!(
            "{url}: exportType {t}: ferry loads full exports only"
        )));
    }
    let export_time_ms = match &s.export_time {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(t)) => Some(
            humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
                .map_err(|e| Error::fatal(format!("{url}: exportTime {t:?} is not a time: {e}")))?
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| Error::fatal(format!("{url}: exportTime {t:?} is before 1970")))?
                .as_millis() as i64,
        ),
        // Epoch seconds (some tools write the time as a number).
        Some(serde_json::Value::Number(n)) => n.as_f64().map(|s| (s * 1000.0) as i64),
        Some(other) => return Err(Error::fatal(format!("{url}: exportTime {other} is not a time"))),
    };
    let files_key = s
        .manifest_files_s3_key
        .ok_or_else(|| Error::fatal(format!("{url}: no manifestFilesS3Key")))?;
    Ok((
        SummaryInfo {
            export_time_ms,
            item_count: s.item_count,
        },
        files_key,
    ))
}

/// Parses manifest-files.json (JSON lines), naming the line of any problem.
pub fn parse_files(bytes: &[u8], url: &str) -> Result<Vec<DataFile>> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::fatal(format!("{url}: not UTF-8: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: FileLine = serde_json::from_str(line)
            .map_err(|e| Error::fatal(format!("{url} line {}: not a manifest entry: {e}", i + 1)))?;
        out.push(DataFile {
            key: f.data_file_s3_key,
            expect: Expect {
                items: Some(f.item_count),
                md5: f.md5_checksum,
            },
        });
    }
    Ok(out)
}

/// A small object (a manifest) whole; `None` when it does not exist. Retried until it works or
/// the table stops.
async fn get_small(objects: &dyn ExportObjects, bucket: &str, key: &str, watch: Watch<'_>) -> Result<Option<Vec<u8>>> {
    watch
        .retrier(format!("reading {}", url(bucket, key)))
        .run(|| objects.get(bucket, key))
        .await
}

/// The only export folder under `<root>AWSDynamoDB/`, when there is exactly one (for endpoints whose
/// export ARNs do not name the folder, like moto's). Errors when there are several.
pub async fn single_export_under(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    root: &str,
    watch: Watch<'_>,
) -> Result<Option<String>> {
    let objects = S3Objects(s3.clone());
    let prefix = format!("{root}AWSDynamoDB/");
    let page = watch
        .retrier(format!("listing {}", url(bucket, &prefix)))
        .run(|| objects.list(bucket, &prefix, Some("/"), None))
        .await?;
    let folders = page.folders;
    match folders.len() {
        0 => Ok(None),
        1 => Ok(folders.into_iter().next()),
        _ => Err(Error::fatal(format!(
            "{} holds {} exports ({}); name the one to load with export_s3",
            url(bucket, &prefix),
            folders.len(),
            folders.join(", ")
        ))),
    }
}

/// Every object under `<folder>data/`, by key.
async fn list_data(objects: &dyn ExportObjects, bucket: &str, folder: &str, watch: Watch<'_>) -> Result<Vec<DataFile>> {
    let prefix = format!("{folder}data/");
    let mut files = Vec::new();
    let mut token: Option<String> = None;
    let mut retrier = watch.retrier(format!("listing {}", url(bucket, &prefix)));
    loop {
        let page = retrier
            .run(|| objects.list(bucket, &prefix, None, token.clone()))
            .await?;
        files.extend(page.keys.into_iter().filter(|k| !k.ends_with('/')).map(|key| DataFile {
            key,
            expect: Expect::default(),
        }));
        token = page.next;
        if token.is_none() {
            break;
        }
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket that is down: every call fails, retryably.
    struct Down;

    impl ExportObjects for Down {
        fn get<'a>(&'a self, _: &'a str, _: &'a str) -> futures::future::BoxFuture<'a, Result<Option<Vec<u8>>>> {
            Box::pin(async { Err(Error::retryable("503 Service Unavailable")) })
        }
        fn open<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> futures::future::BoxFuture<'a, Result<Option<super::super::objects::Chunks>>> {
            Box::pin(async { Err(Error::retryable("503 Service Unavailable")) })
        }
        fn list<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: Option<&'a str>,
            _: Option<String>,
        ) -> futures::future::BoxFuture<'a, Result<super::super::objects::Listing>> {
            Box::pin(async { Err(Error::retryable("503 Service Unavailable")) })
        }
    }

    /// Manifest reads wait out an outage, counted as retries, and end promptly on the table's stop.
    #[tokio::test(start_paused = true)]
    async fn manifest_reads_retry_until_the_table_stops() {
        let (stop, stats) = (CancellationToken::new(), Arc::new(TableStats::default()));
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(600)).await;
            stopper.cancel();
        });
        let watch = Watch {
            stop: &stop,
            stats: &stats,
        };
        let read = locate_in(&Down, "b", "p/AWSDynamoDB/01/", watch);
        let err = tokio::time::timeout(std::time::Duration::from_secs(660), read)
            .await
            .expect("still retrying a minute after the stop")
            .unwrap_err();
        assert!(err.is_stopped(), "{err:?}");
        assert!(stats.retries.load(std::sync::atomic::Ordering::Relaxed) > 1);
    }

    #[test]
    fn reads_the_summary_as_aws_writes_it() {
        let text = r#"{"version":"2020-06-30","exportArn":"arn:aws:dynamodb:us-east-1:111111111111:table/T/export/01","startTime":"2026-11-21T10:00:00.000Z","endTime":"2026-11-21T10:05:00.000Z","tableArn":"arn:aws:dynamodb:us-east-1:111111111111:table/T","tableId":"x","exportTime":"2026-11-21T09:59:59.123Z","s3Bucket":"b","s3Prefix":"p","s3SseAlgorithm":"AES256","s3SseKmsKeyId":null,"manifestFilesS3Key":"p/AWSDynamoDB/01/manifest-files.json","billedSizeBytes":123,"itemCount":5,"outputFormat":"DYNAMODB_JSON"}"#;
        let (info, key) = parse_summary(text.as_bytes(), "s3://b/m").unwrap();
        assert_eq!(key, "p/AWSDynamoDB/01/manifest-files.json");
        assert_eq!(info.item_count, Some(5));
        assert_eq!(info.export_time_ms, Some(1_795_255_199_123));
        let err = parse_summary(
            br#"{"manifestFilesS3Key":"k","exportType":"INCREMENTAL_EXPORT"}"#,
            "s3://b/m",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("full exports only"), "{err}");
    }

    #[test]
    fn reads_manifest_files_and_names_bad_lines() {
        let text = "{\"itemCount\":2,\"md5Checksum\":\"abc==\",\"etag\":\"e-2\",\"dataFileS3Key\":\"p/AWSDynamoDB/01/data/a.json.gz\"}\n\
                    {\"itemCount\":0,\"md5Checksum\":\"def==\",\"etag\":\"e\",\"dataFileS3Key\":\"p/AWSDynamoDB/01/data/b.json.gz\"}\n";
        let files = parse_files(text.as_bytes(), "s3://b/mf").unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].key, "p/AWSDynamoDB/01/data/a.json.gz");
        assert_eq!(files[1].expect.items, Some(0));
        let err = parse_files(b"{\"itemCount\":2}\n{oops\n", "s3://b/mf")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s3://b/mf line 1: not a manifest entry"), "{err}");
    }
}
