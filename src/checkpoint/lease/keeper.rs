//! Keeping a held lease: renew it every third of the lease duration; after each renewal, open the
//! write window from when that renewal was *sent* and hand the new counter on (to the state's
//! fence); when a renewal finds the lease taken, close the window at once and say so. A renewal
//! that keeps failing (an outage) is retried, and meanwhile the window closes on its own, so
//! writes stop before any other worker may take the lease.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::watch::Window;
use super::{Fence, Leases, Mark, Renewed};
use crate::error::Result;

/// The lease calls the keeper makes (DynamoDB's conditional writes; a script in tests).
pub trait Renew: Send + Sync {
    /// The renewed lease (recording `mark`); `None` when it was taken by another worker.
    fn renew<'a>(&'a self, fence: &'a Fence, mark: Option<Mark>) -> BoxFuture<'a, Result<Option<Renewed>>>;
}

impl Renew for Leases {
    fn renew<'a>(&'a self, fence: &'a Fence, mark: Option<Mark>) -> BoxFuture<'a, Result<Option<Renewed>>> {
        Box::pin(Leases::renew_marked(self, fence, mark))
    }
}

/// Where the work under a lease leaves its latest [`Mark`] for the next renewal to record.
pub type Marks = Arc<std::sync::Mutex<Option<Mark>>>;

/// How keeping a lease ended.
#[derive(Debug, PartialEq)]
pub enum Kept {
    /// Another worker took it: the window is closed.
    Lost,
    /// Asked to stop, holding this (for a graceful release).
    Stopped(Fence),
}

pub struct Keeper {
    pub duration: Duration,
    /// How long before a taker's earliest take this worker stops writing.
    pub margin: Duration,
    pub window: Arc<Window>,
    /// What each renewal records (a shard's progress), if anything.
    pub marks: Option<Marks>,
}

impl Keeper {
    /// Renews `fence` until the lease is lost or `stop` fires; `renewed` gets each renewal.
    pub async fn keep(
        &self,
        calls: &dyn Renew,
        mut fence: Fence,
        renewed: impl Fn(&Renewed),
        stop: &CancellationToken,
    ) -> Result<Kept> {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.duration / 3) => {}
                _ = stop.cancelled() => return Ok(Kept::Stopped(fence)),
            }
            let sent = Instant::now();
            // A renewal retries through an outage; a stop must not wait for it.
            let renewed_to = tokio::select! {
                r = calls.renew(&fence, self.mark()) => r?,
                _ = stop.cancelled() => return Ok(Kept::Stopped(fence)),
            };
            tracing::debug!(key = %fence.key, took_ms = sent.elapsed().as_millis() as u64, "renewed");
            match renewed_to {
                Some(next) => {
                    self.window.renewed(sent, self.duration, self.margin);
                    renewed(&next);
                    fence = next.fence;
                }
                None => {
                    self.window.close();
                    return Ok(Kept::Lost);
                }
            }
        }
    }

    fn mark(&self) -> Option<Mark> {
        self.marks.as_ref().and_then(|m| *m.lock().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    const D: Duration = Duration::from_secs(9);
    const MARGIN: Duration = Duration::from_secs(2);

    /// Renewals as scripted: each answers after its delay, or reports the lease taken.
    struct Script(Mutex<Vec<(Duration, bool)>>);

    impl Renew for Script {
        fn renew<'a>(&'a self, fence: &'a Fence, _: Option<Mark>) -> BoxFuture<'a, Result<Option<Renewed>>> {
            let (delay, kept) = self.0.lock().unwrap().remove(0);
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(kept.then(|| Renewed {
                    fence: Fence {
                        counter: fence.counter + 1,
                        ..fence.clone()
                    },
                    claimed: false,
                }))
            })
        }
    }

    fn fence() -> Fence {
        Fence {
            key: "migration".into(),
            owner: "w1".into(),
            counter: 1,
        }
    }

    fn keeper() -> Keeper {
        let window = Arc::new(Window::default());
        window.renewed(Instant::now(), D, MARGIN);
        Keeper {
            duration: D,
            margin: MARGIN,
            window,
            marks: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_keep_the_window_open_and_a_slow_one_closes_it_before_any_take() {
        let k = keeper();
        // Two prompt renewals, then one that hangs for 20 s, then the lease is found taken.
        let script = Script(Mutex::new(vec![
            (Duration::ZERO, true),
            (Duration::ZERO, true),
            (Duration::from_secs(20), true),
            (Duration::ZERO, false),
        ]));
        let seen = Mutex::new(Vec::new());
        let stop = CancellationToken::new();
        let t0 = Instant::now();
        let keeping = k.keep(&script, fence(), |r| seen.lock().unwrap().push(r.fence.counter), &stop);
        let watching = async {
            // Open through the prompt renewals (at 3 s and 6 s).
            for s in [1, 4, 7, 9, 10] {
                tokio::time::sleep_until(t0 + Duration::from_secs(s)).await;
                assert!(k.window.is_open(Instant::now()), "open at {s} s");
            }
            // The third renewal, sent at 9 s, hangs: the second's window (6 + 9 - 2) ends at 13 s.
            tokio::time::sleep_until(t0 + Duration::from_millis(12_999)).await;
            assert!(k.window.is_open(Instant::now()));
            tokio::time::sleep_until(t0 + Duration::from_secs(13)).await;
            assert!(!k.window.is_open(Instant::now()), "closed while a renewal hangs");
            // It answers at 29 s: counted from its sending, it opens nothing.
            tokio::time::sleep_until(t0 + Duration::from_secs(30)).await;
            assert!(
                !k.window.is_open(Instant::now()),
                "a late renewal does not reopen the window"
            );
        };
        let (kept, ()) = tokio::join!(keeping, watching);
        assert_eq!(kept.unwrap(), Kept::Lost);
        assert_eq!(*seen.lock().unwrap(), [2, 3, 4], "each new counter handed on");
        assert!(
            !k.window.is_open(Instant::now()),
            "a lost lease closes the window at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_keeping_even_while_a_renewal_hangs() {
        let k = keeper();
        let script = Script(Mutex::new(vec![(Duration::from_secs(3600), true)]));
        let stop = CancellationToken::new();
        let stopping = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            stop.cancel();
        };
        let (kept, ()) = tokio::join!(k.keep(&script, fence(), |_| {}, &stop), stopping);
        assert_eq!(kept.unwrap(), Kept::Stopped(fence()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_hands_back_the_lease_as_last_renewed() {
        let k = keeper();
        let script = Script(Mutex::new(vec![(Duration::ZERO, true)]));
        let stop = CancellationToken::new();
        let stopping = async {
            tokio::time::sleep(Duration::from_secs(4)).await;
            stop.cancel();
        };
        let (kept, ()) = tokio::join!(k.keep(&script, fence(), |_| {}, &stop), stopping);
        assert_eq!(kept.unwrap(), Kept::Stopped(Fence { counter: 2, ..fence() }));
    }
}
