//! `plan/schemas/<table>.json`: everything needed to rebuild one table, as the one table model
//! ([`crate::discover::schema`]) written as JSON, read back and checked ([`check`]) before anything
//! is created.
//!
//! `TableName` is the source table; the destination's name comes from `tables.csv`. The table is
//! created with keys, indexes, billing, SSE and table class; stream, TTL, PITR, deletion protection
//! and tags are restored after the bulk load ([`super::restore`]).

mod check;

use std::path::Path;

pub use crate::discover::schema::{
    AttributeDefinition, Extras, GlobalIndex, KeyElement, LocalIndex, OnDemand, Pitr, Projection, Sse, Stream,
    TableSchema, Tag, Throughput, Ttl,
};

/// Where in the file a problem's subject is: a message reads `<field> "<value>" ...` (`index
/// "byX": ...`, `TableClass "COLD" ...`); the first line holding both the field's JSON key and the
/// quoted value is the place. Line and column are 1-based.
fn locate(text: &str, problem: &str) -> Option<(usize, usize)> {
    let start = problem.find('"')?;
    let end = start + 1 + problem[start + 1..].find('"')?;
    let value = &problem[start..=end];
    let field = match problem[..start].split_whitespace().last()? {
        "index" => "IndexName",
        "attribute" => "AttributeName",
        other => other,
    };
    let key = format!("\"{field}\"");
    text.lines().enumerate().find_map(|(i, line)| {
        let k = line.find(&key)?;
        let v = line[k..].find(value)? + k;
        Some((i + 1, v + 1))
    })
}

impl TableSchema {
    /// Reads and checks one schema file; every problem names the file (and line and column for
    /// JSON errors).
    pub fn load(path: &Path) -> std::result::Result<TableSchema, Vec<String>> {
        let file = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{file}: cannot read: {e}")])?;
        let schema: TableSchema = serde_json::from_str(&text)
            .map_err(|e| vec![format!("{file}:{}:{}: invalid schema: {e}", e.line(), e.column())])?;
        let problems = schema.problems();
        if problems.is_empty() {
            Ok(schema)
        } else {
            Err(problems
                .into_iter()
                .map(|p| match locate(&text, &p) {
                    Some((line, col)) => format!("{file}:{line}:{col}: {p}"),
                    None => format!("{file}: {p}"),
                })
                .collect())
        }
    }
}
