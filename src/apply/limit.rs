//! The write and read budgets: a governor rate limiter counted in capacity units (writes: one
//! per started KB; reads: one per 4 KB read consistently).
//!
//! The limiter runs on tokio's clock, so it pauses and advances with `tokio::time::pause()` in
//! tests (governor's own async wait sleeps on the wall clock).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// governor's clock over `tokio::time::Instant` (the wall clock outside tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;
    fn now(&self) -> Self::Instant {
        tokio::time::Instant::now().into_std()
    }
}

type Inner = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<std::time::Instant>>;

pub struct Limiter {
    /// `None` when unlimited.
    inner: Option<Inner>,
    burst: u32,
    /// With several workers: this process's part of a budget they share.
    share: Option<Arc<Share>>,
}

/// This process's part of a budget shared by several workers: it holds `held` of the `total`
/// units of work (a table's shards) the budget covers. Each spend is charged `total / held`
/// times, so the workers together stay within the budget whatever their shares.
#[derive(Debug, Default)]
pub struct Share {
    held: AtomicU32,
    total: AtomicU32,
}

impl Share {
    pub fn set(&self, held: usize, total: usize) {
        self.held.store(held as u32, Relaxed);
        self.total.store(total as u32, Relaxed);
    }

    fn charge(&self, units: u32) -> u32 {
        let held = self.held.load(Relaxed).max(1) as u64;
        let total = (self.total.load(Relaxed) as u64).max(held);
        (units as u64 * total).div_ceil(held).min(u32::MAX as u64) as u32
    }
}

impl Limiter {
    /// `units_per_second == 0` means unlimited.
    pub fn new(units_per_second: u32) -> Self {
        match NonZeroU32::new(units_per_second) {
            None => Self {
                inner: None,
                burst: 0,
                share: None,
            },
            Some(rate) => Self {
                inner: Some(RateLimiter::direct_with_clock(Quota::per_second(rate), TokioClock)),
                burst: rate.get(),
                share: None,
            },
        }
    }

    /// The same budget, shared with other workers as `share` says.
    pub fn with_share(self, share: Arc<Share>) -> Self {
        Self {
            share: Some(share),
            ..self
        }
    }

    /// Waits until `units` may be spent. A request larger than one second's budget is paid in
    /// instalments, so it is slowed, never refused.
    pub async fn acquire(&self, units: u32) {
        let Some(rl) = &self.inner else { return };
        let mut left = self.share.as_ref().map_or(units, |s| s.charge(units));
        while left > 0 {
            let n = NonZeroU32::new(left.min(self.burst)).expect("n > 0");
            loop {
                match rl.check_n(n) {
                    Ok(Ok(())) => break,
                    Ok(Err(not_until)) => {
                        tokio::time::sleep(not_until.wait_time_from(TokioClock.now())).await;
                    }
                    Err(_) => unreachable!("n never exceeds the burst"),
                }
            }
            left -= n.get();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// How long spending `units` in writes of 10 takes at 100 units/s (a full bucket first).
    async fn spend(limiter: &Limiter, units: u32) -> Duration {
        let t0 = tokio::time::Instant::now();
        for _ in 0..units / 10 {
            limiter.acquire(10).await;
        }
        t0.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_holding_one_of_two_shares_spends_half_the_budget() {
        let alone = spend(&Limiter::new(100), 400).await;
        let share = Arc::new(Share::default());
        share.set(1, 2);
        let half = spend(&Limiter::new(100).with_share(share.clone()), 400).await;
        // 300 units past the full bucket at 100/s; charged twice, 700.
        assert!(
            alone >= Duration::from_millis(2_900) && alone <= Duration::from_millis(3_100),
            "{alone:?}"
        );
        assert!(
            half >= Duration::from_millis(6_900) && half <= Duration::from_millis(7_100),
            "{half:?}"
        );
        share.set(2, 2);
        let whole = spend(&Limiter::new(100).with_share(share), 400).await;
        assert!(
            whole <= Duration::from_millis(3_100),
            "holding every unit, the whole budget: {whole:?}"
        );
    }
}
