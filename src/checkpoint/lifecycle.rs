//! A table's lifecycle: one enum whose variants carry their data, and the one place
//! ([`Lifecycle::transition`]) that checks a change of state and persists it.
//!
//! ```text
//!   (new table) ─▶ Creating ─────▶ Captured{capture, segments?} ─────────────┐ snapshot = none
//!        ▲  │          ▲                    │ segments                       ▼
//!        │  ▼          │                    ▼                                │
//!     Queued{next} ◀───┴──── BulkLoading{capture, segments} ⟲ (export found) │
//!   (a --parallel-tables                    │ every item durable             │
//!    slot; next is Creating,                ▼                                │
//!    Captured or BulkLoading)   RestoringSettings{capture} ◀─────────────────┘
//!                                           │ (the plan's settings, every run)
//!                                           ▼
//!                                 Streaming{capture} ◀──────────────┐ the other table's stream
//!                                           │ switch (drained)     │ captured
//!                                           ▼                      │
//!                                 Switching{at, replay_from} ──────┘
//!                                 (the row's direction flipped in the same write)
//!
//!   any of the above ─▶ Failed{reason, at}   (an error; `at` is where it resumes)
//!                   ─▶ Stopped{at}          (asked to stop)
//!   Failed / Stopped ─▶ the resume point of `at` (next run)
//! ```
//!
//! A run starts at [`TableState::resume_point`]: a streaming table re-enters `RestoringSettings`
//! because the plan's settings are checked on every run. Positions inside a state (segments,
//! shards, the export) live in their own rows and survive every transition.

use std::sync::Arc;

use super::StateStore;
use super::direction::{Direction, SwitchPoint};
use super::store::{Phase, TableRow};
use crate::error::{Error, Result};

/// The capture point: recorded, with the stream's shard tree, before a single item is copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The stream replayed; a different ARN later means a gap.
    pub stream_arn: String,
    /// T0.
    pub t0_ms: i64,
    /// Changes older than this are already in the bulk load (or before a replay point set on purpose).
    pub replay_from_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableState {
    /// Waiting for a `--parallel-tables` slot; `next` is entered when one frees.
    Queued {
        next: Box<TableState>,
    },
    /// Creating the destination, enabling the source's stream, recording the capture point.
    Creating,
    /// Captured; `segments` is the bulk load's size (scan segments), `None` with `snapshot = "none"`.
    Captured {
        capture: Capture,
        segments: Option<u32>,
    },
    /// Copying items (scan segments or export files, positions in the segment rows).
    BulkLoading {
        capture: Capture,
        segments: u32,
    },
    /// Bulk load complete; restoring the plan's settings (a no-op without a plan).
    RestoringSettings {
        capture: Capture,
    },
    Streaming {
        capture: Capture,
    },
    /// The pair switched direction at `at_ms` (S); the new direction replays the other table's
    /// stream from `replay_from_ms`, once its shard tree is captured.
    Switching {
        at_ms: i64,
        replay_from_ms: i64,
    },
    Failed {
        reason: String,
        at: Box<TableState>,
    },
    Stopped {
        at: Box<TableState>,
    },
}

impl TableState {
    /// Where a new run starts.
    pub fn resume_point(&self) -> TableState {
        match self {
            TableState::Queued { next: at } | TableState::Failed { at, .. } | TableState::Stopped { at } => {
                at.resume_point()
            }
            TableState::Streaming { capture } => TableState::RestoringSettings {
                capture: capture.clone(),
            },
            s => s.clone(),
        }
    }

    pub fn capture(&self) -> Option<&Capture> {
        match self {
            TableState::Queued { next: at } | TableState::Failed { at, .. } | TableState::Stopped { at } => {
                at.capture()
            }
            TableState::Creating | TableState::Switching { .. } => None,
            TableState::Captured { capture, .. }
            | TableState::BulkLoading { capture, .. }
            | TableState::RestoringSettings { capture }
            | TableState::Streaming { capture } => Some(capture),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            TableState::Queued { .. } => "queued",
            TableState::Creating => "creating",
            TableState::Captured { .. } => "captured",
            TableState::BulkLoading { .. } => "bulk loading",
            TableState::RestoringSettings { .. } => "restoring settings",
            TableState::Streaming { .. } => "streaming",
            TableState::Switching { .. } => "switching",
            TableState::Failed { .. } => "failed",
            TableState::Stopped { .. } => "stopped",
        }
    }

    fn halted(&self) -> bool {
        matches!(self, TableState::Failed { .. } | TableState::Stopped { .. })
    }

    /// Whether `self → to` is an edge of the diagram above.
    pub fn allows(&self, to: &TableState) -> bool {
        use TableState::*;
        match (self, to) {
            (Failed { at, .. } | Stopped { at }, to) => *to == at.resume_point(),
            (_, Failed { at, .. } | Stopped { at }) => !at.halted() && **at == self.resume_at(),
            (Queued { next }, to) => **next == *to,
            (from @ (Creating | Captured { .. } | BulkLoading { .. }), Queued { next }) => **next == *from,
            (Creating, Captured { .. }) => true,
            (Captured { segments: Some(_), .. }, BulkLoading { .. }) => true,
            (Captured { segments: None, .. }, RestoringSettings { .. }) => true,
            (BulkLoading { .. }, BulkLoading { .. } | RestoringSettings { .. }) => true,
            (RestoringSettings { .. }, Streaming { .. }) => true,
            (Streaming { .. }, Switching { .. }) | (Switching { .. }, Streaming { .. }) => true,
            _ => false,
        }
    }

    /// The state a halt in `self` records as `at`.
    fn resume_at(&self) -> TableState {
        match self {
            TableState::Queued { next } => (**next).clone(),
            s => s.clone(),
        }
    }

    /// The stored form: the phase tag and the row's columns.
    fn write(&self, row: &mut TableRow) {
        row.error = None;
        row.stopped_cleanly = false;
        match self {
            TableState::Failed { reason, at } => {
                at.write(row);
                row.error = Some(reason.clone());
                row.phase = Phase::Failed;
            }
            TableState::Stopped { at } => {
                at.write(row);
                row.stopped_cleanly = true;
            }
            TableState::Queued { next } => {
                next.write(row);
                row.phase = Phase::Queued;
            }
            TableState::Creating => {
                row.phase = Phase::Creating;
                (row.stream_arn, row.capture_ms, row.snapshot_done) = (None, None, false);
            }
            TableState::Captured { capture, segments } => {
                write_capture(row, capture, Phase::Creating, *segments);
            }
            TableState::BulkLoading { capture, segments } => {
                write_capture(row, capture, Phase::Snapshot, Some(*segments));
            }
            TableState::RestoringSettings { capture } => write_capture(row, capture, Phase::Settings, None),
            TableState::Streaming { capture } => write_capture(row, capture, Phase::Streaming, None),
            TableState::Switching { at_ms, replay_from_ms } => {
                row.phase = Phase::Switching;
                (row.stream_arn, row.capture_ms, row.replay_from_ms) = (None, Some(*at_ms), Some(*replay_from_ms));
                row.snapshot_done = true;
            }
        }
    }

    /// Reads the stored form back (states written by every ferry version, see `schema`).
    pub fn read(row: &TableRow) -> Result<TableState> {
        let capture = match (&row.stream_arn, row.capture_ms) {
            (Some(arn), Some(t0)) => Some(Capture {
                stream_arn: arn.clone(),
                t0_ms: t0,
                replay_from_ms: row.replay_from_ms.unwrap_or(t0),
            }),
            _ => None,
        };
        let segments = u32::try_from(row.snapshot_segments).unwrap_or(0);
        // Where the row's positions put the table, whatever it was doing.
        let progress = |capture: Option<Capture>| match capture {
            None => TableState::Creating,
            Some(capture) if row.snapshot_done => TableState::Streaming { capture },
            Some(capture) => TableState::BulkLoading { capture, segments },
        };
        let switching = || TableState::Switching {
            at_ms: row.capture_ms.unwrap_or(0),
            replay_from_ms: row.replay_from_ms.or(row.capture_ms).unwrap_or(0),
        };
        let state = match (row.phase, capture) {
            // Stopped or failed while switching: the stream is not captured yet.
            (Phase::Switching, _) => switching(),
            (Phase::Failed, None) if row.snapshot_done && row.capture_ms.is_some() => TableState::Failed {
                reason: row.error.clone().unwrap_or_default(),
                at: Box::new(switching()),
            },
            (Phase::Failed, c) => TableState::Failed {
                reason: row.error.clone().unwrap_or_default(),
                at: Box::new(progress(c)),
            },
            (Phase::Queued, c) => TableState::Queued {
                next: Box::new(progress(c)),
            },
            (Phase::Creating, None) => TableState::Creating,
            (Phase::Creating, Some(capture)) => TableState::Captured {
                capture,
                segments: (!row.snapshot_done).then_some(segments),
            },
            (Phase::Snapshot, Some(capture)) if row.snapshot_done => TableState::RestoringSettings { capture },
            (Phase::Snapshot, Some(capture)) => TableState::BulkLoading { capture, segments },
            (Phase::Settings, Some(capture)) => TableState::RestoringSettings { capture },
            (Phase::Streaming, Some(capture)) => TableState::Streaming { capture },
            (phase, None) => {
                return Err(Error::fatal(format!(
                    "table {}: the state file says {:?} but holds no capture point (stream ARN and T0): \
                     remove the table from the state store to start it afresh",
                    row.name,
                    phase.as_str()
                )));
            }
        };
        Ok(match state {
            s if row.stopped_cleanly && !s.halted() => TableState::Stopped { at: Box::new(s) },
            s => s,
        })
    }
}

fn write_capture(row: &mut TableRow, c: &Capture, phase: Phase, segments: Option<u32>) {
    row.phase = phase;
    row.stream_arn = Some(c.stream_arn.clone());
    row.capture_ms = Some(c.t0_ms);
    row.replay_from_ms = Some(c.replay_from_ms);
    row.snapshot_done = segments.is_none();
    if let Some(n) = segments {
        row.snapshot_segments = n as i64;
    }
}

/// Told the row after each persisted change (the metrics show the phase from it).
pub type Watcher = Box<dyn Fn(&TableRow) + Send + Sync>;

/// A table's state and the store it is persisted in: every change of state goes through here.
pub struct Lifecycle {
    store: Arc<dyn StateStore>,
    row: TableRow,
    state: TableState,
    watcher: Option<Watcher>,
}

impl Lifecycle {
    /// The table's stored state (a new table is `Creating`), moved to its resume point.
    pub async fn resume(store: Arc<dyn StateStore>, name: &str, destination: &str) -> Result<Lifecycle> {
        let row = match store.table(name).await? {
            Some(row) => row,
            None => {
                // A new table is listed (as creating) from the start of its first run.
                let row = TableRow::new(name, destination);
                store.put_table(&row).await?;
                row
            }
        };
        let stored = TableState::read(&row).map_err(|e| Error::fatal(format!("{}: {e}", store.location())))?;
        let mut life = Lifecycle {
            store,
            row,
            state: stored.clone(),
            watcher: None,
        };
        let start = stored.resume_point();
        if stored.halted() {
            life.transition(start).await?;
        } else {
            // Not an edge: a new run picks the table up where the last one left it.
            life.state = start;
        }
        Ok(life)
    }

    pub fn state(&self) -> &TableState {
        &self.state
    }

    /// Calls `watcher` with the row now and after every change persisted from here on.
    pub fn watch(&mut self, watcher: Watcher) {
        watcher(&self.row);
        self.watcher = Some(watcher);
    }

    /// The stored row (counters carried over from the last run).
    pub fn row(&self) -> &TableRow {
        &self.row
    }

    /// Moves to `to` if the diagram allows it, and persists the move before returning.
    pub async fn transition(&mut self, to: TableState) -> Result<()> {
        if !self.state.allows(&to) {
            return Err(Error::fatal(format!(
                "table {}: a move from {} to {} is not a step of the table lifecycle",
                self.row.name,
                self.state.name(),
                to.name()
            )));
        }
        to.write(&mut self.row);
        self.store.put_table(&self.row).await?;
        self.state = to;
        if let Some(w) = &self.watcher {
            w(&self.row);
        }
        Ok(())
    }

    /// Switches the pair to `to` at `at_ms` (S), from `Streaming`: the row's direction and switch
    /// points change in the same write as the state, so a restart runs the new direction, from
    /// `Switching`.
    pub async fn switch(&mut self, to: Direction, at_ms: i64, replay_from_ms: i64) -> Result<()> {
        if to == self.row.direction {
            return Err(Error::fatal(format!(
                "table {}: already replicates {} ({})",
                self.row.name,
                to.as_str(),
                to.arrow()
            )));
        }
        let before = self.row.clone();
        self.row.direction = to;
        self.row.switches.push(SwitchPoint { direction: to, at_ms });
        let moved = self.transition(TableState::Switching { at_ms, replay_from_ms }).await;
        if moved.is_err() {
            self.row = before;
        }
        moved
    }

    /// Records that the table stopped on request, where it was.
    pub async fn stop(&mut self) -> Result<()> {
        let at = Box::new(self.state.resume_at());
        self.transition(TableState::Stopped { at }).await
    }

    /// Records that the table failed, and why; it resumes where it was on the next run.
    pub async fn fail(&mut self, reason: &str) -> Result<()> {
        let at = Box::new(self.state.resume_at());
        self.transition(TableState::Failed {
            reason: reason.to_string(),
            at,
        })
        .await
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
