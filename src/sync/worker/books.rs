//! What a worker keeps between its rounds: what it has seen change in the lease table, on its own
//! clock, and the holdings it runs.

use std::collections::HashMap;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;

use crate::checkpoint::lease::Unit;
use crate::checkpoint::lease::watch::Observed;
use crate::error::Result;

/// What this worker has seen change, on its own clock: each lease's counter and each worker's
/// beats, and when it last looked.
#[derive(Default)]
pub(super) struct Seen {
    pub leases: Observed,
    pub beats: Observed,
    looked: Option<Instant>,
}

impl Seen {
    /// Called at each look. A counter that stood still across a gap in looking still proves its
    /// holder did not renew, so taking then is safe; but after an outage of the state table every
    /// holder looks silent at once (none could renew), and taking would shuffle every table. So
    /// after a gap longer than a lease duration, watching starts afresh: the holders' renewals,
    /// retried at most a fifth of it apart, land first.
    pub fn look(&mut self, now: Instant, failover: Duration) {
        if self.looked.is_some_and(|t| now.duration_since(t) > failover) {
            tracing::info!(
                "no look at the leases for {:?}: watching them afresh",
                now.duration_since(self.looked.unwrap_or(now))
            );
            *self = Seen::default();
        }
        self.looked = Some(now);
    }
}

/// The running holdings, and which lease each holds.
#[derive(Default)]
pub(super) struct Holdings {
    pub tasks: JoinSet<Result<()>>,
    pub keys: HashMap<Id, String>,
}

impl Holdings {
    /// Logs how a holding ended.
    pub fn ended(&mut self, ended: std::result::Result<(Id, Result<()>), JoinError>) {
        let (id, result) = match ended {
            Ok((id, r)) => (id, r.map_err(|e| e.to_string())),
            Err(e) => (e.id(), Err(format!("its task panicked: {e}"))),
        };
        let what = Unit::label(&self.keys.remove(&id).unwrap_or_default());
        match result {
            Ok(()) => tracing::info!("{what}: no longer held here"),
            Err(e) => tracing::warn!("{what}: no longer held here: {e}"),
        }
    }
}
