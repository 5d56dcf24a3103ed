//! `plan/lambda-map.csv`: one row per Lambda event source mapping on a source table's stream.
//!
//! A person sets `destination_function` (a name or ARN in the destination account) or writes
//! `skip` in `action`. Every other column is the source mapping's setting and is recreated as
//! written, except that the destination mapping always starts disabled at LATEST (see
//! [`super::lambda`]).

use std::path::Path;

use super::Problems;
use super::tables_csv::{csv_error, header_of};

pub const COLUMNS: &[&str] = &[
    "table",
    "uuid",
    "source_function",
    "destination_function",
    "action",
    "enabled",
    "batch_size",
    "batching_window_seconds",
    "starting_position",
    "filter_criteria",
    "maximum_retry_attempts",
    "bisect_batch_on_error",
    "maximum_record_age_seconds",
    "parallelization_factor",
    "tumbling_window_seconds",
    "function_response_types",
    "on_failure_destination",
];

/// One mapping: its settings as discovered (or edited).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping {
    /// Line in lambda-map.csv (0 when it came from AWS), for messages.
    pub line: u64,
    /// The source table whose stream triggers it.
    pub table: String,
    /// The source mapping's id, so a person can find it.
    pub uuid: String,
    pub source_function: String,
    /// Empty only when `skip` is set.
    pub destination_function: String,
    pub skip: bool,
    /// Whether the source mapping is enabled; the destination's is enabled only at cutover.
    pub enabled: bool,
    pub batch_size: Option<i32>,
    pub batching_window_seconds: Option<i32>,
    pub starting_position: String,
    /// Filter patterns, each a JSON document; the CSV cell is a JSON array of them
    /// (`[{"eventName":["INSERT"]}]`).
    pub filter_patterns: Vec<String>,
    pub maximum_retry_attempts: Option<i32>,
    pub bisect_batch_on_error: Option<bool>,
    pub maximum_record_age_seconds: Option<i32>,
    pub parallelization_factor: Option<i32>,
    pub tumbling_window_seconds: Option<i32>,
    pub function_response_types: Vec<String>,
    pub on_failure_destination: String,
}

/// "arn:aws:lambda:r:a:function:name[:qualifier]" → "name[:qualifier]"; a name stays as is.
pub fn function_name(arn_or_name: &str) -> String {
    match arn_or_name.split_once(":function:") {
        Some((_, rest)) => rest.to_string(),
        None => arn_or_name.to_string(),
    }
}

pub fn write(path: &Path, mappings: &[Mapping]) -> crate::Result<()> {
    let io = |e: csv::Error| crate::Error::fatal(format!("writing {}: {e}", path.display()));
    let mut w = csv::Writer::from_path(path).map_err(io)?;
    let n = |v: Option<i32>| v.map_or(String::new(), |v| v.to_string());
    let yn = |b: bool| if b { "yes" } else { "no" }.to_string();
    w.write_record(COLUMNS).map_err(io)?;
    for m in mappings {
        w.write_record([
            m.table.clone(),
            m.uuid.clone(),
            m.source_function.clone(),
            m.destination_function.clone(),
            if m.skip { "skip" } else { "create" }.into(),
            yn(m.enabled),
            n(m.batch_size),
            n(m.batching_window_seconds),
            m.starting_position.clone(),
            if m.filter_patterns.is_empty() {
                String::new()
            } else {
                filters_cell(&m.filter_patterns)
            },
            n(m.maximum_retry_attempts),
            m.bisect_batch_on_error.map_or(String::new(), yn),
            n(m.maximum_record_age_seconds),
            n(m.parallelization_factor),
            n(m.tumbling_window_seconds),
            m.function_response_types.join(";"),
            m.on_failure_destination.clone(),
        ])
        .map_err(io)?;
    }
    w.flush()
        .map_err(|e| crate::Error::fatal(format!("writing {}: {e}", path.display())))
}

/// Reads the rows, reporting every problem with file, line and column.
pub fn read(path: &Path, text: &str, problems: &mut Problems) -> Vec<Mapping> {
    let file = path.display().to_string();
    let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let Some(cols) = header_of(&file, &mut r, COLUMNS, problems) else {
        return Vec::new();
    };
    for required in ["table", "source_function", "destination_function"] {
        if !cols.iter().any(|c| c == required) {
            problems.push(format!("{file}:1: needs the column {required}"));
            return Vec::new();
        }
    }
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                problems.push(csv_error(&file, &e));
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        let mut cell = Cell {
            file: &file,
            line,
            cols: &cols,
            rec: &rec,
            problems,
        };
        out.push(cell.mapping());
    }
    out
}

/// The patterns as one JSON array; a pattern that is not JSON (Lambda would refuse it) is kept
/// as a JSON string so nothing is lost.
fn filters_cell(patterns: &[String]) -> String {
    let items: Vec<String> = patterns
        .iter()
        .map(|p| match serde_json::from_str::<serde_json::Value>(p) {
            Ok(v) => v.to_string(),
            Err(_) => serde_json::Value::String(p.clone()).to_string(),
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// A pattern from the cell: a JSON string is the pattern's text, anything else is the pattern.
fn pattern_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Patterns compared by meaning (key order and spacing aside), for idempotent updates.
pub fn same_patterns(a: &[String], b: &[String]) -> bool {
    let norm = |ps: &[String]| {
        let mut v: Vec<String> = ps
            .iter()
            .map(|p| serde_json::from_str::<serde_json::Value>(p).map_or_else(|_| p.clone(), |v| v.to_string()))
            .collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

/// One CSV cell's reader, naming file, line and column in its problems.
struct Cell<'a> {
    file: &'a str,
    line: u64,
    cols: &'a [String],
    rec: &'a csv::StringRecord,
    problems: &'a mut Problems,
}

impl Cell<'_> {
    fn idx(&self, col: &str) -> Option<usize> {
        self.cols.iter().position(|c| c == col)
    }
    fn text(&mut self, col: &str) -> String {
        self.idx(col)
            .and_then(|i| self.rec.get(i))
            .map_or(String::new(), |s| s.trim().to_string())
    }
    fn error(&mut self, col: &str, what: String) {
        let c = self.idx(col).map_or(0, |i| i + 1);
        self.problems
            .push(format!("{}:{}:{c}: {col} {what}", self.file, self.line));
    }
    fn int(&mut self, col: &str, min: i32, max: i32) -> Option<i32> {
        let t = self.text(col);
        if t.is_empty() {
            return None;
        }
        match t.parse::<i32>() {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.error(col, format!("must be a whole number from {min} to {max}, found {t:?}"));
                None
            }
        }
    }
    fn flag(&mut self, col: &str) -> Option<bool> {
        match self.text(col).to_ascii_lowercase().as_str() {
            "" => None,
            "yes" | "true" => Some(true),
            "no" | "false" => Some(false),
            other => {
                let other = other.to_string();
                self.error(col, format!("must be yes or no, found {other:?}"));
                None
            }
        }
    }
}

impl Cell<'_> {
    /// The row's mapping, every bad cell reported.
    fn mapping(&mut self) -> Mapping {
        let mut m = Mapping {
            line: self.line,
            table: self.text("table"),
            uuid: self.text("uuid"),
            source_function: self.text("source_function"),
            destination_function: self.text("destination_function"),
            starting_position: self.text("starting_position"),
            on_failure_destination: self.text("on_failure_destination"),
            ..Mapping::default()
        };
        m.skip = match self.text("action").to_ascii_lowercase().as_str() {
            "" | "create" => false,
            "skip" => true,
            other => {
                self.error("action", format!("must be create or skip, found {other:?}"));
                false
            }
        };
        m.enabled = self.flag("enabled").unwrap_or(true);
        m.batch_size = self.int("batch_size", 1, 10_000);
        m.batching_window_seconds = self.int("batching_window_seconds", 0, 300);
        m.maximum_retry_attempts = self.int("maximum_retry_attempts", -1, 10_000);
        m.bisect_batch_on_error = self.flag("bisect_batch_on_error");
        m.maximum_record_age_seconds = self.int("maximum_record_age_seconds", -1, 604_800);
        m.parallelization_factor = self.int("parallelization_factor", 1, 10);
        m.tumbling_window_seconds = self.int("tumbling_window_seconds", 0, 900);
        m.function_response_types = self
            .text("function_response_types")
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        m.filter_patterns = self.filter_patterns();
        if m.table.is_empty() {
            self.error("table", "is empty".into());
        }
        if !m.skip && m.destination_function.is_empty() {
            self.error(
                "destination_function",
                format!(
                    "is empty for the mapping of {:?} on {:?}: name the destination function, or write skip in action",
                    m.source_function, m.table
                ),
            );
        }
        m
    }

    /// The filter_criteria cell: a JSON array of patterns, or none.
    fn filter_patterns(&mut self) -> Vec<String> {
        let filters = self.text("filter_criteria");
        if filters.is_empty() {
            return Vec::new();
        }
        match serde_json::from_str::<Vec<serde_json::Value>>(&filters) {
            Ok(f) => f.iter().map(pattern_text).collect(),
            Err(e) => {
                self.error(
                    "filter_criteria",
                    format!("must be a JSON array of filter patterns like [{{\"eventName\":[\"INSERT\"]}}]: {e}"),
                );
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_requires_a_destination_unless_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lambda-map.csv");
        let m = Mapping {
            table: "Orders".into(),
            uuid: "u-1".into(),
            source_function: "fn".into(),
            destination_function: "fn2".into(),
            enabled: true,
            batch_size: Some(50),
            starting_position: "TRIM_HORIZON".into(),
            filter_patterns: vec![r#"{"eventName":["INSERT"]}"#.into()],
            bisect_batch_on_error: Some(true),
            function_response_types: vec!["ReportBatchItemFailures".into()],
            on_failure_destination: "arn:aws:sqs:us-east-1:1:q".into(),
            ..Mapping::default()
        };
        write(&path, std::slice::from_ref(&m)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""[{""eventName"":[""INSERT""]}]""#), "{text}");
        let mut p = Problems::default();
        let back = read(&path, &text, &mut p);
        assert!(p.list.is_empty(), "{:?}", p.list);
        assert_eq!(back, vec![Mapping { line: 2, ..m }]);

        let edited = text.replace(",fn2,create,", ",,create,");
        let mut p = Problems::default();
        read(Path::new("lambda-map.csv"), &edited, &mut p);
        assert_eq!(p.list.len(), 1);
        assert!(
            p.list[0].starts_with("lambda-map.csv:2:4: destination_function is empty"),
            "{:?}",
            p.list
        );
        let skipped = text.replace(",fn2,create,", ",,skip,");
        let mut p = Problems::default();
        assert!(read(Path::new("lambda-map.csv"), &skipped, &mut p)[0].skip);
        assert!(p.list.is_empty(), "{:?}", p.list);
    }

    #[test]
    fn function_names_come_out_of_arns() {
        assert_eq!(function_name("arn:aws:lambda:us-east-1:1:function:fn:live"), "fn:live");
        assert_eq!(function_name("fn"), "fn");
    }
}
