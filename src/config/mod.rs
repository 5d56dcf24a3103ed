//! `ferry.toml`: what to move, from where to where, and where state lives.
//!
//! Parsing reports every problem at once (syntax, unknown keys, wrong types, missing tables), each
//! with file, line and column, and nothing runs until the whole file is valid.

mod aws;
pub mod export;
mod reader;
mod state;
mod table;
mod transform;

pub use aws::{Clients, Side, build_clients};
pub use export::{ExportConfig, ExportSource, ExportTarget, Loader, Sse};
pub use state::{DynamoState, StateConfig};

use std::path::{Path, PathBuf};

use toml::de::DeTable;

use crate::error::{Error, Result};
use reader::{Errors, Obj};
use table::{check_duplicates, table};

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages.
    pub path: PathBuf,
    pub source: Side,
    pub destination: Side,
    /// Where the state lives (`[state]`).
    pub state: StateConfig,
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
    /// Write-unit budget per second on the destination; 0 = unlimited, `None` = a share of what
    /// the destination can take ([`crate::apply::budget::resolve`]).
    pub max_write_units_per_second: Option<u32>,
    /// Read-unit budget per second on the source (snapshot scan, read-through of KEYS_ONLY and
    /// OLD_IMAGE streams); 0 = unlimited, `None` = half the table's read capacity
    /// ([`crate::snapshot::budget::resolve`]).
    pub max_read_units_per_second: Option<u32>,
    /// Most batches in flight at once for this table (its apply lanes); how many are used adapts
    /// to the destination below it ([`crate::apply::concurrency`]).
    pub write_concurrency: u32,
    /// How far before the capture time stream replay starts, to absorb the coarse
    /// ApproximateCreationDateTime (AWS: 1 s, DynamoDB Local: 1 min).
    pub replay_overlap_seconds: u64,
    pub change_source: ChangeSource,
    /// What each item becomes on the way ([`crate::transform`]); empty copies items unchanged.
    pub transform: crate::transform::Spec,
}

impl TableConfig {
    /// The export settings, with `snapshot = "export"`.
    pub fn export(&self) -> Option<&ExportConfig> {
        match &self.snapshot {
            Snapshot::Export(e) => Some(e),
            _ => None,
        }
    }

    /// The pair the other way round, for the reverse direction (after `ferry cutover --switch`):
    /// the destination's stream is read and the source written. No snapshot: the reverse direction
    /// starts from the switch point. A transform is refused: in general it cannot be undone.
    pub fn reversed(&self) -> Result<TableConfig> {
        if !self.transform.is_empty() {
            return Err(Error::fatal(format!(
                "table {}: a table with a [table.transform] cannot replicate in reverse (a transform                  cannot be undone in general)",
                self.source
            )));
        }
        Ok(TableConfig {
            source: self.destination.clone(),
            destination: self.source.clone(),
            snapshot: Snapshot::None,
            change_source: ChangeSource::Streams,
            ..self.clone()
        })
    }

    /// A table with every tuning knob at its default (as when ferry.toml sets none).
    pub fn with_defaults(source: &str, destination: &str) -> TableConfig {
        TableConfig {
            source: source.to_string(),
            destination: destination.to_string(),
            snapshot: Snapshot::Scan,
            scan_segments: None,
            max_write_units_per_second: None,
            max_read_units_per_second: None,
            write_concurrency: DEFAULT_WRITE_CONCURRENCY,
            replay_overlap_seconds: 300,
            change_source: ChangeSource::Streams,
            transform: Default::default(),
        }
    }
}

/// The default most batches in flight per table: enough for a destination 50 ms away to reach an
/// endpoint's ceiling (benches/latency.rs); the adaptive limit stays lower where more only queues.
pub const DEFAULT_WRITE_CONCURRENCY: u32 = 64;

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
        let mut state = state::state(&mut root, &mut errs, destination.as_ref().unwrap_or(&Side::default()));
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
        if let StateConfig::Sqlite(p) = &mut state
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
        Ok(Config {
            path: path.to_path_buf(),
            source: source.unwrap_or_default(),
            destination: destination.unwrap_or_default(),
            state,
            tables,
        })
    }

    pub fn table(&self, source_name: &str) -> Option<&TableConfig> {
        self.tables.iter().find(|t| t.source == source_name)
    }

    /// Where ferry keeps its files by default (cutover reports): beside the SQLite state, or
    /// beside the config file.
    pub fn home(&self) -> PathBuf {
        let beside = match &self.state {
            StateConfig::Sqlite(p) => p.as_path(),
            StateConfig::Dynamo(_) => self.path.as_path(),
        };
        beside
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
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
    let s = side_keys(&mut t, errs, Side::default());
    t.finish(errs);
    Some(s)
}

/// A side's keys in `t`, each in place of `base`'s.
fn side_keys(t: &mut Obj, errs: &mut Errors, base: Side) -> Side {
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
        s.endpoints.application_autoscaling = e.string(errs, "application_autoscaling");
        e.finish(errs);
    }
    for url in [
        &s.endpoint_url,
        &s.endpoints.dynamodb,
        &s.endpoints.streams,
        &s.endpoints.sqs,
        &s.endpoints.s3,
        &s.endpoints.application_autoscaling,
    ]
    .into_iter()
    .flatten()
    {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            errs.at(
                t.span(),
                format!("endpoint {url:?} in {} must start with http:// or https://", t.name()),
            );
        }
    }
    s.or(base)
}

/// The least replay overlap: stream record times are rounded down (to the second on AWS, to the
/// minute on DynamoDB Local) and the capture time comes from this host's clock, so a shorter
/// window could skip writes made just after the capture point.
pub const MIN_OVERLAP_SECONDS: u64 = 60;
pub(crate) const OVERLAP_WHY: &str = "stream record times are rounded down (to the minute on DynamoDB Local) and \
     clocks drift, so a shorter window could skip writes made just after the capture point";

#[cfg(test)]
mod tests;
#[cfg(test)]
mod transform_tests;
