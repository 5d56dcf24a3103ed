//! The write and read budgets: a governor rate limiter counted in capacity units (writes: one
//! per started KB; reads: one per 4 KB read consistently).
//!
//! The limiter runs on tokio's clock, so it pauses and advances with `tokio::time::pause()` in
//! tests (governor's own async wait sleeps on the wall clock).

use std::num::NonZeroU32;

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
}

impl Limiter {
    /// `units_per_second == 0` means unlimited.
    pub fn new(units_per_second: u32) -> Self {
        match NonZeroU32::new(units_per_second) {
            None => Self { inner: None, burst: 0 },
            Some(rate) => Self {
                inner: Some(RateLimiter::direct_with_clock(Quota::per_second(rate), TokioClock)),
                burst: rate.get(),
            },
        }
    }

    /// Waits until `units` may be spent. A request larger than one second's budget is paid in
    /// instalments, so it is slowed, never refused.
    pub async fn acquire(&self, units: u32) {
        let Some(rl) = &self.inner else { return };
        let mut left = units;
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
