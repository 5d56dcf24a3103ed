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

use futures::future::BoxFuture;
use rusqlite::Connection;

use super::direction::SwitchRequest;
pub use super::positions::{QueueRow, SegmentRow, ShardRow};
use super::schema;
use super::state::{Progress, StateStore};
pub use super::tables::{Phase, TableRow};
use super::{ExportRow, Retrying};

use crate::error::{Error, Result};

pub struct Store {
    pub(super) conn: Mutex<Connection>,
    pub path: PathBuf,
}

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
        schema::migrate(&conn, path)?;
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
        if !schema::current(&conn, path)? {
            schema::migrate(&conn, path)?;
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
}

/// The SQLite file as a [`StateStore`]: each call is one short local transaction, run inline.
impl StateStore for Store {
    fn location(&self) -> String {
        format!("state file {}", self.path.display())
    }
    /// The daemon's lock, not how recently it wrote: false the moment its process is gone.
    fn daemon_running(&self) -> BoxFuture<'_, Result<bool>> {
        ready(super::DaemonLock::is_held(&self.path))
    }
    fn switch_awaited(&self) -> BoxFuture<'_, Result<bool>> {
        ready(super::DaemonLock::switch_awaited(&self.path))
    }
    fn table<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<TableRow>>> {
        ready(Store::table(self, name))
    }
    fn tables(&self) -> BoxFuture<'_, Result<Vec<TableRow>>> {
        ready(Store::tables(self))
    }
    fn put_table<'a>(&'a self, row: &'a TableRow) -> BoxFuture<'a, Result<()>> {
        ready(Store::put_table(self, row))
    }
    fn put_progress<'a>(&'a self, name: &'a str, p: Progress) -> BoxFuture<'a, Result<()>> {
        ready(Store::put_progress(self, name, p))
    }
    fn put_error<'a>(&'a self, name: &'a str, error: &'a str) -> BoxFuture<'a, Result<()>> {
        ready(Store::put_error(self, name, error))
    }
    fn set_replay_from<'a>(&'a self, name: &'a str, ms: i64) -> BoxFuture<'a, Result<bool>> {
        ready(Store::set_replay_from(self, name, ms))
    }
    fn request_switch<'a>(&'a self, name: &'a str, r: SwitchRequest) -> BoxFuture<'a, Result<bool>> {
        ready(Store::request_switch(self, name, r))
    }
    fn clear_shards<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<()>> {
        ready(Store::clear_shards(self, table))
    }
    fn segments<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Vec<SegmentRow>>> {
        ready(Store::segments(self, table))
    }
    fn put_segment<'a>(&'a self, table: &'a str, row: &'a SegmentRow) -> BoxFuture<'a, Result<()>> {
        ready(Store::put_segment(self, table, row))
    }
    fn shards<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Vec<ShardRow>>> {
        ready(Store::shards(self, table))
    }
    fn put_shards<'a>(&'a self, table: &'a str, rows: &'a [ShardRow]) -> BoxFuture<'a, Result<()>> {
        ready(Store::put_shards(self, table, rows))
    }
    fn queue<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Option<QueueRow>>> {
        ready(Store::queue(self, table))
    }
    fn put_queue<'a>(&'a self, table: &'a str, row: &'a QueueRow) -> BoxFuture<'a, Result<()>> {
        ready(Store::put_queue(self, table, row))
    }
    fn export<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Option<ExportRow>>> {
        ready(Store::export(self, table))
    }
    fn put_export<'a>(&'a self, table: &'a str, row: &'a ExportRow) -> BoxFuture<'a, Result<()>> {
        ready(Store::put_export(self, table, row))
    }
    fn health<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Option<Retrying>>> {
        ready(Store::health(self, table))
    }
    fn put_health<'a>(&'a self, table: &'a str, retrying: Option<&'a Retrying>) -> BoxFuture<'a, Result<()>> {
        ready(Store::put_health(self, table, retrying))
    }
}

/// An answer already computed, as the trait's future.
fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(v))
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
    use super::schema::SCHEMA;
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
        daemon
            .execute_batch("DROP TABLE health; PRAGMA user_version = 0")
            .unwrap();
        let old = Store::open_existing(&path).unwrap().unwrap();
        assert_eq!(old.health("A").unwrap(), None);
    }

    #[test]
    fn processes_opening_a_new_file_at_once_all_get_a_current_store() {
        // The daemon creates the file while `ferry status` (or a second command) opens it.
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ferry.db");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let openers: Vec<_> = (0..4)
                .map(|i| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        if i == 0 {
                            Store::open(&path).map(|_| ())
                        } else {
                            Store::open_existing(&path).map(|_| ())
                        }
                    })
                })
                .collect();
            for o in openers {
                if let Err(e) = o.join().unwrap() {
                    panic!("round {round}: {e}");
                }
            }
            let s = Store::open_existing(&path).unwrap().unwrap();
            s.put_table(&TableRow::new("A", "B")).unwrap();
            let conn = s.conn.lock().unwrap();
            assert_eq!(schema::version(&conn).unwrap(), schema::VERSION);
        }
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
        s.put_progress(
            "A",
            Progress {
                records_applied: 3,
                newest_applied_ms: Some(10),
                caught_up: true,
                applied_as_of_ms: Some(42),
            },
        )
        .unwrap();
        let t = s.table("A").unwrap().unwrap();
        assert_eq!(
            (t.caught_up, t.applied_as_of_ms, t.records_applied),
            (true, Some(42), 3)
        );
        s.put_progress(
            "A",
            Progress {
                records_applied: 4,
                ..Default::default()
            },
        )
        .unwrap();
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
