//! One `[[table]]` entry: its keys read and checked (snapshot, budgets, overlap, export settings,
//! change source), and names that two entries must not share.

use super::reader::{Errors, Obj};
use super::{
    ChangeSource, DEFAULT_WRITE_CONCURRENCY, ExportTarget, MIN_OVERLAP_SECONDS, OVERLAP_WHY, QueueConfig, Snapshot,
    TableConfig, export,
};

pub(super) fn table(mut t: Obj, errs: &mut Errors, default_export: Option<&ExportTarget>) -> Option<TableConfig> {
    let source = t.string(errs, "source");
    if source.is_none() {
        errs.at(t.span(), format!("{} needs source = \"<table name>\"", t.name()));
    }
    let destination = t.string(errs, "destination");
    let (snapshot, is_export) = snapshot_kind(&mut t, errs);
    let scan_segments = t.uint(errs, "scan_segments", 1_000_000);
    if scan_segments == Some(0) {
        errs.at(t.span(), format!("scan_segments in {} must be at least 1", t.name()));
    }
    let max_wcu = t.uint(errs, "max_write_units_per_second", u32::MAX as u64);
    let max_rcu = t.uint(errs, "max_read_units_per_second", u32::MAX as u64);
    let lanes = t.uint(errs, "write_concurrency", 1024).map(|n| n as u32);
    // Below the 24 h stream retention: an older replay point could start past trimmed records.
    let overlap = t
        .uint_in(
            errs,
            "replay_overlap_seconds",
            MIN_OVERLAP_SECONDS,
            23 * 3600,
            OVERLAP_WHY,
        )
        .unwrap_or(300);
    let export = export::table_settings(&mut t, errs, is_export, default_export);
    let change_source = change_source(&mut t, errs);
    let transform_at = t.span_of("transform");
    let transform = super::transform::read(&mut t, errs);
    if let (Some(span), Some(e)) = (transform_at, &export)
        && !transform.is_empty()
        && e.loader == super::Loader::Import
    {
        errs.at(
            span,
            format!(
                "{} has a transform, and loader = \"import\" cannot transform (ImportTable writes the export's items as they are): use loader = \"ferry\"",
                t.name()
            ),
        );
    }
    t.finish(errs);
    let source = source?;
    let change_source = change_source?;
    Some(TableConfig {
        destination: destination.unwrap_or_else(|| source.clone()),
        source,
        snapshot: match export {
            Some(e) => Snapshot::Export(e),
            None => snapshot?,
        },
        scan_segments: scan_segments.map(|n| n as u32),
        max_write_units_per_second: max_wcu.map(|n| n as u32),
        max_read_units_per_second: max_rcu.map(|n| n as u32),
        write_concurrency: lanes.unwrap_or(DEFAULT_WRITE_CONCURRENCY).max(1),
        replay_overlap_seconds: overlap,
        change_source,
        transform,
    })
}

/// `snapshot = "scan" | "none" | "export"`: the kind, and whether it is an export (whose settings
/// are parsed apart, so the kind alone is `None` then).
fn snapshot_kind(t: &mut Obj, errs: &mut Errors) -> (Option<Snapshot>, bool) {
    let snapshot_at = t.string_at(errs, "snapshot");
    let is_export = matches!(&snapshot_at, Some((s, _)) if s == "export");
    let snapshot = match snapshot_at {
        None => Some(Snapshot::Scan),
        Some((s, _)) if s == "scan" => Some(Snapshot::Scan),
        Some((s, _)) if s == "none" => Some(Snapshot::None),
        // Snapshot::Export, with the settings parsed below.
        Some((s, _)) if s == "export" => None,
        Some((other, span)) => {
            errs.at(
                span,
                format!(
                    "snapshot in {} must be \"scan\", \"export\" or \"none\", found {other:?}",
                    t.name()
                ),
            );
            None
        }
    };
    (snapshot, is_export)
}

/// `change_source = "streams" | "sqs"` with its queue settings; queue settings without `"sqs"`
/// are an error rather than silently unused.
fn change_source(t: &mut Obj, errs: &mut Errors) -> Option<ChangeSource> {
    let kind = t.string_at(errs, "change_source");
    let url = t.string_at(errs, "queue_url");
    // SQS allows 12 hours at most.
    let visibility = t
        .uint(errs, "queue_visibility_timeout_seconds", 12 * 3600)
        .unwrap_or(120);
    let receivers = t.uint(errs, "queue_receivers", 256).unwrap_or(8);
    let allow_dead_letter = t.bool(errs, "queue_allow_dead_letter").unwrap_or(false);
    match (kind, url) {
        (None, None) => Some(ChangeSource::Streams),
        (Some((k, _)), None) if k == "streams" => Some(ChangeSource::Streams),
        (Some((k, span)), Some((_, url_span))) if k == "streams" => {
            errs.at(
                url_span.start.min(span.start)..url_span.end,
                format!("queue_url in {} is only read with change_source = \"sqs\"", t.name()),
            );
            None
        }
        (None, Some((_, span))) => {
            errs.at(span, format!("queue_url in {} needs change_source = \"sqs\"", t.name()));
            None
        }
        (Some((k, span)), None) if k == "sqs" => {
            errs.at(
                span,
                format!(
                    "change_source = \"sqs\" in {} needs queue_url = \"https://sqs.<region>.amazonaws.com/<account>/<name>.fifo\"",
                    t.name()
                ),
            );
            None
        }
        (Some((k, _)), Some((url, span))) if k == "sqs" => {
            queue(t, errs, url, span, visibility, receivers, allow_dead_letter)
        }
        (Some((other, span)), _) => {
            errs.at(
                span,
                format!(
                    "change_source in {} must be \"streams\" or \"sqs\", found {other:?}",
                    t.name()
                ),
            );
            None
        }
    }
}

/// The queue of `change_source = "sqs"`: a FIFO queue's URL and settings that can work.
fn queue(
    t: &Obj,
    errs: &mut Errors,
    url: String,
    span: std::ops::Range<usize>,
    visibility: u64,
    receivers: u64,
    allow_dead_letter: bool,
) -> Option<ChangeSource> {
    let ok_scheme = url.starts_with("http://") || url.starts_with("https://");
    if !ok_scheme || !url.ends_with(".fifo") {
        errs.at(
            span,
            format!(
                "queue_url in {} must be the http(s) URL of a FIFO queue (ending in .fifo), found {url:?}",
                t.name()
            ),
        );
        return None;
    }
    if visibility == 0 || receivers == 0 {
        errs.at(
            t.span(),
            format!(
                "queue_visibility_timeout_seconds and queue_receivers in {} must be at least 1",
                t.name()
            ),
        );
        return None;
    }
    Some(ChangeSource::Sqs(QueueConfig {
        url,
        visibility_timeout_seconds: visibility as u32,
        receivers: receivers as u32,
        allow_dead_letter,
    }))
}

pub(super) fn check_duplicates(tables: &[TableConfig], errs: &mut Errors) {
    let mut seen_src = std::collections::HashSet::new();
    let mut seen_dst = std::collections::HashSet::new();
    for t in tables {
        if !seen_src.insert(&t.source) {
            errs.at(0..0, format!("source table {:?} is listed twice", t.source));
        }
        if !seen_dst.insert(&t.destination) {
            errs.at(
                0..0,
                format!(
                    "destination table {:?} is the target of two [[table]] entries",
                    t.destination
                ),
            );
        }
    }
}
