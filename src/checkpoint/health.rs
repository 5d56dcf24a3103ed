//! Whether a table is riding out failures right now: how long it has been retrying and the last
//! error, written by the daemon every second so `ferry status` (another process) can show it.
//! Cleared as soon as the table's calls succeed again.

use rusqlite::{OptionalExtension, params};

use super::Store;
use crate::clock::now_ms;
use crate::error::Result;

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS health (
  tbl TEXT PRIMARY KEY, retrying_ms INTEGER, last_error TEXT, updated_ms INTEGER NOT NULL);
"#;

/// A table that has been failing and retrying for `for_ms` (measured on the daemon's monotonic
/// clock), with the error of its last failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrying {
    pub for_ms: i64,
    pub last_error: String,
}

impl Store {
    pub fn health(&self, table: &str) -> Result<Option<Retrying>> {
        let row: Option<(Option<i64>, Option<String>)> = self.with(|c| {
            c.query_row(
                "SELECT retrying_ms, last_error FROM health WHERE tbl = ?1",
                [table],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        Ok(match row {
            Some((Some(for_ms), last_error)) => Some(Retrying {
                for_ms,
                last_error: last_error.unwrap_or_default(),
            }),
            _ => None,
        })
    }

    pub fn put_health(&self, table: &str, retrying: Option<&Retrying>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO health (tbl, retrying_ms, last_error, updated_ms) VALUES (?1,?2,?3,?4)
                 ON CONFLICT(tbl) DO UPDATE SET retrying_ms=?2, last_error=?3, updated_ms=?4",
                params![
                    table,
                    retrying.map(|r| r.for_ms),
                    retrying.map(|r| r.last_error.as_str()),
                    now_ms()
                ],
            )
            .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrying_state_round_trips_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        assert_eq!(store.health("T").unwrap(), None);
        let r = Retrying {
            for_ms: 4_200,
            last_error: "BatchWriteItem failed: connection refused".into(),
        };
        store.put_health("T", Some(&r)).unwrap();
        assert_eq!(store.health("T").unwrap(), Some(r));
        store.put_health("T", None).unwrap();
        assert_eq!(store.health("T").unwrap(), None);
    }
}
