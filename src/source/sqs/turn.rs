//! Receivers take turns while the queue runs short.
//!
//! SQS answers a ReceiveMessage as soon as it holds any message, so receivers that each ask again
//! the moment they are answered split a moderate flow into calls of one or two messages: as many
//! ReceiveMessage and DeleteMessageBatch calls (billed per call) as messages, and write batches
//! as small. A receiver whose last call came back short (fewer than [`FULL`] messages) waits for
//! the turn, and after another short call keeps it until [`GATHER`] after that call began: short
//! calls go out one at a time, at most one per GATHER, each taking what arrived since the last.
//! A full call means a backlog: its receiver asks again at once, without the turn, so a backlog
//! is drained by every receiver in parallel.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::time::Instant;

/// Messages per ReceiveMessage (SQS's maximum).
pub const FULL: usize = 10;
/// The least time between two short calls (the stream's reader waits as long at a shard's tip).
pub const GATHER: Duration = Duration::from_millis(20);

/// The table's receivers' turn.
#[derive(Default)]
pub(super) struct Turn(Arc<Mutex<()>>);

/// A receiver's call, holding the turn when it had to take it.
pub(super) struct Call {
    turn: Option<OwnedMutexGuard<()>>,
    began: Instant,
}

impl Turn {
    /// Waits for the turn when the receiver's last call came back short; the call begins now.
    pub(super) async fn call(&self, last_short: bool) -> Call {
        let turn = match last_short {
            true => Some(self.0.clone().lock_owned().await),
            false => None,
        };
        Call {
            turn,
            began: Instant::now(),
        }
    }
}

impl Call {
    /// The call came back with `got` messages: the turn passes on at once after a full call, else
    /// [`GATHER`] after the call began.
    pub(super) fn answered(self, got: usize) {
        let Some(turn) = self.turn else { return };
        let rest = GATHER.saturating_sub(self.began.elapsed());
        if got >= FULL || rest.is_zero() {
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(rest).await;
            drop(turn);
        });
    }
}
