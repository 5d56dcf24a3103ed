//! Loading a plan folder: every file is read and checked, every problem is reported at once (file,
//! line, column), and a plan with any problem is refused whole, before anything is created.

use std::path::{Path, PathBuf};

use super::Problems;
use super::lambda_map::{self, Mapping};
use super::schema::TableSchema;
use super::tables_csv::{self, TableRowPlan};
use crate::error::{Error, Result};

/// A plan that passed every check.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dir: PathBuf,
    /// Tables to move, in tables.csv order.
    pub tables: Vec<PlannedTable>,
    /// Tables marked `move = no`.
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PlannedTable {
    pub source: String,
    pub destination: String,
    pub schema: TableSchema,
    /// Mappings to recreate on the destination (rows marked skip are left out).
    pub mappings: Vec<Mapping>,
    /// Mapping rows marked skip, for the report.
    pub skipped_mappings: Vec<Mapping>,
}

impl PlannedTable {
    pub fn renamed(&self) -> bool {
        self.source != self.destination
    }
}

impl Plan {
    pub fn load(dir: &Path) -> Result<Plan> {
        let mut p = Problems::default();
        let plan = Self::load_into(dir, &mut p);
        if p.list.is_empty() {
            Ok(plan)
        } else {
            let n = p.list.len();
            let head = if n == 1 {
                "invalid plan".to_string()
            } else {
                format!("invalid plan ({n} problems)")
            };
            Err(Error::fatal(format!("{head}:\n  {}", p.list.join("\n  "))))
        }
    }

    fn load_into(dir: &Path, p: &mut Problems) -> Plan {
        let mut plan = Plan {
            dir: dir.to_path_buf(),
            tables: Vec::new(),
            skipped: Vec::new(),
        };
        let tables_path = dir.join("tables.csv");
        let Some(text) = read(&tables_path, p) else {
            return plan;
        };
        let rows = tables_csv::read(&tables_path, &text, p);
        let map_path = dir.join("lambda-map.csv");
        let mappings = read_mappings(&map_path, &rows, p);
        for row in rows {
            if !row.moved {
                plan.skipped.push(row.source);
                continue;
            }
            if let Some(t) = planned(dir, row, &mappings, &map_path, p) {
                plan.tables.push(t);
            }
        }
        plan
    }

    /// Makes the config's table list the plan's: each moved table, with its destination from
    /// tables.csv and its tuning from the matching `[[table]]` entry, if any.
    pub fn select_tables(&self, config: &mut crate::config::Config) {
        for t in config.tables.iter().filter(|t| self.table(&t.source).is_none()) {
            tracing::warn!(table = %t.source, "listed in {} but not moved by the plan: left alone", config.path.display());
        }
        config.tables = self
            .tables
            .iter()
            .map(|t| {
                let mut c = config
                    .table(&t.source)
                    .cloned()
                    .unwrap_or_else(|| crate::config::TableConfig::with_defaults(&t.source, &t.destination));
                c.destination = t.destination.clone();
                c
            })
            .collect();
    }

    pub fn table(&self, source: &str) -> Option<&PlannedTable> {
        self.tables.iter().find(|t| t.source == source)
    }
}

fn read(path: &Path, p: &mut Problems) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) => {
            p.push(format!("{}: cannot read: {e}", path.display()));
            None
        }
    }
}

/// lambda-map.csv's rows (none when the file is absent), each naming a table of tables.csv.
fn read_mappings(map_path: &Path, rows: &[TableRowPlan], p: &mut Problems) -> Vec<Mapping> {
    let mappings = if map_path.exists() {
        read(map_path, p).map_or_else(Vec::new, |t| lambda_map::read(map_path, &t, p))
    } else {
        Vec::new()
    };
    for m in &mappings {
        if !rows.iter().any(|r| r.source == m.table) {
            p.push(format!(
                "{}:{}: table {:?} is not in tables.csv",
                map_path.display(),
                m.line,
                m.table
            ));
        }
    }
    mappings
}

/// One moved table: its schema file checked against its row, and its Lambda mappings; `None`
/// when the schema file cannot be read.
fn planned(
    dir: &Path,
    row: TableRowPlan,
    mappings: &[Mapping],
    map_path: &Path,
    p: &mut Problems,
) -> Option<PlannedTable> {
    let path = dir.join("schemas").join(format!("{}.json", row.source));
    let schema = match TableSchema::load(&path) {
        Ok(s) => s,
        Err(list) => {
            list.into_iter().for_each(|e| p.push(e));
            return None;
        }
    };
    if schema.table_name != row.source {
        p.push(format!(
            "{}: TableName {:?} is not the source table {:?} of tables.csv line {} (the destination's \
             name belongs in tables.csv)",
            path.display(),
            schema.table_name,
            row.source,
            row.line
        ));
    }
    let (skipped, mine): (Vec<_>, Vec<_>) = mappings
        .iter()
        .filter(|m| m.table == row.source)
        .cloned()
        .partition(|m| m.skip);
    if !mine.is_empty() && schema.stream_view().is_none() {
        p.push(format!(
            "{}:{}: a Lambda mapping needs a stream, but {} has no enabled StreamSpecification",
            map_path.display(),
            mine[0].line,
            path.display()
        ));
    }
    Some(PlannedTable {
        source: row.source,
        destination: row.destination,
        schema,
        mappings: mine,
        skipped_mappings: skipped,
    })
}
