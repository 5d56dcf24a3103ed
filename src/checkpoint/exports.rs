//! State of a table's point-in-time export: which export (so a rerun never starts a second one),
//! where it lives, its export time and its item count, and the ImportTable run when one is used.
//! Finished data files are kept as snapshot segments (one per file), so `ferry status` shows them.

use super::Store;
use super::rows::record;
use crate::error::Result;

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS exports (
  tbl TEXT PRIMARY KEY, export_arn TEXT, bucket TEXT, folder TEXT, export_time_ms INTEGER,
  items_total INTEGER, import_arn TEXT);
"#;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportRow {
    /// Set as soon as ExportTableToPointInTime answers (or from `export_arn`).
    pub export_arn: Option<String>,
    /// The export's folder, `<prefix>/AWSDynamoDB/<id>/`, once known.
    pub bucket: Option<String>,
    pub folder: Option<String>,
    /// The point in time the export reflects; stream replay starts from it minus the overlap.
    pub export_time_ms: Option<i64>,
    /// Items in the export (manifest), for progress and ETA.
    pub items_total: Option<i64>,
    /// Set as soon as ImportTable answers (`loader = "import"`).
    pub import_arn: Option<String>,
}

record!(ExportRow in "exports", key 0: export_arn, bucket, folder, export_time_ms, items_total, import_arn);

impl Store {
    pub fn export(&self, table: &str) -> Result<Option<ExportRow>> {
        self.row(table)
    }

    pub fn put_export(&self, table: &str, e: &ExportRow) -> Result<()> {
        self.put_rows(table, std::slice::from_ref(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_rows_round_trip_and_old_stores_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        // A store written before exports existed: only the original tables.
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE tables (name TEXT PRIMARY KEY, destination TEXT NOT NULL, phase TEXT NOT NULL, error TEXT, stream_arn TEXT, capture_ms INTEGER, replay_from_ms INTEGER, snapshot_segments INTEGER NOT NULL DEFAULT 0, snapshot_done INTEGER NOT NULL DEFAULT 0, records_applied INTEGER NOT NULL DEFAULT 0, newest_applied_ms INTEGER, caught_up INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL); INSERT INTO tables (name, destination, phase, updated_ms) VALUES ('A','A','streaming',1);").unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.table("A").unwrap().unwrap().phase,
            crate::checkpoint::Phase::Streaming
        );
        assert_eq!(s.export("A").unwrap(), None);
        let row = ExportRow {
            export_arn: Some("arn:x".into()),
            bucket: Some("b".into()),
            folder: Some("p/AWSDynamoDB/1/".into()),
            export_time_ms: Some(7),
            items_total: Some(100),
            import_arn: None,
        };
        s.put_export("A", &row).unwrap();
        assert_eq!(s.export("A").unwrap(), Some(row));
    }
}
