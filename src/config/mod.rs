//! `ferry.toml`: what to move, from where to where, and where state lives.
//!
//! Parsing reports every problem at once (syntax, unknown keys, wrong types, missing tables), each
//! with file, line and column, and nothing runs until the whole file is valid.

mod aws;
pub mod export;
mod reader;

pub use aws::{Clients, Side, build_clients};
pub use export::{ExportConfig, ExportSource, ExportTarget, Loader, Sse};

use std::path::{Path, PathBuf};

use toml::de::DeTable;

use crate::error::{Error, Result};
use reader::{Errors, Obj};

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages.
    pub path: PathBuf,
    pub source: Side,
    pub destination: Side,
    /// The embedded SQLite state store (relative paths are relative to the config file).
    pub state_path: PathBuf,
    pub tables: Vec<TableConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snapshot {
    /// Parallel segmented scan with consistent reads.
    Scan,
    /// No copy: only changes from the capture point on are replayed.
    None,
    /// Bulk load from a point-in-time export to S3.
    Export(ExportConfig),
}

/// Where a table's changes are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSource {
    /// The source table's DynamoDB stream (kept 24 h).
    Streams,
    /// A FIFO SQS queue filled from the stream by the forwarder Lambda (kept up to 14 days).
    Sqs(QueueConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The FIFO queue's URL (in the source account: the source side's credentials read it).
    pub url: String,
    /// How long a received batch stays invisible to other readers before ferry must extend it.
    pub visibility_timeout_seconds: u32,
    /// ReceiveMessage calls in flight at once (each returns up to 10 messages).
    pub receivers: u32,
    /// `queue_allow_dead_letter`: accept a queue with a redrive policy; its dead-letter queue is
    /// then watched and the table stops when anything lands in it (see
    /// [`crate::source::sqs::dead_letter`]).
    pub allow_dead_letter: bool,
}

#[derive(Debug, Clone)]
pub struct TableConfig {
    pub source: String,
    pub destination: String,
    pub snapshot: Snapshot,
    /// TotalSegments of the snapshot scan and of `verify`; `None` sizes them from the table
    /// ([`crate::snapshot::scan::segments_for`]).
    pub scan_segments: Option<u32>,
    /// Write-unit budget per second on the destination; 0 = unlimited.
    pub max_write_units_per_second: u32,
    /// Read-unit budget per second on the source (snapshot scan, read-through of KEYS_ONLY and
    /// OLD_IMAGE streams); 0 = unlimited, `None` = half the table's read capacity
    /// ([`crate::snapshot::budget::resolve`]).
    pub max_read_units_per_second: Option<u32>,
    /// Batches in flight at once for this table (apply lanes).
    pub write_concurrency: u32,
    /// How far before the capture time stream replay starts, to absorb the coarse
    /// ApproximateCreationDateTime (AWS: 1 s, DynamoDB Local: 1 min).
    pub replay_overlap_seconds: u64,
    pub change_source: ChangeSource,
}

impl TableConfig {
    /// The export settings, with `snapshot = "export"`.
    pub fn export(&self) -> Option<&ExportConfig> {
        match &self.snapshot {
            Snapshot::Export(e) => Some(e),
            _ => None,
        }
    }

    /// A table with every tuning knob at its default (as when ferry.toml sets none).
    pub fn with_defaults(source: &str, destination: &str) -> TableConfig {
        TableConfig {
            source: source.to_string(),
            destination: destination.to_string(),
            snapshot: Snapshot::Scan,
            scan_segments: None,
            max_write_units_per_second: 0,
            max_read_units_per_second: None,
            write_concurrency: 16,
            replay_overlap_seconds: 300,
            change_source: ChangeSource::Streams,
        }
    }
}

const SIDE_KEYS_DOC: &str = "region, profile, role_arn, endpoint_url, [endpoints]";

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::fatal(format!("cannot read config {}: {e}", path.display())))?;
        Self::parse(path, &text)
    }

    /// For `discover`, `plan` and `sync --plan`, where the plan names the tables: `[[table]]`
    /// entries are optional and only tune the tables they name.
    pub fn load_for_plan(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::fatal(format!("cannot read config {}: {e}", path.display())))?;
        Self::parse_with(path, &text, false)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        Self::parse_with(path, text, true)
    }

    fn parse_with(path: &Path, text: &str, tables_required: bool) -> Result<Config> {
        let file = path.display().to_string();
        let mut errs = Errors::new(&file, text);
        let doc = match DeTable::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                errs.at(span, format!("TOML syntax error: {}", e.message().trim()));
                return Err(report(errs));
            }
        };
        let mut root = Obj::new(doc.get_ref(), doc.span(), "the top level");
        let source = side(&mut root, &mut errs, "source");
        let destination = side(&mut root, &mut errs, "destination");
        let mut state_path = PathBuf::from("ferry-state.db");
        if let Some(mut st) = root.table(&mut errs, "state") {
            if let Some(p) = st.string(&mut errs, "path") {
                state_path = PathBuf::from(p);
            }
            st.finish(&mut errs);
        }
        let default_export = export::target(&mut root, &mut errs);
        let mut tables = Vec::new();
        match root.tables(&mut errs, "table") {
            Some(list) if !list.is_empty() => {
                for t in list {
                    if let Some(t) = table(t, &mut errs, default_export.as_ref()) {
                        tables.push(t);
                    }
                }
            }
            Some(_) | None if !tables_required => {}
            _ => errs.at(
                root.span().end..root.span().end,
                "no [[table]] entries: name at least one table to move",
            ),
        }
        root.finish(&mut errs);
        check_duplicates(&tables, &mut errs);
        if !errs.list.is_empty() {
            return Err(report(errs));
        }
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if state_path.is_relative() {
            state_path = base.join(state_path);
        }
        Ok(Config {
            path: path.to_path_buf(),
            source: source.unwrap_or_default(),
            destination: destination.unwrap_or_default(),
            state_path,
            tables,
        })
    }

    pub fn table(&self, source_name: &str) -> Option<&TableConfig> {
        self.tables.iter().find(|t| t.source == source_name)
    }
}

fn report(errs: Errors) -> Error {
    let n = errs.list.len();
    let head = if n == 1 {
        "invalid configuration".to_string()
    } else {
        format!("invalid configuration ({n} problems)")
    };
    Error::fatal(format!("{head}:\n  {}", errs.list.join("\n  ")))
}

fn side(root: &mut Obj, errs: &mut Errors, key: &'static str) -> Option<Side> {
    let Some(mut t) = root.table(errs, key) else {
        errs.at(
            root.span().start..root.span().start,
            format!("missing [{key}] section ({SIDE_KEYS_DOC})"),
        );
        return None;
    };
    let mut s = Side {
        region: t.string(errs, "region"),
        profile: t.string(errs, "profile"),
        role_arn: t.string(errs, "role_arn"),
        endpoint_url: t.string(errs, "endpoint_url"),
        ..Side::default()
    };
    if let Some(mut e) = t.table(errs, "endpoints") {
        s.endpoints.dynamodb = e.string(errs, "dynamodb");
        s.endpoints.streams = e.string(errs, "streams");
        s.endpoints.s3 = e.string(errs, "s3");
        s.endpoints.sqs = e.string(errs, "sqs");
        s.endpoints.lambda = e.string(errs, "lambda");
        s.endpoints.sts = e.string(errs, "sts");
        e.finish(errs);
    }
    for url in [
        &s.endpoint_url,
        &s.endpoints.dynamodb,
        &s.endpoints.streams,
        &s.endpoints.sqs,
        &s.endpoints.s3,
    ]
    .into_iter()
    .flatten()
    {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            errs.at(
                t.span(),
                format!("endpoint {url:?} in [{key}] must start with http:// or https://"),
            );
        }
    }
    t.finish(errs);
    Some(s)
}

fn table(mut t: Obj, errs: &mut Errors, default_export: Option<&ExportTarget>) -> Option<TableConfig> {
    let source = t.string(errs, "source");
    if source.is_none() {
        errs.at(t.span(), format!("{} needs source = \"<table name>\"", t.name()));
    }
    let destination = t.string(errs, "destination");
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
    let scan_segments = t.uint(errs, "scan_segments", 1_000_000);
    if scan_segments == Some(0) {
        errs.at(t.span(), format!("scan_segments in {} must be at least 1", t.name()));
    }
    let max_wcu = t.uint(errs, "max_write_units_per_second", u32::MAX as u64).unwrap_or(0);
    let max_rcu = t.uint(errs, "max_read_units_per_second", u32::MAX as u64);
    let lanes = t.uint(errs, "write_concurrency", 1024).unwrap_or(16).max(1);
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
        max_write_units_per_second: max_wcu as u32,
        max_read_units_per_second: max_rcu.map(|n| n as u32),
        write_concurrency: lanes as u32,
        replay_overlap_seconds: overlap,
        change_source,
    })
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

fn check_duplicates(tables: &[TableConfig], errs: &mut Errors) {
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

/// The least replay overlap: stream record times are rounded down (to the second on AWS, to the
/// minute on DynamoDB Local) and the capture time comes from this host's clock, so a shorter
/// window could skip writes made just after the capture point.
pub const MIN_OVERLAP_SECONDS: u64 = 60;
pub(crate) const OVERLAP_WHY: &str = "stream record times are rounded down (to the minute on DynamoDB Local) and \
     clocks drift, so a shorter window could skip writes made just after the capture point";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("conf/ferry.toml"), text)
    }

    const GOOD: &str = r#"
[source]
region = "us-east-1"
profile = "src"
endpoint_url = "http://127.0.0.1:8000"
[source.endpoints]
streams = "http://127.0.0.1:8001"
[destination]
region = "eu-west-1"
role_arn = "arn:aws:iam::111111111111:role/ferry-destination"
[state]
path = "state/ferry.db"
[[table]]
source = "Orders"
scan_segments = 4
max_write_units_per_second = 1_000
max_read_units_per_second = 250
[[table]]
source = "Users"
destination = "UsersV2"
snapshot = "none"
"#;

    #[test]
    fn reads_a_full_config_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.source.profile.as_deref(), Some("src"));
        assert_eq!(c.source.endpoints.streams.as_deref(), Some("http://127.0.0.1:8001"));
        assert_eq!(
            c.destination.role_arn.as_deref(),
            Some("arn:aws:iam::111111111111:role/ferry-destination")
        );
        assert_eq!(c.state_path, Path::new("conf/state/ferry.db"));
        assert_eq!(c.tables.len(), 2);
        assert_eq!(c.tables[0].destination, "Orders");
        assert_eq!(c.tables[0].scan_segments, Some(4));
        assert_eq!(c.tables[0].max_write_units_per_second, 1000);
        assert_eq!(c.tables[0].max_read_units_per_second, Some(250));
        assert_eq!(
            c.tables[1].max_read_units_per_second, None,
            "half the table's read capacity"
        );
        assert_eq!(c.tables[1].destination, "UsersV2");
        assert_eq!(c.tables[1].snapshot, Snapshot::None);
        assert_eq!(c.tables[1].scan_segments, None, "sized from the table");
    }

    #[test]
    fn reports_every_problem_at_once_with_lines() {
        let text = "[source]\nregoin = \"x\"\n[destination]\nregion = 5\n[[table]]\nsource = \"A\"\nsnapshot = \"export-ish\"\nscan_segments = -1\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("4 problems"), "{err}");
        assert!(
            err.contains("conf/ferry.toml:2:1: unknown key \"regoin\" in [source]"),
            "{err}"
        );
        assert!(
            err.contains("conf/ferry.toml:4:10: region in [destination] must be a string, found integer"),
            "{err}"
        );
        assert!(
            err.contains("conf/ferry.toml:7:12: snapshot in [[table]] #1 must be \"scan\", \"export\" or \"none\""),
            "{err}"
        );
        assert!(
            err.contains(
                "conf/ferry.toml:8:17: scan_segments in [[table]] #1 must be a non-negative integer, found -1"
            ),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_and_missing_tables_are_named() {
        let err = parse("[source]\nregion = \"x\n").unwrap_err().to_string();
        assert!(
            err.contains("conf/ferry.toml:2:") && err.contains("TOML syntax error"),
            "{err}"
        );
        let err = parse("[source]\n[destination]\n").unwrap_err().to_string();
        assert!(err.contains("no [[table]] entries"), "{err}");
        let err = parse("[[table]]\nsource = \"A\"\n").unwrap_err().to_string();
        assert!(
            err.contains("missing [source] section") && err.contains("missing [destination] section"),
            "{err}"
        );
    }

    #[test]
    fn overlaps_below_the_safe_minimum_are_refused() {
        let err = parse(
            "[source]\n[destination]\n[[table]]\nsource=\"A\"\nreplay_overlap_seconds = 0\n\
             [[table]]\nsource=\"B\"\nsnapshot = \"export\"\nexport_s3 = \"s3://b/p/AWSDynamoDB/01/\"\nexport_overlap_seconds = 5\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("replay_overlap_seconds in [[table]] #1 must be at least 60, found 0"),
            "{err}"
        );
        assert!(
            err.contains("export_overlap_seconds in [[table]] #2 must be at least 60, found 5"),
            "{err}"
        );
        assert!(err.contains(":5:"), "names the line: {err}");
    }

    #[test]
    fn replay_overlap_stays_below_stream_retention() {
        let err = parse("[source]\n[destination]\n[[table]]\nsource=\"A\"\nreplay_overlap_seconds = 86400\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("replay_overlap_seconds in [[table]] #1 must be at most 82800"),
            "{err}"
        );
    }

    #[test]
    fn reads_export_settings_and_checks_them() {
        let c = parse(
            "[source]\n[destination]\n[export]\nbucket = \"dst-bucket\"\nprefix = \"/exports/\"\nbucket_owner = \"111111111111\"\n\
             sse = \"KMS\"\nkms_key_id = \"k1\"\n[[table]]\nsource = \"A\"\nsnapshot = \"export\"\nloader = \"import\"\n\
             [[table]]\nsource = \"B\"\nsnapshot = \"export\"\nexport_s3 = \"s3://b/p/AWSDynamoDB/01/\"\nexport_overlap_seconds = 60\n",
        )
        .unwrap();
        let a = c.tables[0].export().unwrap();
        assert_eq!(a.loader, Loader::Import);
        let t = a.target().unwrap();
        assert_eq!(t.prefix.as_deref(), Some("exports"));
        assert_eq!(t.sse, Some(Sse::Kms("k1".into())));
        assert_eq!(a.overlap_seconds, 300);
        let b = c.tables[1].export().unwrap();
        assert_eq!(b.target(), None);
        assert_eq!(
            b.source,
            ExportSource::Folder {
                bucket: "b".into(),
                folder: "p/AWSDynamoDB/01/".into()
            }
        );
        assert_eq!(b.overlap_seconds, 60);

        let err = parse(
            "[source]\n[destination]\n[[table]]\nsource = \"A\"\nsnapshot = \"export\"\nloader = \"fast\"\n\
             [[table]]\nsource = \"B\"\nexport_arn = \"arn:x\"\n[[table]]\nsource = \"C\"\nsnapshot = \"export\"\n\
             export_s3 = \"http://x\"\n[table.export]\nbucket = \"b\"\nsse = \"KMS\"\nformat = \"ION\"\n",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "loader in [[table]] #1 must be \"ferry\" or \"import\", found \"fast\"",
            "[[table]] #1 has snapshot = \"export\" but no [export] bucket",
            "[[table]] #2 has export settings but snapshot is not \"export\"",
            "export_s3 in [[table]] #3 must look like \"s3://bucket/prefix/AWSDynamoDB/<export id>/\"",
            "needs kms_key_id",
            "must be \"DYNAMODB_JSON\"",
        ] {
            assert!(err.contains(want), "missing {want:?} in {err}");
        }
    }

    #[test]
    fn reads_an_sqs_change_source_and_reports_its_mistakes_at_once() {
        let c = parse(
            "[source]\n[destination]\n[[table]]\nsource=\"A\"\nchange_source = \"sqs\"\n\
             queue_url = \"https://sqs.us-east-1.amazonaws.com/1/a.fifo\"\nqueue_receivers = 2\n",
        )
        .unwrap();
        let ChangeSource::Sqs(q) = &c.tables[0].change_source else {
            panic!("{:?}", c.tables[0].change_source)
        };
        assert_eq!(q.url, "https://sqs.us-east-1.amazonaws.com/1/a.fifo");
        assert_eq!((q.receivers, q.visibility_timeout_seconds), (2, 120));
        assert!(!q.allow_dead_letter, "a redrive policy is refused unless opted in");
        let c = parse(
            "[source]\n[destination]\n[[table]]\nsource=\"A\"\nchange_source = \"sqs\"\n\
             queue_url = \"https://q/a.fifo\"\nqueue_allow_dead_letter = true\n",
        )
        .unwrap();
        let ChangeSource::Sqs(q) = &c.tables[0].change_source else {
            panic!()
        };
        assert!(q.allow_dead_letter);
        let err = parse(
            "[source]\n[destination]\n[[table]]\nsource=\"A\"\nchange_source = \"sqs\"\n\
             queue_url = \"https://q/a.fifo\"\nqueue_allow_dead_letter = \"yes\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("queue_allow_dead_letter in [[table]] #1 must be true or false"),
            "{err}"
        );
        assert_eq!(
            parse("[source]\n[destination]\n[[table]]\nsource=\"A\"\n")
                .unwrap()
                .tables[0]
                .change_source,
            ChangeSource::Streams
        );
        let text = "[source]\n[destination]\n[[table]]\nsource=\"A\"\nchange_source = \"sqs\"\n\
                    [[table]]\nsource=\"B\"\nqueue_url = \"https://q/b.fifo\"\n\
                    [[table]]\nsource=\"C\"\nchange_source = \"sqs\"\nqueue_url = \"https://q/standard\"\n\
                    [[table]]\nsource=\"D\"\nchange_source = \"kinesis\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("4 problems"), "{err}");
        assert!(
            err.contains("conf/ferry.toml:5:17: change_source = \"sqs\" in [[table]] #1 needs queue_url"),
            "{err}"
        );
        assert!(
            err.contains("conf/ferry.toml:8:13: queue_url in [[table]] #2 needs change_source = \"sqs\""),
            "{err}"
        );
        assert!(
            err.contains("conf/ferry.toml:12:13: queue_url in [[table]] #3 must be the http(s) URL of a FIFO queue"),
            "{err}"
        );
        assert!(
            err.contains("conf/ferry.toml:15:17: change_source in [[table]] #4 must be \"streams\" or \"sqs\""),
            "{err}"
        );
    }

    #[test]
    fn rejects_two_entries_writing_one_destination() {
        let err = parse("[source]\n[destination]\n[[table]]\nsource=\"A\"\ndestination=\"X\"\n[[table]]\nsource=\"B\"\ndestination=\"X\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("destination table \"X\" is the target of two"), "{err}");
    }
}
