//! ferry's single retry driver: exponential backoff with full jitter, for every caller.
//!
//! The AWS SDK clients are built with their own retries off, so every retry decision is made here,
//! counted in metrics, shown in `ferry status` and logged. A [`Policy`] says how long to keep going:
//! daemon work ([`Policy::DAEMON`]) retries transient errors and throttles forever, with a capped
//! backoff, because a destination outage of an hour must not stop a weeks-long sync; a one-off
//! command ([`Policy::STARTUP`]) gives up after a few attempts, so an unreachable endpoint is
//! reported within seconds. Only a `Fatal` error stops at once.
//!
//! A [`Retrier`] is one caller's retry state. In the daemon it is stop-aware (a stop request during
//! a backoff ends it with a [`Kind::Stopped`] error: the work it carried is not acknowledged, so the
//! next run redoes it) and reports to its table's [`Health`](crate::telemetry::Health), which is
//! what `ferry status`, `/metrics` and the log show as "retrying".

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Kind, Result};
use crate::telemetry::TableStats;

/// Backoff schedule: attempt `n` sleeps a uniformly random time in `[0, min(cap, base * 2^n)]`.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub base: Duration,
    pub cap: Duration,
    /// Transient failures (throttles included) allowed before giving up; `None` = never give up.
    pub max_attempts: Option<u32>,
}

impl Policy {
    /// For the daemon's long-running work: retry forever, at most ~20 s apart.
    pub const DAEMON: Policy = Policy {
        base: Duration::from_millis(50),
        cap: Duration::from_secs(20),
        max_attempts: None,
    };
    /// For start-up checks and one-off commands, where an unreachable endpoint should fail within
    /// seconds.
    pub const STARTUP: Policy = Policy {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(1),
        max_attempts: Some(4),
    };

    /// The sleep before retry number `attempt` (0-based), with full jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(20));
        let ceiling = exp.min(self.cap);
        let nanos = rand::rng().random_range(0..=ceiling.as_nanos() as u64);
        Duration::from_nanos(nanos)
    }
}

/// Log a failure that goes on at most this often per caller.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// One caller's retry state: the attempt count, and its streak of failures as reported to its
/// table's health.
pub struct Retrier {
    policy: Policy,
    stop: Option<CancellationToken>,
    stats: Option<Arc<TableStats>>,
    /// Names the work in logs ("writing to Orders", "reading shard shardId-…").
    what: String,
    attempt: u32,
    /// Set while this caller's last attempt failed: when the streak began, and when it was last
    /// logged.
    streak: Option<(Instant, Instant)>,
}

impl Retrier {
    pub fn new(policy: Policy, what: impl Into<String>) -> Retrier {
        Retrier {
            policy,
            stop: None,
            stats: None,
            what: what.into(),
            attempt: 0,
            streak: None,
        }
    }

    /// Daemon work of one table: retries forever, ends on `stop`, reports to `stats`.
    pub fn daemon(what: impl Into<String>, stop: &CancellationToken, stats: &Arc<TableStats>) -> Retrier {
        Retrier::new(Policy::DAEMON, what).stop_on(stop).report_to(stats)
    }

    /// A stop request during a backoff ends the retries with a [`Kind::Stopped`] error.
    pub fn stop_on(mut self, stop: &CancellationToken) -> Retrier {
        self.stop = Some(stop.clone());
        self
    }

    /// Counts retries and throttles in `stats`, and marks the table retrying while this fails.
    pub fn report_to(mut self, stats: &Arc<TableStats>) -> Retrier {
        self.stats = Some(stats.clone());
        self
    }

    /// After a failed attempt: `Ok(())` once the backoff has passed and the caller should try
    /// again; `Err` when retrying cannot help (a fatal error, the attempts of a bounded policy are
    /// spent, or a stop was requested).
    pub async fn backoff(&mut self, e: Error) -> Result<()> {
        match e.kind() {
            Kind::Fatal | Kind::Stopped => {
                self.end_streak();
                return Err(e);
            }
            Kind::Retryable | Kind::Throttled => {}
        }
        if self.policy.max_attempts.is_some_and(|m| self.attempt + 1 >= m) {
            self.end_streak();
            let n = self.attempt + 1;
            // The kind stays: a daemon caller may run the whole step again later.
            return Err(e.context(format!("gave up after {n} attempts")));
        }
        self.note(&e);
        let delay = self.policy.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        match &self.stop {
            Some(stop) => tokio::select! {
                _ = tokio::time::sleep(delay) => Ok(()),
                _ = stop.cancelled() => {
                    self.end_streak();
                    Err(Error::stopped(format!("{}: stopped while retrying after: {}", self.what, e.message())))
                }
            },
            None => {
                tokio::time::sleep(delay).await;
                Ok(())
            }
        }
    }

    /// The last attempt worked: the backoff starts over and the streak (if any) ends.
    pub fn succeeded(&mut self) {
        self.attempt = 0;
        if let Some((began, _)) = self.streak.filter(|_| self.policy.max_attempts.is_none()) {
            tracing::info!(
                "{}working again after {:.1}s of failures",
                self.label(),
                began.elapsed().as_secs_f64()
            );
        }
        self.end_streak();
    }

    /// Runs `op` until it succeeds or [`Retrier::backoff`] gives up.
    pub async fn run<T, F, Fut>(&mut self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        loop {
            match op().await {
                Ok(v) => {
                    self.succeeded();
                    return Ok(v);
                }
                Err(e) => self.backoff(e).await?,
            }
        }
    }

    /// Waits `d`, or ends with a [`Kind::Stopped`] error if a stop is requested first.
    pub async fn pause(&self, d: Duration) -> Result<()> {
        match &self.stop {
            Some(stop) => tokio::select! {
                _ = tokio::time::sleep(d) => Ok(()),
                _ = stop.cancelled() => Err(Error::stopped(format!("{}: stopped while waiting", self.what))),
            },
            None => {
                tokio::time::sleep(d).await;
                Ok(())
            }
        }
    }

    /// Polls a long-running job (an export, an import, PITR being enabled) until it is done: each
    /// look (`describe`) runs under this retrier, so transient errors are retried and reported like
    /// any call's; `judge` reads what it returned: `Some` when done, `None` to look again in
    /// `every`, `Err` when the job failed. Ends early on a stop.
    pub async fn poll<D, T, F, Fut>(
        &mut self,
        every: Duration,
        mut describe: F,
        mut judge: impl FnMut(D) -> Result<Option<T>>,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<D>>,
    {
        loop {
            if let Some(done) = judge(self.run(&mut describe).await?)? {
                return Ok(done);
            }
            self.pause(every).await?;
        }
    }

    /// Counts and reports one failure that will be retried.
    fn note(&mut self, e: &Error) {
        let now = Instant::now();
        let first = self.streak.is_none();
        if let Some(stats) = &self.stats {
            match e.kind() {
                Kind::Throttled => stats.throttles.fetch_add(1, Relaxed),
                _ => stats.retries.fetch_add(1, Relaxed),
            };
        }
        // Throttles are the service pacing ferry, not a failure: counted, never shown as retrying.
        if e.kind() == Kind::Throttled {
            return;
        }
        if let Some(stats) = &self.stats {
            stats.health.failed(e.message(), first);
        }
        let label = self.label();
        let attempts = self.attempt + 1;
        // A bounded call's failures are told once, by the error it ends with if it gives up.
        let quiet = self.policy.max_attempts.is_some();
        match &mut self.streak {
            None if quiet => {
                tracing::debug!("{label}{e}; retrying");
                self.streak = Some((now, now));
            }
            None => {
                tracing::warn!("{label}{e}; retrying");
                self.streak = Some((now, now));
            }
            Some((began, logged)) if !quiet && now.duration_since(*logged) >= LOG_EVERY => {
                let secs = began.elapsed().as_secs_f64();
                tracing::warn!("{label}still failing after {secs:.0}s ({attempts} attempts), retrying: {e}");
                *logged = now;
            }
            Some(_) => {}
        }
    }

    fn label(&self) -> String {
        if self.what.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.what)
        }
    }

    fn end_streak(&mut self) {
        if self.streak.take().is_some()
            && let Some(stats) = &self.stats
        {
            stats.health.recovered();
        }
    }
}

impl Drop for Retrier {
    fn drop(&mut self) {
        self.end_streak();
    }
}

/// One AWS call of start-up or of a one-off command, under [`Policy::STARTUP`], its errors
/// classified and named by `op` (the API operation).
pub async fn call<T, E, F, Fut>(op: &str, mut send: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<
        Output = std::result::Result<
            T,
            aws_smithy_runtime_api::client::result::SdkError<
                E,
                aws_smithy_runtime_api::client::orchestrator::HttpResponse,
            >,
        >,
    >,
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    Retrier::new(Policy::STARTUP, op)
        .run(|| {
            let sent = send();
            async move { sent.await.map_err(|e| Error::from_sdk(op, e)) }
        })
        .await
}

/// Runs `op` under `policy` with no stop and no table to report to (one-off commands, and daemon
/// calls not yet given a [`Retrier`] of their own). `on_retry` sees every error about to be retried.
pub async fn retry<T, F, Fut>(policy: Policy, mut on_retry: impl FnMut(&Error), mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut r = Retrier::new(policy, "");
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                if matches!(e.kind(), Kind::Retryable | Kind::Throttled) {
                    on_retry(&e);
                }
                r.backoff(e).await?
            }
        }
    }
}

#[cfg(test)]
mod tests;
