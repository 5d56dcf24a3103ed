//! A held lease kept on a task of its own, so that its renewals never wait for the work done
//! under it: each renewal opens the write window and moves the fence of the state view the work
//! writes through; a claim is handed to the holder; at the end the lease is released, or left to
//! run out when the work may still have writes in flight.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::keeper::{Keeper, Kept, Marks};
use super::units::Done;
use super::watch::Window;
use super::{Fence, Leases, Renewed};
use crate::checkpoint::dynamo::DynamoStore;
use crate::error::{Error, Result};

pub struct Keeping {
    /// Open while writes under the lease may be sent.
    pub window: Arc<Window>,
    /// The state, with every write fenced by the lease as last renewed.
    pub store: Arc<DynamoStore>,
    /// Ends the retries of the state writes under the lease once it is lost.
    writes: CancellationToken,
    leases: Arc<Leases>,
    task: JoinHandle<Result<Kept>>,
    stop: CancellationToken,
}

impl Keeping {
    /// Keeps `fence`, taken at `sent`, over a lease duration `duration`; `on_claim` runs at each
    /// renewal that finds another worker's claim; each renewal records the latest of `marks`.
    pub fn start(
        leases: Arc<Leases>,
        base: &DynamoStore,
        (fence, sent): (Fence, Instant),
        duration: Duration,
        on_claim: impl Fn(&Fence) + Send + Sync + 'static,
        marks: Option<Marks>,
    ) -> Keeping {
        // Writes stop this long before another worker may take the lease (see Window).
        let margin = duration / 5;
        let window = Arc::new(Window::default());
        window.renewed(sent, duration, margin);
        let (store, writes) = base.fenced(fence.clone());
        let store = Arc::new(store);
        let keeper = Keeper {
            duration,
            margin,
            window: window.clone(),
            marks,
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
            writes,
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
        self.writes.cancel();
        match kept {
            Ok(Ok(_)) => Error::lease_lost(format!(
                "worker {}: another worker took over the lease",
                self.leases.worker()
            )),
            Ok(Err(e)) => e,
            Err(e) => Error::fatal(format!("the lease keeper panicked: {e}")),
        }
    }

    /// Stops renewing, closes the window, and ends the lease as `end` says.
    pub async fn finish(self, end: End) {
        self.stop.cancel();
        let kept = self.task.await;
        self.window.close();
        let Ok(Ok(Kept::Stopped(fence))) = kept else {
            return;
        };
        if matches!(end, End::RunOut) {
            return;
        }
        match end_lease(&self.leases, fence.clone(), &end).await {
            Ok(true) => tracing::info!(worker = self.leases.worker(), lease = %fence.key, "{}", end.said()),
            Ok(false) => tracing::info!(lease = %fence.key, "the lease was taken over before it could end"),
            Err(e) => tracing::warn!(lease = %fence.key, "could not end the lease (it runs out instead): {e}"),
        }
    }
}

/// Writes `end` under `fence`. A stop abandons a renewal in flight, which may still land and
/// move the counter: a refused end is retried under the counter read back while the lease is
/// still this worker's (only its own writes move it then). `false` once it is another's.
async fn end_lease(leases: &Leases, mut fence: Fence, end: &End) -> Result<bool> {
    loop {
        let ended = match end {
            End::RunOut => return Ok(false),
            End::Release => leases.release(&fence).await?,
            End::Done(done) => leases.end_done(&fence, done).await?,
            End::Failed(why) => leases.end_failed(&fence, why).await?,
        };
        if ended {
            return Ok(true);
        }
        match leases.read(&fence.key).await? {
            Some(l) if l.owner.as_ref() == Some(&fence.owner) && l.counter > fence.counter => fence.counter = l.counter,
            _ => return Ok(false),
        }
    }
}

/// A claim handler that stops the work under the lease (`stop`), once: the holder then drains
/// and flushes the `what` (a table, a unit) and releases the lease.
pub fn hand_over(stop: &CancellationToken, what: &'static str) -> impl Fn(&Fence) + Send + Sync + 'static {
    let stop = stop.clone();
    move |f: &Fence| {
        if !stop.is_cancelled() {
            tracing::info!(lease = %f.key, "another worker asked for this {what}: handing it over");
            stop.cancel();
        }
    }
}

/// How a kept lease ends.
#[derive(Debug)]
pub enum End {
    /// Freed for the next holder: only when no write under it can still be in flight.
    Release,
    /// Left to run out (writes may still be in flight): another worker takes it after a lease
    /// duration.
    RunOut,
    /// A unit finished (its row says done).
    Done(Done),
    /// A unit that cannot go on: never taken again; its table fails.
    Failed(String),
}

impl End {
    /// What the log says once the lease ended so.
    fn said(&self) -> &'static str {
        match self {
            End::Release => "released the lease",
            End::Done(_) => "finished: the lease says done",
            End::Failed(_) => "failed: the lease says so",
            End::RunOut => "left the lease to run out",
        }
    }
}
