//! The write budget: a governor rate limiter counted in write units (one per started KB).

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

pub struct Limiter {
    /// `None` when unlimited.
    inner: Option<DefaultDirectRateLimiter>,
    burst: u32,
}

impl Limiter {
    /// `units_per_second == 0` means unlimited.
    pub fn new(units_per_second: u32) -> Self {
        match NonZeroU32::new(units_per_second) {
            None => Self { inner: None, burst: 0 },
            Some(rate) => Self {
                inner: Some(RateLimiter::direct(Quota::per_second(rate))),
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
            let n = left.min(self.burst);
            let _ = rl.until_n_ready(NonZeroU32::new(n).expect("n > 0")).await;
            left -= n;
        }
    }
}
