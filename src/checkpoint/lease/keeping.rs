//! A held lease kept on a task of its own, so that its renewals never wait for the work done
//! under it: each renewal opens the write window and moves the fence of the state view the work
//! writes through; a claim is handed to the holder; at the end the lease is released, or left to
//! run out when the work may still have writes in flight.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::keeper::{Keeper, Kept};
use super::watch::Window;
use super::{Fence, Leases, Renewed};
use crate::checkpoint::dynamo::DynamoStore;
use crate::error::{Error, Result};

pub struct Keeping {
    /// Open while writes under the lease may be sent.
    pub window: Arc<Window>,
    /// The state, with every write fenced by the lease as last renewed.
    pub store: Arc<DynamoStore>,
    leases: Arc<Leases>,
    task: JoinHandle<Result<Kept>>,
    stop: CancellationToken,
}

impl Keeping {
    /// Keeps `fence`, taken at `sent`, over a lease duration `duration`; `on_claim` runs at each
    /// renewal that finds another worker's claim.
    pub fn start(
        leases: Arc<Leases>,
        base: &DynamoStore,
        (fence, sent): (Fence, Instant),
        duration: Duration,
        on_claim: impl Fn(&Fence) + Send + Sync + 'static,
    ) -> Keeping {
        // Writes stop this long before another worker may take the lease (see Window).
        let margin = duration / 5;
        let window = Arc::new(Window::default());
        window.renewed(sent, duration, margin);
        let store = Arc::new(base.fenced(fence.clone()));
        let keeper = Keeper {
            duration,
            margin,
            window: window.clone(),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (leases, store, stop) = (leases.clone(), store.clone(), stop.clone());
            async move {
                let renewed = |r: &Renewed| {
                    store.hold(Some(r.fence.clone()));
                    if r.claimed {
                        on_claim(&r.fence);
                    }
                };
                keeper.keep(leases.as_ref(), fence, renewed, &stop).await
            }
        });
        Keeping {
            window,
            store,
            leases,
            task,
            stop,
        }
    }

    /// Ends only when the lease is lost (an error for which [`Error::is_lease_lost`] holds) or
    /// renewing it failed for good; the window is then closed.
    pub async fn lost(&mut self) -> Error {
        let kept = (&mut self.task).await;
        self.window.close();
        match kept {
            Ok(Ok(_)) => Error::lease_lost(format!(
                "worker {}: another worker took over the lease",
                self.leases.worker()
            )),
            Ok(Err(e)) => e,
            Err(e) => Error::fatal(format!("the lease keeper panicked: {e}")),
        }
    }

    /// Stops renewing and closes the window; with `release`, frees the lease for the next holder
    /// (only when no write under it can still be in flight).
    pub async fn finish(self, release: bool) {
        self.stop.cancel();
        let kept = self.task.await;
        self.window.close();
        let (true, Ok(Ok(Kept::Stopped(fence)))) = (release, kept) else {
            return;
        };
        match self.leases.release(&fence).await {
            Ok(true) => tracing::info!(worker = self.leases.worker(), lease = %fence.key, "released the lease"),
            Ok(false) => {}
            Err(e) => tracing::warn!(lease = %fence.key, "could not release the lease (it runs out instead): {e}"),
        }
    }
}
