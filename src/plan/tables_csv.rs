//! `plan/tables.csv`: one row per source table. `move` (yes/no) and `destination` are for a person
//! to edit; the other columns describe the source as discover saw it and are not read back.

use std::path::Path;

use super::Problems;

/// Every column, in file order. A column outside this list is an error.
pub const COLUMNS: &[&str] = &[
    "source",
    "move",
    "destination",
    "size_bytes",
    "item_count",
    "billing_mode",
    "read_capacity",
    "write_capacity",
    "stream_view_type",
    "pitr",
    "ttl_attribute",
    "deletion_protection",
    "table_class",
    "gsi_count",
    "lsi_count",
];

/// One discovered table, as written by discover.
#[derive(Debug, Clone, Default)]
pub struct TableInfo {
    pub source: String,
    pub size_bytes: i64,
    pub item_count: i64,
    pub billing_mode: String,
    pub read_capacity: i64,
    pub write_capacity: i64,
    /// Empty when the table has no stream.
    pub stream_view_type: String,
    pub pitr: bool,
    pub ttl_attribute: String,
    pub deletion_protection: bool,
    pub table_class: String,
    pub gsi_count: usize,
    pub lsi_count: usize,
}

/// One row as a person left it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRowPlan {
    /// Line in tables.csv, for messages.
    pub line: u64,
    pub source: String,
    pub moved: bool,
    pub destination: String,
}

pub fn write(path: &Path, tables: &[TableInfo]) -> crate::Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| crate::Error::fatal(format!("{}: {e}", path.display())))?;
    let yn = |b: bool| if b { "yes" } else { "no" }.to_string();
    let io = |e: csv::Error| crate::Error::fatal(format!("writing {}: {e}", path.display()));
    w.write_record(COLUMNS).map_err(io)?;
    for t in tables {
        w.write_record([
            t.source.clone(),
            "yes".into(),
            t.source.clone(),
            t.size_bytes.to_string(),
            t.item_count.to_string(),
            t.billing_mode.clone(),
            t.read_capacity.to_string(),
            t.write_capacity.to_string(),
            t.stream_view_type.clone(),
            yn(t.pitr),
            t.ttl_attribute.clone(),
            yn(t.deletion_protection),
            t.table_class.clone(),
            t.gsi_count.to_string(),
            t.lsi_count.to_string(),
        ])
        .map_err(io)?;
    }
    w.flush()
        .map_err(|e| crate::Error::fatal(format!("writing {}: {e}", path.display())))
}

/// Reads the rows, reporting every problem with file, line and column.
pub fn read(path: &Path, text: &str, problems: &mut Problems) -> Vec<TableRowPlan> {
    let file = path.display().to_string();
    let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let Some(cols) = header(&file, &mut r, problems) else {
        return Vec::new();
    };
    let col = |name: &str| cols.iter().position(|c| c == name);
    let (Some(c_src), Some(c_move), Some(c_dst)) = (col("source"), col("move"), col("destination")) else {
        problems.push(format!("{file}:1: needs the columns source, move and destination"));
        return Vec::new();
    };
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                problems.push(csv_error(&file, &e));
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        let at = |c: usize| format!("{file}:{line}:{}", c + 1);
        let source = rec[c_src].trim().to_string();
        if source.is_empty() {
            problems.push(format!("{}: source is empty", at(c_src)));
            continue;
        }
        let moved = match rec[c_move].trim().to_ascii_lowercase().as_str() {
            "yes" => true,
            "no" => false,
            other => {
                problems.push(format!(
                    "{}: move for {source:?} must be yes or no, found {other:?}",
                    at(c_move)
                ));
                continue;
            }
        };
        let destination = rec[c_dst].trim().to_string();
        if moved && let Err(why) = check_table_name(&destination) {
            problems.push(format!("{}: destination for {source:?}: {why}", at(c_dst)));
        }
        rows.push(TableRowPlan {
            line,
            source,
            moved,
            destination,
        });
    }
    clashes(&file, &rows, problems);
    rows
}

/// The header line, checked against [`COLUMNS`].
pub(super) fn header<R: std::io::Read>(
    file: &str,
    r: &mut csv::Reader<R>,
    problems: &mut Problems,
) -> Option<Vec<String>> {
    header_of(file, r, COLUMNS, problems)
}

pub(super) fn header_of<R: std::io::Read>(
    file: &str,
    r: &mut csv::Reader<R>,
    known: &[&str],
    problems: &mut Problems,
) -> Option<Vec<String>> {
    let h = match r.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            problems.push(csv_error(file, &e));
            return None;
        }
    };
    let mut ok = true;
    for (i, c) in h.iter().enumerate() {
        if !known.contains(&c.trim()) {
            problems.push(format!(
                "{file}:1:{}: unknown column {c:?} (known: {})",
                i + 1,
                known.join(", ")
            ));
            ok = false;
        }
    }
    ok.then(|| h.iter().map(|c| c.trim().to_string()).collect())
}

pub(super) fn csv_error(file: &str, e: &csv::Error) -> String {
    let line = e.position().map_or(String::new(), |p| format!(":{}", p.line()));
    let what = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => format!(
            "has {len} fields where the header has {expected_len} (check the quoting: a field with a comma or a \
             quote must be quoted, and quotes inside doubled)"
        ),
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_string(),
        _ => e.to_string(),
    };
    format!("{file}{line}: row {what}")
}

/// DynamoDB's rule for table names.
pub fn check_table_name(name: &str) -> Result<(), String> {
    if name.len() < 3 || name.len() > 255 {
        return Err(format!("{name:?} must be 3 to 255 characters long"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!("{name:?} has {c:?}; use letters, digits, '_', '-' and '.'"));
    }
    Ok(())
}

fn clashes(file: &str, rows: &[TableRowPlan], problems: &mut Problems) {
    for (i, a) in rows.iter().enumerate() {
        for b in &rows[..i] {
            if a.source == b.source {
                problems.push(format!(
                    "{file}:{}: source {:?} is listed again (first on line {})",
                    a.line, a.source, b.line
                ));
            } else if a.moved && b.moved && a.destination == b.destination {
                problems.push(format!(
                    "{file}:{}: destination {:?} of {:?} clashes with {:?} on line {}",
                    a.line, a.destination, a.source, b.source, b.line
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<TableRowPlan>, Vec<String>) {
        let mut p = Problems::default();
        let rows = read(Path::new("plan/tables.csv"), text, &mut p);
        (rows, p.list)
    }

    const HEAD: &str = "source,move,destination,size_bytes\n";

    #[test]
    fn reads_edits() {
        let (rows, p) = parse(&format!("{HEAD}Orders,yes,OrdersV2,10\nUsers,no,Users,5\n"));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(rows[0].destination, "OrdersV2");
        assert!(rows[0].moved && !rows[1].moved);
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn names_unknown_columns_bad_quoting_and_clashes() {
        let (_, p) = parse("source,move,destination,colour\nA,yes,A,red\n");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("plan/tables.csv:1:4: unknown column \"colour\""),
            "{p:?}"
        );

        let (_, p) = parse(&format!(
            "{HEAD}Orders,yes,Orders,1\n\"Users,yes,Users,2\nZed,yes,Zed,3\n"
        ));
        assert!(p.iter().any(|m| m.starts_with("plan/tables.csv:3: row has")), "{p:?}");

        let (_, p) = parse(&format!("{HEAD}Orders,yes,Same,1\nUsers,yes,Same,2\nOld,no,Same,3\n"));
        assert_eq!(
            p,
            vec!["plan/tables.csv:3: destination \"Same\" of \"Users\" clashes with \"Orders\" on line 2"]
        );

        let (_, p) = parse(&format!("{HEAD}Orders,maybe,Orders,1\nUsers,yes,a b,2\n"));
        assert!(
            p[0].starts_with("plan/tables.csv:2:2: move for \"Orders\" must be yes or no"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("plan/tables.csv:3:3: destination for \"Users\""),
            "{p:?}"
        );
    }
}
