//! ferry's single retry layer: exponential backoff with full jitter.
//!
//! The AWS SDK clients are built with their own retries disabled, so every retry decision is made
//! here, counted in metrics and visible in logs. Throttles are retried without limit (a throttled
//! write is never dropped); other transient errors get a bounded budget before becoming fatal.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::{Error, Kind, Result};

/// Backoff schedule: attempt `n` sleeps a uniformly random time in `[0, min(cap, base * 2^n)]`.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts allowed for `Retryable` errors (throttles never run out); `None` = unlimited.
    pub max_retryable: Option<u32>,
}

impl Policy {
    /// For the long-running apply and read paths.
    pub const DAEMON: Policy = Policy {
        base: Duration::from_millis(50),
        cap: Duration::from_secs(10),
        max_retryable: Some(30),
    };
    /// For start-up checks, where an unreachable endpoint should fail within seconds.
    pub const STARTUP: Policy = Policy {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(1),
        max_retryable: Some(3),
    };

    /// The sleep before retry number `attempt` (0-based), with full jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(20));
        let ceiling = exp.min(self.cap);
        let nanos = rand::rng().random_range(0..=ceiling.as_nanos() as u64);
        Duration::from_nanos(nanos)
    }
}

/// One AWS call of start-up or of a one-off command, under [`Policy::STARTUP`], its errors
/// classified and named by `op` (the API operation).
pub async fn call<T, E, R, F, Fut>(op: &str, mut send: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>>,
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    retry(
        Policy::STARTUP,
        |_| {},
        || {
            let sent = send();
            async move { sent.await.map_err(|e| Error::from_sdk(op, e)) }
        },
    )
    .await
}

/// Runs `op` until it succeeds, fails fatally, or exhausts the policy's retryable budget.
/// `on_retry` sees every error that is about to be retried (for metrics and logs).
pub async fn retry<T, F, Fut>(policy: Policy, mut on_retry: impl FnMut(&Error), mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 0u32;
    let mut retryable_attempts = 0u32;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                match e.kind() {
                    Kind::Fatal => return Err(e),
                    Kind::Retryable => {
                        retryable_attempts += 1;
                        if policy.max_retryable.is_some_and(|m| retryable_attempts >= m) {
                            return Err(e.into_fatal());
                        }
                    }
                    Kind::Throttled => {}
                }
                on_retry(&e);
                tokio::time::sleep(policy.delay(attempt)).await;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delay_is_bounded_by_cap_and_exponential_ceiling() {
        let p = Policy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
            max_retryable: None,
        };
        for _ in 0..200 {
            assert!(p.delay(0) <= Duration::from_millis(10));
            assert!(p.delay(2) <= Duration::from_millis(40));
            assert!(p.delay(30) <= Duration::from_millis(100));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_retry_forever_retryables_run_out_fatal_stops_at_once() {
        let n = AtomicU32::new(0);
        let out = retry(
            Policy::STARTUP,
            |_| {},
            || async {
                let i = n.fetch_add(1, Ordering::SeqCst);
                if i < 10 {
                    Err(Error::new(Kind::Throttled, "slow down"))
                } else {
                    Ok(i)
                }
            },
        )
        .await;
        assert_eq!(out.unwrap(), 10, "throttles never exhaust the budget");

        n.store(0, Ordering::SeqCst);
        let out: Result<()> = retry(
            Policy::STARTUP,
            |_| {},
            || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(Error::retryable("net down"))
            },
        )
        .await;
        let err = out.unwrap_err();
        assert!(err.is_fatal());
        assert_eq!(n.load(Ordering::SeqCst), 3);

        n.store(0, Ordering::SeqCst);
        let out: Result<()> = retry(
            Policy::STARTUP,
            |_| {},
            || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(Error::fatal("bad"))
            },
        )
        .await;
        assert!(out.is_err());
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }
}
