//! The state file's layout and its version (`PRAGMA user_version`): creates a new file, upgrades
//! one written by an older ferry in place, and refuses one written by a newer ferry (whose layout
//! this one cannot know).
//!
//! Versions: 0 is every file written before the version existed (its columns were added one by
//! one, so a version-0 file may lack the later ones); 1 adds `tables.stopped_cleanly` (the
//! lifecycle's `Stopped`, see [`super::lifecycle`]); 2 adds the pair's direction, its switch points
//! and a pending switch request (see [`super::direction`]).

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

/// The layout this ferry writes.
pub const VERSION: i64 = 2;

/// The layout of version 0 as first written; later columns are added by [`upgrade`].
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tables (
  name TEXT PRIMARY KEY, destination TEXT NOT NULL, phase TEXT NOT NULL, error TEXT,
  stream_arn TEXT, capture_ms INTEGER, replay_from_ms INTEGER,
  snapshot_segments INTEGER NOT NULL DEFAULT 0, snapshot_done INTEGER NOT NULL DEFAULT 0,
  records_applied INTEGER NOT NULL DEFAULT 0, newest_applied_ms INTEGER,
  caught_up INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
  tbl TEXT NOT NULL, segment INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0, last_key TEXT,
  items INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (tbl, segment));
CREATE TABLE IF NOT EXISTS shards (
  tbl TEXT NOT NULL, shard_id TEXT NOT NULL, parent_id TEXT, position TEXT, last_record_ms INTEGER,
  done INTEGER NOT NULL DEFAULT 0, records INTEGER NOT NULL DEFAULT 0, captured INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tbl, shard_id));
CREATE TABLE IF NOT EXISTS queues (
  tbl TEXT PRIMARY KEY, queue_url TEXT NOT NULL, depth INTEGER, in_flight INTEGER,
  dropped INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL);
"#;

/// The file's layout version.
pub(super) fn version(c: &Connection) -> Result<i64> {
    Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Refuses a file from a newer ferry: its rows may mean what this ferry cannot tell.
pub(super) fn check_not_newer(c: &Connection, path: &Path) -> Result<i64> {
    let v = version(c)?;
    if v > VERSION {
        return Err(Error::fatal(format!(
            "state file {} was written by a newer ferry (schema version {v}; this ferry reads up to {VERSION}). \
             Run the newer ferry, or start from a fresh state file.",
            path.display()
        )));
    }
    Ok(v)
}

/// Creates or upgrades the layout (idempotent); WAL so that readers never block the daemon.
///
/// The upgrade runs in one immediate transaction that checks the version again once it holds the
/// write lock: `ferry status` may open a file the daemon is creating at that moment, and two
/// upgrades adding the same column at once would fail ("duplicate column").
pub(super) fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    check_not_newer(conn, path)?;
    set_wal(conn)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    if check_not_newer(&tx, path)? < VERSION {
        upgrade(&tx)?;
    }
    tx.commit()?;
    Ok(())
}

/// WAL (kept in the file). SQLite answers the switch with "database is locked" at once, without
/// its busy handler, while another process opens the same new file; wait as the busy timeout would.
fn set_wal(conn: &Connection) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r.map(|_| ()).map_err(Error::from),
        }
    }
}

fn upgrade(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    // Version 0 grew these columns and tables one by one (state files outlive upgrades).
    add_column(conn, "tables", "applied_as_of_ms", "INTEGER")?;
    add_column(conn, "queues", "dead_letter_url", "TEXT")?;
    add_column(conn, "queues", "dead_letter_depth", "INTEGER")?;
    conn.execute_batch(super::exports::SCHEMA)?;
    conn.execute_batch(super::health::SCHEMA)?;
    // Version 1.
    add_column(conn, "tables", "stopped_cleanly", "INTEGER NOT NULL DEFAULT 0")?;
    // Version 2.
    add_column(conn, "tables", "direction", "TEXT NOT NULL DEFAULT 'forward'")?;
    add_column(conn, "tables", "switches", "TEXT")?;
    add_column(conn, "tables", "switch_to", "TEXT")?;
    add_column(conn, "tables", "switch_asked_ms", "INTEGER")?;
    conn.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}

/// Whether [`migrate`] has nothing left to do.
pub(super) fn current(c: &Connection, path: &Path) -> Result<bool> {
    Ok(check_not_newer(c, path)? == VERSION)
}

fn add_column(c: &Connection, table: &str, column: &str, decl: &str) -> rusqlite::Result<()> {
    let exists = c
        .prepare(&format!("SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"))?
        .exists([column])?;
    if !exists {
        c.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
    }
    Ok(())
}
