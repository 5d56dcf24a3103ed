//! The embedded state store: one SQLite file (WAL), written by the daemon, readable at the same time
//! by `ferry status`.
//!
//! Durability contract: a row is written only after what it describes is durable at the
//! destination (see [`super::ack`]). Writes are ordered (WAL), so a later fact (a child shard's
//! checkpoint) never survives a crash that lost an earlier one (its parent's SHARD_END).
//! Nothing here ever holds a credential.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::clock::now_ms;
use crate::error::{Error, Result};

/// Where a table is in its life. Stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a `--parallel-tables` slot before its bulk load.
    Queued,
    Creating,
    Snapshot,
    /// Restoring the plan's settings (TTL, PITR, tags, stream, Lambda mappings) after the bulk load.
    Settings,
    Streaming,
    Stopped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Creating => "creating",
            Phase::Snapshot => "snapshot",
            Phase::Settings => "settings",
            Phase::Streaming => "streaming",
            Phase::Stopped => "stopped",
        }
    }
    fn parse(s: &str) -> Phase {
        match s {
            "queued" => Phase::Queued,
            "snapshot" => Phase::Snapshot,
            "settings" => Phase::Settings,
            "streaming" => Phase::Streaming,
            "stopped" => Phase::Stopped,
            _ => Phase::Creating,
        }
    }
}

/// One table's durable progress.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub name: String,
    pub destination: String,
    pub phase: Phase,
    /// Why the table stopped, when it did.
    pub error: Option<String>,
    /// The stream being replayed; a different ARN later means a gap.
    pub stream_arn: Option<String>,
    /// T0: recorded before the snapshot started. `None` until captured.
    pub capture_ms: Option<i64>,
    /// Stream records older than this are already reflected in the snapshot.
    pub replay_from_ms: Option<i64>,
    pub snapshot_segments: i64,
    pub snapshot_done: bool,
    pub records_applied: i64,
    /// ApproximateCreationDateTime of the newest applied record.
    pub newest_applied_ms: Option<i64>,
    /// Every open shard returned no records at its last read, with nothing in flight.
    pub caught_up: bool,
    /// Every change written to the source before this time (ms) is durable at the destination: a
    /// watermark that moves while changes flow. `verify` waits on it to tell changes in flight
    /// from differences.
    pub applied_as_of_ms: Option<i64>,
    /// Last time a daemon wrote this row: tells `status` whether one is running.
    pub updated_ms: i64,
}

impl TableRow {
    pub fn new(name: &str, destination: &str) -> Self {
        Self {
            name: name.into(),
            destination: destination.into(),
            phase: Phase::Creating,
            error: None,
            stream_arn: None,
            capture_ms: None,
            replay_from_ms: None,
            snapshot_segments: 0,
            snapshot_done: false,
            records_applied: 0,
            newest_applied_ms: None,
            caught_up: false,
            applied_as_of_ms: None,
            updated_ms: now_ms(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    pub segment: i64,
    pub done: bool,
    /// LastEvaluatedKey (DynamoDB JSON) of the last page whose items are all written.
    pub last_key: Option<String>,
    pub items: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShardRow {
    pub shard_id: String,
    pub parent_id: Option<String>,
    /// Sequence number of the last record durably applied (or skipped); resume after it.
    pub position: Option<String>,
    pub last_record_ms: Option<i64>,
    /// SHARD_END reached and every record acknowledged: children may start.
    pub done: bool,
    pub records: i64,
    /// Part of the shard tree recorded at the capture point.
    pub captured: bool,
}

/// A table's SQS change buffer as last seen by the daemon (`change_source = "sqs"`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    pub queue_url: String,
    /// ApproximateNumberOfMessages: waiting to be received.
    pub depth: Option<i64>,
    /// ApproximateNumberOfMessagesNotVisible: received, not yet deleted.
    pub in_flight: Option<i64>,
    /// Records dropped as older than the replay point (already in the snapshot, or before a
    /// replay point set on purpose).
    pub dropped: i64,
    /// The dead-letter queue watched (`queue_allow_dead_letter`), and its message count.
    pub dead_letter_url: Option<String>,
    pub dead_letter_depth: Option<i64>,
}

pub struct Store {
    conn: Mutex<Connection>,
    pub path: PathBuf,
}

const SCHEMA: &str = r#"
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

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::fatal(format!("cannot create state directory {}: {e}", dir.display())))?;
        }
        create_private(path).map_err(|e| Error::fatal(format!("cannot create state store {}: {e}", path.display())))?;
        let conn = Connection::open(path)
            .map_err(|e| Error::fatal(format!("cannot open state store {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        migrate(&conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing store (`ferry status`, `checkpoint`, `cutover`), never creating one. A
    /// store whose schema is current is opened without a write: `ferry status` polled while the
    /// daemon starts must never contend with the daemon's own schema work.
    pub fn open_existing(path: &Path) -> Result<Option<Store>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open(path)
            .map_err(|e| Error::fatal(format!("cannot open state store {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        if !schema_current(&conn)? {
            migrate(&conn)?;
        }
        Ok(Some(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        }))
    }

    pub(super) fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap();
        f(&conn).map_err(Error::from)
    }

    pub fn table(&self, name: &str) -> Result<Option<TableRow>> {
        self.with(|c| {
            c.query_row("SELECT * FROM tables WHERE name = ?1", [name], table_from_row)
                .optional()
        })
    }

    pub fn tables(&self) -> Result<Vec<TableRow>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT * FROM tables ORDER BY name")?;
            st.query_map([], table_from_row)?.collect()
        })
    }

    pub fn put_table(&self, t: &TableRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO tables (name, destination, phase, error, stream_arn, capture_ms, replay_from_ms,
                   snapshot_segments, snapshot_done, records_applied, newest_applied_ms, caught_up, updated_ms)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)
                 ON CONFLICT(name) DO UPDATE SET destination=?2, phase=?3, error=?4, stream_arn=?5,
                   capture_ms=?6, replay_from_ms=?7, snapshot_segments=?8, snapshot_done=?9, updated_ms=?13",
                params![
                    t.name,
                    t.destination,
                    t.phase.as_str(),
                    t.error,
                    t.stream_arn,
                    t.capture_ms,
                    t.replay_from_ms,
                    t.snapshot_segments,
                    t.snapshot_done,
                    t.records_applied,
                    t.newest_applied_ms,
                    t.caught_up,
                    now_ms()
                ],
            )
            .map(|_| ())
        })
    }

    /// Live counters, written by the daemon's publisher only (the table's own writes of its phase
    /// never touch them, so neither can roll the other back).
    pub fn put_progress(
        &self,
        name: &str,
        records_applied: i64,
        newest_applied_ms: Option<i64>,
        caught_up: bool,
        applied_as_of_ms: Option<i64>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE tables SET records_applied=?2, newest_applied_ms=COALESCE(?3, newest_applied_ms),
                   caught_up=?4, applied_as_of_ms=?5, updated_ms=?6 WHERE name=?1",
                params![
                    name,
                    records_applied,
                    newest_applied_ms,
                    caught_up,
                    applied_as_of_ms,
                    now_ms()
                ],
            )
            .map(|_| ())
        })
    }

    pub fn put_error(&self, name: &str, error: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE tables SET phase='stopped', error=?2, updated_ms=?3 WHERE name=?1",
                params![name, error, now_ms()],
            )
            .map(|_| ())
        })
    }

    /// Moves a table's replay point: changes older than `ms` are dropped from then on. The hook
    /// for `ferry checkpoint set --at` / `ferry sync --from` on an SQS change source, where the
    /// replay point is the only position (the queue itself holds the rest).
    pub fn set_replay_from(&self, name: &str, ms: i64) -> Result<bool> {
        self.with(|c| {
            c.execute(
                "UPDATE tables SET replay_from_ms=?2, updated_ms=?3 WHERE name=?1",
                params![name, ms, now_ms()],
            )
            .map(|n| n > 0)
        })
    }

    pub fn queue(&self, table: &str) -> Result<Option<QueueRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT queue_url, depth, in_flight, dropped, dead_letter_url, dead_letter_depth FROM queues WHERE tbl = ?1",
                [table],
                |r| {
                    Ok(QueueRow {
                        queue_url: r.get(0)?,
                        depth: r.get(1)?,
                        in_flight: r.get(2)?,
                        dropped: r.get(3)?,
                        dead_letter_url: r.get(4)?,
                        dead_letter_depth: r.get(5)?,
                    })
                },
            )
            .optional()
        })
    }

    pub fn put_queue(&self, table: &str, q: &QueueRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO queues (tbl, queue_url, depth, in_flight, dropped, updated_ms, dead_letter_url, dead_letter_depth)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8)
                 ON CONFLICT(tbl) DO UPDATE SET queue_url=?2, depth=?3, in_flight=?4, dropped=?5, updated_ms=?6,
                 dead_letter_url=?7, dead_letter_depth=?8",
                params![
                    table,
                    q.queue_url,
                    q.depth,
                    q.in_flight,
                    q.dropped,
                    now_ms(),
                    q.dead_letter_url,
                    q.dead_letter_depth
                ],
            )
            .map(|_| ())
        })
    }

    pub fn segments(&self, table: &str) -> Result<Vec<SegmentRow>> {
        self.with(|c| {
            let mut st =
                c.prepare("SELECT segment, done, last_key, items FROM segments WHERE tbl = ?1 ORDER BY segment")?;
            st.query_map([table], |r| {
                Ok(SegmentRow {
                    segment: r.get(0)?,
                    done: r.get(1)?,
                    last_key: r.get(2)?,
                    items: r.get(3)?,
                })
            })?
            .collect()
        })
    }

    pub fn put_segment(&self, table: &str, s: &SegmentRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO segments (tbl, segment, done, last_key, items) VALUES (?1,?2,?3,?4,?5)
                 ON CONFLICT(tbl, segment) DO UPDATE SET done=?3, last_key=?4, items=?5",
                params![table, s.segment, s.done, s.last_key, s.items],
            )
            .map(|_| ())
        })
    }

    pub fn shards(&self, table: &str) -> Result<Vec<ShardRow>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT shard_id, parent_id, position, last_record_ms, done, records, captured
                 FROM shards WHERE tbl = ?1 ORDER BY shard_id",
            )?;
            st.query_map([table], |r| {
                Ok(ShardRow {
                    shard_id: r.get(0)?,
                    parent_id: r.get(1)?,
                    position: r.get(2)?,
                    last_record_ms: r.get(3)?,
                    done: r.get(4)?,
                    records: r.get(5)?,
                    captured: r.get(6)?,
                })
            })?
            .collect()
        })
    }

    /// Writes shard rows in one transaction (checkpoint flush, capture of the shard tree).
    pub fn put_shards(&self, table: &str, rows: &[ShardRow]) -> Result<()> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO shards (tbl, shard_id, parent_id, position, last_record_ms, done, records, captured)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8)
                 ON CONFLICT(tbl, shard_id) DO UPDATE SET parent_id=?3, position=?4, last_record_ms=?5,
                   done=?6, records=?7, captured=?8",
            )?;
            for s in rows {
                st.execute(params![
                    table,
                    s.shard_id,
                    s.parent_id,
                    s.position,
                    s.last_record_ms,
                    s.done,
                    s.records,
                    s.captured
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Adds a column that a store written by an older ferry lacks (state files outlive upgrades).
/// Creates or upgrades the schema (idempotent); WAL so that readers never block the daemon.
fn migrate(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SCHEMA)?;
    add_column(conn, "tables", "applied_as_of_ms", "INTEGER")?;
    add_column(conn, "queues", "dead_letter_url", "TEXT")?;
    add_column(conn, "queues", "dead_letter_depth", "INTEGER")?;
    conn.execute_batch(super::exports::SCHEMA)?;
    conn.execute_batch(super::health::SCHEMA)?;
    Ok(())
}

/// Whether [`migrate`] has nothing left to do: the newest table and column are there.
fn schema_current(c: &Connection) -> Result<bool> {
    let has = |sql: &str, arg: &str| -> rusqlite::Result<bool> { c.prepare(sql)?.exists([arg]) };
    Ok(has(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        "health",
    )? && has(
        "SELECT 1 FROM pragma_table_info('queues') WHERE name = ?1",
        "dead_letter_depth",
    )?)
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

fn table_from_row(r: &rusqlite::Row) -> rusqlite::Result<TableRow> {
    Ok(TableRow {
        name: r.get("name")?,
        destination: r.get("destination")?,
        phase: Phase::parse(&r.get::<_, String>("phase")?),
        error: r.get("error")?,
        stream_arn: r.get("stream_arn")?,
        capture_ms: r.get("capture_ms")?,
        replay_from_ms: r.get("replay_from_ms")?,
        snapshot_segments: r.get("snapshot_segments")?,
        snapshot_done: r.get("snapshot_done")?,
        records_applied: r.get("records_applied")?,
        newest_applied_ms: r.get("newest_applied_ms")?,
        caught_up: r.get("caught_up")?,
        applied_as_of_ms: r.get("applied_as_of_ms")?,
        updated_ms: r.get("updated_ms")?,
    })
}

/// Creates a new state store file readable by its owner only: it holds item keys. SQLite gives the
/// -wal and -shm files it creates next to it the same mode. An existing file is left as it is.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut new = std::fs::OpenOptions::new();
    new.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut new, 0o600);
    match new.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_opens_a_current_store_while_the_daemon_holds_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        Store::open(&path).unwrap().put_table(&TableRow::new("A", "B")).unwrap();
        // The daemon in the middle of a write transaction.
        let daemon = Connection::open(&path).unwrap();
        daemon
            .execute_batch("BEGIN IMMEDIATE; UPDATE tables SET error = 'x'")
            .unwrap();
        let status = Store::open_existing(&path).unwrap().unwrap();
        status.with(|c| c.busy_timeout(Duration::from_millis(50))).unwrap();
        assert_eq!(status.tables().unwrap().len(), 1, "a reader never waits on the daemon");
        daemon.execute_batch("COMMIT").unwrap();

        // A store from before the health table is brought up to date on open.
        daemon.execute_batch("DROP TABLE health").unwrap();
        let old = Store::open_existing(&path).unwrap().unwrap();
        assert_eq!(old.health("A").unwrap(), None);
    }

    #[test]
    fn round_trips_tables_segments_and_shards() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("st/ferry.db")).unwrap();
        let mut t = TableRow::new("A", "B");
        t.phase = Phase::Streaming;
        t.capture_ms = Some(5);
        s.put_table(&t).unwrap();
        let back = s.table("A").unwrap().unwrap();
        assert_eq!(back.phase, Phase::Streaming);
        assert_eq!(back.capture_ms, Some(5));
        let seg = SegmentRow {
            segment: 3,
            done: false,
            last_key: Some("{}".into()),
            items: 7,
        };
        s.put_segment("A", &seg).unwrap();
        assert_eq!(s.segments("A").unwrap(), vec![seg]);
        let sh = ShardRow {
            shard_id: "s1".into(),
            parent_id: None,
            position: Some("0001".into()),
            last_record_ms: None,
            done: true,
            records: 2,
            captured: true,
        };
        s.put_shards("A", std::slice::from_ref(&sh)).unwrap();
        assert_eq!(s.shards("A").unwrap(), vec![sh]);
        assert!(s.shards("B").unwrap().is_empty());
    }

    #[test]
    fn a_store_from_an_older_ferry_gains_the_applied_as_of_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        // SCHEMA is the layout ferry wrote before applied_as_of_ms existed; it is added on open.
        let old = SCHEMA;
        assert!(!old.contains("applied_as_of_ms"));
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!(
                "{old} INSERT INTO tables (name, destination, phase, updated_ms) VALUES ('A','A','streaming',1);"
            ))
            .unwrap();
        let s = Store::open(&path).unwrap();
        assert_eq!(s.table("A").unwrap().unwrap().applied_as_of_ms, None);
        s.put_progress("A", 3, Some(10), true, Some(42)).unwrap();
        let t = s.table("A").unwrap().unwrap();
        assert_eq!(
            (t.caught_up, t.applied_as_of_ms, t.records_applied),
            (true, Some(42), 3)
        );
        s.put_progress("A", 4, None, false, None).unwrap();
        let t = s.table("A").unwrap().unwrap();
        assert_eq!(
            (t.caught_up, t.applied_as_of_ms, t.newest_applied_ms),
            (false, None, Some(10))
        );
        drop(s);
        Store::open(&path).expect("opening twice adds nothing twice");
    }

    #[test]
    fn queue_rows_and_replay_points_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("ferry.db")).unwrap();
        assert!(!s.set_replay_from("A", 7).unwrap(), "no such table yet");
        s.put_table(&TableRow::new("A", "A")).unwrap();
        assert!(s.set_replay_from("A", 7).unwrap());
        assert_eq!(s.table("A").unwrap().unwrap().replay_from_ms, Some(7));
        let q = QueueRow {
            queue_url: "http://q/a.fifo".into(),
            depth: Some(3),
            in_flight: None,
            dropped: 2,
            dead_letter_url: Some("http://q/a-dlq.fifo".into()),
            dead_letter_depth: Some(1),
        };
        s.put_queue("A", &q).unwrap();
        assert_eq!(s.queue("A").unwrap(), Some(q));
        assert_eq!(s.queue("B").unwrap(), None);
    }

    /// Another user on the machine cannot read item keys from a new store or its WAL files; an
    /// existing store keeps its mode and opens as before.
    #[cfg(unix)]
    #[test]
    fn a_new_store_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ferry.db");
        let s = Store::open(&p).unwrap();
        s.put_table(&TableRow::new("A", "A")).unwrap();
        let mode = |suffix: &str| {
            let f = format!("{}{suffix}", p.display());
            std::fs::metadata(&f)
                .unwrap_or_else(|e| panic!("{f}: {e}"))
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode(""), mode("-wal"), mode("-shm")), (0o600, 0o600, 0o600));
        drop(s);

        let old = dir.path().join("old.db");
        Connection::open(&old).unwrap().execute_batch(SCHEMA).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o640)).unwrap();
        Store::open(&old).unwrap().put_table(&TableRow::new("B", "B")).unwrap();
        let m = std::fs::metadata(&old).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o640);
        assert!(Store::open(&old).unwrap().table("B").unwrap().is_some());
    }
}
