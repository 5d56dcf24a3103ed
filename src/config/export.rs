//! The `[export]` settings of `snapshot = "export"`: where DynamoDB writes the point-in-time export
//! (or which existing export to reuse), and how ferry loads it.

use std::ops::Range;

use super::reader::{Errors, Obj};

/// Server-side encryption of the export objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    Aes256,
    /// KMS with this key id or ARN.
    Kms(String),
}

/// Who writes the export into the destination table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Loader {
    /// ferry's own loader: the batched, rate-limited apply path, resumable per data file.
    #[default]
    Ferry,
    /// DynamoDB's native ImportTable (creates the destination table; no write capacity used).
    Import,
}

/// Where a new export goes (`[export]` at the top level, or `[table.export]` for one table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportTarget {
    pub bucket: String,
    /// Key prefix inside the bucket (DynamoDB adds `AWSDynamoDB/<export id>/`).
    pub prefix: Option<String>,
    /// Account id owning the bucket: lets the source account export into the destination's bucket.
    pub bucket_owner: Option<String>,
    pub sse: Option<Sse>,
}

/// Which export a table loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportSource {
    /// A new export as of the capture point, written here.
    New(ExportTarget),
    /// `export_arn`: an existing export (DescribeExport with the source side's credentials).
    Arn(String),
    /// `export_s3`: the existing export in this folder (`s3://bucket/prefix/AWSDynamoDB/<id>/`).
    Folder { bucket: String, folder: String },
}

/// Everything one table needs for `snapshot = "export"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    pub source: ExportSource,
    pub loader: Loader,
    /// Stream replay applies records from the export time minus this, to absorb the second (AWS)
    /// or minute (DynamoDB Local) rounding of record times.
    pub overlap_seconds: u64,
}

impl ExportConfig {
    /// Where a new export goes; `None` when an existing export is reused.
    pub fn target(&self) -> Option<&ExportTarget> {
        match &self.source {
            ExportSource::New(t) => Some(t),
            _ => None,
        }
    }
}

/// Parses an `[export]` section. `None` when absent.
pub(super) fn target(obj: &mut Obj, errs: &mut Errors) -> Option<ExportTarget> {
    let mut t = obj.table(errs, "export")?;
    let name = t.name().to_string();
    let bucket = t.string(errs, "bucket");
    let prefix = t.string(errs, "prefix");
    let bucket_owner = t.string(errs, "bucket_owner");
    let sse_at = t.string_at(errs, "sse");
    let kms_key_id = t.string(errs, "kms_key_id");
    if let Some((format, span)) = t.string_at(errs, "format")
        && format != "DYNAMODB_JSON"
    {
        errs.at(
            span,
            format!("format in {name} must be \"DYNAMODB_JSON\" (the only format ferry reads), found {format:?}"),
        );
    }
    let sse = sse(&t, errs, &name, sse_at, kms_key_id);
    if let Some(owner) = &bucket_owner
        && !(owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit()))
    {
        errs.at(
            t.span(),
            format!("bucket_owner in {name} must be a 12-digit account id, found {owner:?}"),
        );
    }
    if bucket.is_none() {
        errs.at(
            t.span(),
            format!("{name} needs bucket = \"<S3 bucket for the export>\""),
        );
    }
    t.finish(errs);
    Some(ExportTarget {
        bucket: bucket?,
        prefix: prefix
            .map(|p| p.trim_matches('/').to_string())
            .filter(|p| !p.is_empty()),
        bucket_owner,
        sse,
    })
}

/// `sse = "AES256" | "KMS"` (with `kms_key_id`).
fn sse(
    t: &Obj,
    errs: &mut Errors,
    name: &str,
    sse_at: Option<(String, Range<usize>)>,
    kms_key_id: Option<String>,
) -> Option<Sse> {
    match sse_at {
        None => {
            if kms_key_id.is_some() {
                errs.at(t.span(), format!("kms_key_id in {name} needs sse = \"KMS\""));
            }
            None
        }
        Some((s, _)) if s == "AES256" => Some(Sse::Aes256),
        Some((s, span)) if s == "KMS" => match kms_key_id {
            Some(k) => Some(Sse::Kms(k)),
            None => {
                errs.at(
                    span,
                    format!("sse = \"KMS\" in {name} needs kms_key_id = \"<key id or ARN>\""),
                );
                None
            }
        },
        Some((other, span)) => {
            errs.at(
                span,
                format!("sse in {name} must be \"AES256\" or \"KMS\", found {other:?}"),
            );
            None
        }
    }
}

/// The per-table export keys (`loader`, `export_arn`, `export_s3`, `export_overlap_seconds`,
/// `[table.export]`), checked against `snapshot`. `is_export` says `snapshot = "export"`.
pub(super) fn table_settings(
    t: &mut Obj,
    errs: &mut Errors,
    is_export: bool,
    default_target: Option<&ExportTarget>,
) -> Option<ExportConfig> {
    let name = t.name().to_string();
    let own_target = target(t, errs);
    let loader = loader(t, errs, &name);
    let export_arn = t.string(errs, "export_arn");
    let export_s3 = t.string_at(errs, "export_s3");
    // Below the 24 h stream retention, like replay_overlap_seconds.
    let overlap = t
        .uint_in(
            errs,
            "export_overlap_seconds",
            super::MIN_OVERLAP_SECONDS,
            23 * 3600,
            super::OVERLAP_WHY,
        )
        .unwrap_or(300);
    let any_export_key = own_target.is_some() || export_arn.is_some() || export_s3.is_some();
    if !is_export {
        if any_export_key {
            errs.at(
                t.span(),
                format!("{name} has export settings but snapshot is not \"export\" (add snapshot = \"export\")"),
            );
        }
        return None;
    }
    let source = source(
        t,
        errs,
        &name,
        export_arn,
        export_s3,
        own_target.or_else(|| default_target.cloned()),
    );
    Some(ExportConfig {
        source: source?,
        loader: loader?,
        overlap_seconds: overlap,
    })
}

/// `loader = "ferry" | "import"`.
fn loader(t: &mut Obj, errs: &mut Errors, name: &str) -> Option<Loader> {
    match t.string_at(errs, "loader") {
        None => Some(Loader::Ferry),
        Some((s, _)) if s == "ferry" => Some(Loader::Ferry),
        Some((s, _)) if s == "import" => Some(Loader::Import),
        Some((other, span)) => {
            errs.at(
                span,
                format!("loader in {name} must be \"ferry\" or \"import\", found {other:?}"),
            );
            None
        }
    }
}

/// Which export to load: one to reuse (by ARN or S3 folder) or a new one into `target`.
fn source(
    t: &Obj,
    errs: &mut Errors,
    name: &str,
    export_arn: Option<String>,
    export_s3: Option<(String, Range<usize>)>,
    target: Option<ExportTarget>,
) -> Option<ExportSource> {
    match (export_arn, export_s3, target) {
        (Some(_), Some((s3, span)), _) => {
            folder(&s3, span, name, errs);
            errs.at(t.span(), format!("{name}: set export_arn or export_s3, not both"));
            None
        }
        (Some(arn), None, _) => Some(ExportSource::Arn(arn)),
        (None, Some((s3, span)), _) => folder(&s3, span, name, errs),
        (None, None, Some(target)) => Some(ExportSource::New(target)),
        (None, None, None) => {
            errs.at(
                t.span(),
                format!(
                    "{name} has snapshot = \"export\" but no [export] bucket = \"...\" (or export_arn / export_s3 to \
                     reuse an existing export)"
                ),
            );
            None
        }
    }
}

fn folder(s3: &str, span: Range<usize>, name: &str, errs: &mut Errors) -> Option<ExportSource> {
    match parse_s3_url(s3) {
        Some((bucket, folder)) if !bucket.is_empty() => Some(ExportSource::Folder { bucket, folder }),
        _ => {
            errs.at(
                span,
                format!(
                    "export_s3 in {name} must look like \"s3://bucket/prefix/AWSDynamoDB/<export id>/\", found {s3:?}"
                ),
            );
            None
        }
    }
}

/// `s3://bucket/some/folder` → (`bucket`, `some/folder/`); the folder always ends with `/` unless
/// empty.
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let key = key.trim_matches('/');
    let folder = if key.is_empty() {
        String::new()
    } else {
        format!("{key}/")
    };
    Some((bucket.to_string(), folder))
}
