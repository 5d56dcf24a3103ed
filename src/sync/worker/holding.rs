//! One table held by this worker: its run under the table's lease. The lease is renewed on its
//! own task every third of `failover_seconds`; each renewal opens the write window that gates the
//! table's batches ([`crate::apply::gate`]) and moves the fence of its state writes
//! ([`crate::checkpoint::dynamo::DynamoStore::fenced`]).
//!
//! ```text
//!   taken ─▶ running ── stop, or another worker's claim ─▶ draining ─▶ flushed ─▶ released
//!               │
//!               ├── a renewal or a state write finds the lease taken ─▶ window closed, table
//!               │                                                       stopped, nothing released
//!               └── the table fails ─▶ held (renewed) until a stop or a claim, then left to
//!                                      run out, so that another worker retries it
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::StateStore;
use crate::checkpoint::dynamo::DynamoStore;
use crate::checkpoint::lease::keeping::{End, Keeping, hand_over};
use crate::checkpoint::lease::units::Offers;
use crate::checkpoint::lease::{Fence, Leases};
use crate::config::Config;
use crate::error::Result;
use crate::sync::{Shared, SyncOptions, run_tables};

pub(super) struct Holding {
    /// The config with this table only.
    pub config: Config,
    pub opts: SyncOptions,
    /// The state table, unfenced (the run writes through a view fenced by this lease).
    pub store: Arc<DynamoStore>,
    pub leases: Arc<Leases>,
    pub failover: Duration,
    /// `--parallel-tables`, shared by every table this worker holds.
    pub slots: Option<Arc<Semaphore>>,
    /// The table's shard and snapshot segment leases, which its coordinators offer and watch.
    pub shards: Arc<dyn Offers>,
    pub segments: Arc<dyn Offers>,
    pub files: Arc<dyn Offers>,
}

impl Holding {
    /// Runs the table under `fence` (taken at `sent`) until `stop`, a claim, or the lease's loss
    /// (an error for which [`Error::is_lease_lost`] holds).
    pub async fn run(self, fence: Fence, sent: Instant, stop: CancellationToken) -> Result<()> {
        let run_stop = stop.child_token();
        let on_claim = hand_over(&run_stop, "table");
        // Renewals go on while the table drains: only then is the lease released.
        let mut keeping = Keeping::start(
            self.leases.clone(),
            &self.store,
            (fence, sent),
            self.failover,
            on_claim,
            None,
        );
        let state: Arc<dyn StateStore> = keeping.store.clone();
        let shared = Shared {
            window: Some(keeping.window.clone()),
            slots: self.slots.clone(),
            shards: Some(self.shards.clone()),
            segments: Some(self.segments.clone()),
            files: Some(self.files.clone()),
        };
        let running = run_tables(&self.config, &self.opts, &state, &shared, &run_stop);
        tokio::pin!(running);
        let ran = tokio::select! {
            lost = keeping.lost() => {
                // Stop sending (the window is closed), then let the table end: its state writes
                // are refused once the lease moved.
                run_stop.cancel();
                let _ = running.await;
                return Err(lost);
            }
            ran = &mut running => ran,
        };
        if let Err(e) = &ran
            && !e.is_lease_lost()
            && !e.is_stopped()
        {
            // Failed (and recorded): released now, it would only fail again elsewhere at once.
            run_stop.cancelled().await;
        }
        // Released only when no task of the table is left that could still send a write;
        // otherwise the lease runs out, and the window closed before that.
        let end = match &ran {
            Ok(true) => End::Release,
            _ => End::RunOut,
        };
        keeping.finish(end).await;
        ran.map(|_| ())
    }
}
