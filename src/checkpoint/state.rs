//! What a migration remembers, behind one trait: each table's lifecycle row and live counters, its
//! snapshot segments (or export files), its export, its stream shards' checkpoints, its SQS buffer
//! as last seen and its retry health. [`super::Store`] keeps it in the embedded SQLite file (one
//! worker); a backend in DynamoDB is what lets several workers share one migration.
//!
//! Contract, for every backend (checked by one test suite, `ferry_rig::state_contract`):
//! - **Durable on return**: a write that returned survives a crash of the writer.
//! - **In order**: one caller's writes take effect in the order it made them, so a later fact (a
//!   child shard's checkpoint) never survives a crash that lost an earlier one (its parent's end).
//! - **Read your writes**: a read sees every write that returned before it began.
//! - **Whole rows**: `put_*` replaces the row it names (creating it if needed); `put_progress`,
//!   `put_error`, `set_replay_from` and `request_switch` change only their fields of an existing
//!   table row, and `put_table` leaves the switch request as it is.
//! - **Ordered listings**: tables by name, segments by number, shards by id.
//! - Nothing written is ever a credential.

use futures::future::BoxFuture;

use super::direction::SwitchRequest;
use super::lease::Lease;
use super::lease::workers::Beat;
use super::{ExportRow, QueueRow, Retrying, SegmentRow, ShardRow, TableRow};
use crate::error::Result;

/// A table's live counters, written by the daemon's publisher only (a table's own writes of its
/// state never touch them, so neither can roll the other back).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Progress {
    pub records_applied: i64,
    /// Kept when `None`.
    pub newest_applied_ms: Option<i64>,
    pub caught_up: bool,
    pub applied_as_of_ms: Option<i64>,
}

/// The workers of a migration and their leases, as last written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Crew {
    pub workers: Vec<Beat>,
    pub leases: Vec<Lease>,
}

pub trait StateStore: Send + Sync {
    /// Where the state lives, for messages ("state file /var/lib/ferry/state.db").
    fn location(&self) -> String;
    /// Whether a daemon is working on this state now (for `ferry status` and the cutover).
    fn daemon_running(&self) -> BoxFuture<'_, Result<bool>>;
    /// The workers sharing the migration and the leases they hold, where several may (the
    /// DynamoDB backend); `None` where one daemon holds everything.
    fn workers(&self) -> BoxFuture<'_, Result<Option<Crew>>> {
        Box::pin(async { Ok(None) })
    }

    /// Whether the command that asked for a switch (`cutover --switch`, `rollback`) still waits
    /// for it. The daemon carries out a request only then, so a command that died never leaves
    /// behind a switch that nobody would announce. `false` where switching is not supported.
    fn switch_awaited(&self) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async { Ok(false) })
    }

    fn table<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<TableRow>>>;
    fn tables(&self) -> BoxFuture<'_, Result<Vec<TableRow>>>;
    fn put_table<'a>(&'a self, row: &'a TableRow) -> BoxFuture<'a, Result<()>>;
    fn put_progress<'a>(&'a self, name: &'a str, progress: Progress) -> BoxFuture<'a, Result<()>>;
    /// Marks a table failed with its reason, keeping its positions.
    fn put_error<'a>(&'a self, name: &'a str, error: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Asks the daemon running a pair to switch its direction (only that field changes); `false`
    /// when the table has no row.
    fn request_switch<'a>(&'a self, name: &'a str, request: SwitchRequest) -> BoxFuture<'a, Result<bool>>;
    /// Removes a table's shard rows: its positions in a stream it no longer reads (a switch).
    fn clear_shards<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Moves a table's replay point; `false` when the table has no row.
    fn set_replay_from<'a>(&'a self, name: &'a str, ms: i64) -> BoxFuture<'a, Result<bool>>;

    fn segments<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Vec<SegmentRow>>>;
    fn put_segment<'a>(&'a self, table: &'a str, row: &'a SegmentRow) -> BoxFuture<'a, Result<()>>;
    fn shards<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Vec<ShardRow>>>;
    /// Writes each row whole, in the slice's order.
    fn put_shards<'a>(&'a self, table: &'a str, rows: &'a [ShardRow]) -> BoxFuture<'a, Result<()>>;
    fn queue<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Option<QueueRow>>>;
    fn put_queue<'a>(&'a self, table: &'a str, row: &'a QueueRow) -> BoxFuture<'a, Result<()>>;
    fn export<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Option<ExportRow>>>;
    fn put_export<'a>(&'a self, table: &'a str, row: &'a ExportRow) -> BoxFuture<'a, Result<()>>;
    fn health<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Option<Retrying>>>;
    fn put_health<'a>(&'a self, table: &'a str, retrying: Option<&'a Retrying>) -> BoxFuture<'a, Result<()>>;
}
