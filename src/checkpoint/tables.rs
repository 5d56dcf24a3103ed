//! The `tables` rows: one per table, its lifecycle state (see [`super::lifecycle`] for the typed
//! view and the transitions) and the live counters the daemon publishes for `ferry status`.

use rusqlite::{OptionalExtension, params};

use super::direction::{self, Direction, SwitchPoint, SwitchRequest};
use super::state::Progress;
use super::store::Store;
use crate::clock::now_ms;
use crate::error::{Error, Result};

/// The stored tag of a table's lifecycle state, which is also what `ferry status` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a `--parallel-tables` slot before its bulk load.
    Queued,
    Creating,
    Snapshot,
    /// Restoring the plan's settings (TTL, PITR, tags, stream, Lambda mappings) after the bulk load.
    Settings,
    Streaming,
    /// Switching direction: the new direction's switch point is recorded (the row's direction
    /// is already the new one), its stream's shard tree not yet captured.
    Switching,
    /// Failed: the row's `error` says why. Shown (and stored) as "stopped", as ferry always has.
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Creating => "creating",
            Phase::Snapshot => "snapshot",
            Phase::Settings => "settings",
            Phase::Streaming => "streaming",
            Phase::Switching => "switching",
            Phase::Failed => "stopped",
        }
    }

    /// Every phase, in lifecycle order.
    pub const ALL: [Phase; 7] = [
        Phase::Queued,
        Phase::Creating,
        Phase::Snapshot,
        Phase::Settings,
        Phase::Streaming,
        Phase::Switching,
        Phase::Failed,
    ];

    /// A stored tag this ferry does not know is an error: guessing would resume the table wrongly.
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One table's durable progress, as stored. The daemon reads and writes it through
/// [`super::Lifecycle`], which checks that every change of state is allowed.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub name: String,
    pub destination: String,
    pub phase: Phase,
    /// Why the table failed, when it did.
    pub error: Option<String>,
    /// The stream being replayed; a different ARN later means a gap.
    pub stream_arn: Option<String>,
    /// T0: recorded before the snapshot started. `None` until captured.
    pub capture_ms: Option<i64>,
    /// Stream records older than this are already reflected in the snapshot.
    pub replay_from_ms: Option<i64>,
    pub snapshot_segments: i64,
    pub snapshot_done: bool,
    /// The daemon stopped this table on request, in `phase`.
    pub stopped_cleanly: bool,
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
    /// Which way the pair replicates now ([`Direction`]); only the daemon running it flips it.
    pub direction: Direction,
    /// Every switch of direction, oldest first.
    pub switches: Vec<SwitchPoint>,
    /// A switch asked for and not yet carried out (or carried out: then `to` is `direction`).
    /// Written only by [`super::StateStore::request_switch`]: a whole-row write keeps it.
    pub switch_request: Option<SwitchRequest>,
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
            stopped_cleanly: false,
            records_applied: 0,
            newest_applied_ms: None,
            caught_up: false,
            applied_as_of_ms: None,
            updated_ms: now_ms(),
            direction: Direction::Forward,
            switches: Vec::new(),
            switch_request: None,
        }
    }
}

impl Store {
    pub fn table(&self, name: &str) -> Result<Option<TableRow>> {
        self.with(|c| {
            c.query_row("SELECT * FROM tables WHERE name = ?1", [name], table_from_row)
                .optional()
        })
        .map_err(|e| self.unreadable(e))
    }

    pub fn tables(&self) -> Result<Vec<TableRow>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT * FROM tables ORDER BY name")?;
            st.query_map([], table_from_row)?.collect()
        })
        .map_err(|e| self.unreadable(e))
    }

    fn unreadable(&self, e: Error) -> Error {
        Error::fatal(format!("state file {}: {e}", self.path.display()))
    }

    pub fn put_table(&self, t: &TableRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO tables (name, destination, phase, error, stream_arn, capture_ms, replay_from_ms,
                   snapshot_segments, snapshot_done, records_applied, newest_applied_ms, caught_up, updated_ms,
                   stopped_cleanly, direction, switches)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)
                 ON CONFLICT(name) DO UPDATE SET destination=?2, phase=?3, error=?4, stream_arn=?5,
                   capture_ms=?6, replay_from_ms=?7, snapshot_segments=?8, snapshot_done=?9, updated_ms=?13,
                   stopped_cleanly=?14, direction=?15, switches=?16",
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
                    now_ms(),
                    t.stopped_cleanly,
                    t.direction.as_str(),
                    direction::switches_to_text(&t.switches)
                ],
            )
            .map(|_| ())
        })
    }

    /// Live counters ([`Progress`]).
    pub fn put_progress(&self, name: &str, p: Progress) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE tables SET records_applied=?2, newest_applied_ms=COALESCE(?3, newest_applied_ms),
                   caught_up=?4, applied_as_of_ms=?5, updated_ms=?6 WHERE name=?1",
                params![
                    name,
                    p.records_applied,
                    p.newest_applied_ms,
                    p.caught_up,
                    p.applied_as_of_ms,
                    now_ms()
                ],
            )
            .map(|_| ())
        })
    }

    /// Marks a table failed with its reason (the lifecycle's `Failed`), keeping its positions.
    pub fn put_error(&self, name: &str, error: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE tables SET phase=?4, error=?2, stopped_cleanly=0, updated_ms=?3 WHERE name=?1",
                params![name, error, now_ms(), Phase::Failed.as_str()],
            )
            .map(|_| ())
        })
    }

    /// Records a switch request (see [`SwitchRequest`]); `false` when the table has no row.
    pub fn request_switch(&self, name: &str, r: SwitchRequest) -> Result<bool> {
        self.with(|c| {
            c.execute(
                "UPDATE tables SET switch_to=?2, switch_asked_ms=?3 WHERE name=?1",
                params![name, r.to.as_str(), r.asked_ms],
            )
            .map(|n| n > 0)
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
}

fn table_from_row(r: &rusqlite::Row) -> rusqlite::Result<TableRow> {
    let name: String = r.get("name")?;
    let tag: String = r.get("phase")?;
    let phase = Phase::parse(&tag).ok_or_else(|| {
        let why = format!("table {name}: unknown state {tag:?} (written by another ferry version?)");
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, why.into())
    })?;
    let bad = |e: Error| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into());
    let switches: Option<String> = r.get("switches")?;
    let to: Option<String> = r.get("switch_to")?;
    let dir: String = r.get("direction")?;
    Ok(TableRow {
        direction: direction::direction_from_text(&name, Some(&dir)).map_err(bad)?,
        switches: direction::switches_from_text(&name, switches.as_deref()).map_err(bad)?,
        switch_request: direction::request_from_parts(&name, to.as_deref(), r.get("switch_asked_ms")?).map_err(bad)?,
        name,
        destination: r.get("destination")?,
        phase,
        error: r.get("error")?,
        stream_arn: r.get("stream_arn")?,
        capture_ms: r.get("capture_ms")?,
        replay_from_ms: r.get("replay_from_ms")?,
        snapshot_segments: r.get("snapshot_segments")?,
        snapshot_done: r.get("snapshot_done")?,
        stopped_cleanly: r.get("stopped_cleanly")?,
        records_applied: r.get("records_applied")?,
        newest_applied_ms: r.get("newest_applied_ms")?,
        caught_up: r.get("caught_up")?,
        applied_as_of_ms: r.get("applied_as_of_ms")?,
        updated_ms: r.get("updated_ms")?,
    })
}
