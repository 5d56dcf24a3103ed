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

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::StateStore;
use crate::checkpoint::dynamo::DynamoStore;
use crate::checkpoint::lease::keeper::{Keeper, Kept};
use crate::checkpoint::lease::watch::Window;
use crate::checkpoint::lease::{Fence, Leases, Renewed};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::sync::{SyncOptions, run_tables};

pub(super) struct Holding {
    /// The config with this table only.
    pub config: Config,
    pub opts: SyncOptions,
    /// The state table, unfenced (the run writes through a view fenced by this lease).
    pub store: Arc<DynamoStore>,
    pub leases: Arc<Leases>,
    pub failover: Duration,
}

impl Holding {
    /// Runs the table under `fence` (taken at `sent`) until `stop`, a claim, or the lease's loss
    /// (an error for which [`Error::is_lease_lost`] holds).
    pub async fn run(self, fence: Fence, sent: Instant, stop: CancellationToken) -> Result<()> {
        // Writes stop this long before another worker may take the lease (see Window).
        let margin = self.failover / 5;
        let window = Arc::new(Window::default());
        window.renewed(sent, self.failover, margin);
        let store = Arc::new(self.store.fenced(fence.clone()));
        let keeper = Keeper {
            duration: self.failover,
            margin,
            window: window.clone(),
        };
        // Renewals go on while the table drains: only then is the lease released.
        let keep_stop = CancellationToken::new();
        let run_stop = stop.child_token();
        let keeping = tokio::spawn({
            let (leases, store, keep_stop, run_stop) =
                (self.leases.clone(), store.clone(), keep_stop.clone(), run_stop.clone());
            async move {
                let renewed = |r: &Renewed| {
                    store.hold(Some(r.fence.clone()));
                    if r.claimed && !run_stop.is_cancelled() {
                        tracing::info!(lease = %r.fence.key, "another worker asked for this table: handing it over");
                        run_stop.cancel();
                    }
                };
                keeper.keep(leases.as_ref(), fence, renewed, &keep_stop).await
            }
        });
        let state: Arc<dyn StateStore> = store.clone();
        let running = run_tables(&self.config, &self.opts, &state, Some(window.clone()), &run_stop);
        tokio::pin!(keeping, running);
        let ran = tokio::select! {
            kept = &mut keeping => {
                // Lost, or a renewal ended by the stop mid-outage: stop sending, then let the
                // table end (its state writes are refused once the lease moved).
                window.close();
                run_stop.cancel();
                let ran = running.await;
                return match kept.map_err(|e| Error::fatal(format!("the lease keeper panicked: {e}")))? {
                    Ok(Kept::Lost) => Err(Error::lease_lost(format!(
                        "worker {}: another worker took over the table",
                        self.leases.worker()
                    ))),
                    Ok(Kept::Stopped(_)) => ran.map(|_| ()),
                    Err(e) => Err(e),
                };
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
        keep_stop.cancel();
        let kept = keeping.await;
        window.close();
        // Released only when no task of the table is left that could still send a write;
        // otherwise the lease runs out, and the window closed before that.
        if let (Ok(true), Ok(Ok(Kept::Stopped(fence)))) = (&ran, kept) {
            match self.leases.release(&fence).await {
                Ok(true) => tracing::info!(worker = self.leases.worker(), lease = %fence.key, "released the lease"),
                Ok(false) => {}
                Err(e) => tracing::warn!(lease = %fence.key, "could not release the lease (it runs out instead): {e}"),
            }
        }
        ran.map(|_| ())
    }
}
