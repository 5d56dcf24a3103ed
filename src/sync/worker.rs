//! One worker of a migration whose state lives in DynamoDB (`[state] backend = "dynamodb"`).
//! Several workers may start on one config: the one holding the migration's lease runs every
//! table; the others wait as standbys and take over when it stops renewing (it died, froze or lost
//! its network) for `failover_seconds`, judged on the standby's own monotonic clock.
//!
//! ```text
//!            take (free, or its counter stood still for failover_seconds)
//!   standby ────────────────────────────────────────────────────────────▶ holding
//!      ▲                                                                   │  tables run; batches sent
//!      │ lost: a renewal or a state write finds the lease taken over       │  only in the write window;
//!      └───────────────────────────────────────────────────────────────────┤  state writes fenced
//!                                                                          │
//!   exit ◀── stop: tables drain and flush, then the lease is released ─────┘
//! ```
//!
//! A worker that lost the lease sends nothing more: its window closed before the taker could
//! take (see [`crate::checkpoint::lease`]), and the state refuses its writes. The new holder
//! resumes every table from the checkpoints, which never run ahead of durable writes.

use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{SyncOptions, run_tables};
use crate::checkpoint::StateStore;
use crate::checkpoint::dynamo::DynamoStore;
use crate::checkpoint::lease::keeper::{Keeper, Kept};
use crate::checkpoint::lease::watch::{Observed, Window};
use crate::checkpoint::lease::{Fence, Leases};
use crate::config::{Config, DynamoState, build_clients};
use crate::error::{Error, Result};

/// The lease of the whole migration (one holder runs every table).
const MIGRATION: &str = "migration";

pub(super) struct Worker<'a> {
    config: &'a Config,
    opts: &'a SyncOptions,
    store: Arc<DynamoStore>,
    leases: Arc<Leases>,
    failover: Duration,
}

impl<'a> Worker<'a> {
    /// Opens (or creates) the state table and the migration's lease.
    pub async fn start(
        config: &'a Config,
        opts: &'a SyncOptions,
        state: &DynamoState,
        stop: &CancellationToken,
    ) -> Result<Worker<'a>> {
        let clients = build_clients("state", &state.side).await?;
        let store = Arc::new(DynamoStore::open(clients.dynamodb.clone(), &state.table, stop).await?);
        // A lease call that hangs is abandoned and tried again well within the lease.
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(state.failover / 4)
            .build();
        let lease_client = Client::from_conf(clients.dynamodb.config().to_builder().timeout_config(timeouts).build());
        let leases = Arc::new(Leases::new(lease_client, &state.table, &worker_id(), stop));
        leases.create(MIGRATION).await?;
        tracing::info!(worker = leases.worker(), table = %state.table, "worker started (state in DynamoDB)");
        Ok(Worker {
            config,
            opts,
            store,
            leases,
            failover: state.failover,
        })
    }

    /// Holds the migration whenever it can, until `stop`.
    pub async fn run(self, stop: &CancellationToken) -> Result<()> {
        loop {
            let (fence, sent) = match self.standby(stop).await {
                Ok(Some(taken)) => taken,
                Ok(None) => return Ok(()),
                Err(e) if e.is_stopped() => return Ok(()),
                Err(e) => return Err(e),
            };
            match self.hold(fence, sent, stop).await {
                Err(e) if e.is_lease_lost() => {
                    tracing::warn!(worker = self.leases.worker(), "{e}; back to standby");
                }
                Err(e) if e.is_stopped() => return Ok(()),
                other => return other,
            }
            if stop.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// Stops writing this long before a standby may take the lease (see
    /// [`crate::checkpoint::lease::watch::Window`]).
    fn margin(&self) -> Duration {
        self.failover / 5
    }

    /// Waits until this worker takes the migration's lease: the lease and when the take was sent;
    /// `None` when stopped first.
    async fn standby(&self, stop: &CancellationToken) -> Result<Option<(Fence, Instant)>> {
        let mut observed = Observed::default();
        let mut told = None;
        loop {
            let Some(lease) = self.leases.list().await?.into_iter().find(|l| l.key == MIGRATION) else {
                self.leases.create(MIGRATION).await?;
                continue;
            };
            if lease.owner.is_none() || observed.expired(MIGRATION, lease.counter, Instant::now(), self.failover) {
                let sent = Instant::now();
                if let Some(fence) = self.leases.take(&lease).await? {
                    let from = lease.owner.as_deref().unwrap_or("nobody");
                    tracing::info!(
                        worker = self.leases.worker(),
                        "holding the migration (taken from {from})"
                    );
                    return Ok(Some((fence, sent)));
                }
                observed.forget(MIGRATION); // another standby won the race
                continue;
            }
            if told != lease.owner {
                tracing::info!(
                    worker = self.leases.worker(),
                    "standby: {} holds the migration; taking over if it stops renewing for {} s",
                    lease.owner.as_deref().unwrap_or("?"),
                    self.failover.as_secs()
                );
                told = lease.owner;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.failover / 5) => {}
                _ = stop.cancelled() => return Ok(None),
            }
        }
    }

    /// Runs every table under `fence` (taken at `sent`) until a stop, the end of every table, or
    /// the lease's loss (an error for which [`Error::is_lease_lost`] holds).
    async fn hold(&self, fence: Fence, sent: Instant, stop: &CancellationToken) -> Result<()> {
        let window = Arc::new(Window::default());
        window.renewed(sent, self.failover, self.margin());
        self.store.hold(Some(fence.clone()));
        let keeper = Keeper {
            duration: self.failover,
            margin: self.margin(),
            window: window.clone(),
        };
        // Renewals go on while the tables drain after a stop: only then is the lease released.
        let keep_stop = CancellationToken::new();
        let run_stop = stop.child_token();
        // Its own task: renewals never wait for the tables' work to yield.
        let keeping = tokio::spawn({
            let (leases, store, keep_stop) = (self.leases.clone(), self.store.clone(), keep_stop.clone());
            async move {
                let renewed = |f: &Fence| store.hold(Some(f.clone()));
                keeper.keep(leases.as_ref(), fence, renewed, &keep_stop).await
            }
        });
        let state: Arc<dyn StateStore> = self.store.clone();
        let running = run_tables(self.config, self.opts, &state, Some(window.clone()), &run_stop);
        tokio::pin!(keeping, running);
        let ran = tokio::select! {
            kept = &mut keeping => {
                // Lost, or a renewal ended by the stop mid-outage: stop sending, then let the
                // tables end (their state writes are refused once the lease moved).
                window.close();
                run_stop.cancel();
                let ran = running.await;
                self.store.hold(None);
                return match kept.map_err(|e| Error::fatal(format!("the lease keeper panicked: {e}")))? {
                    Ok(Kept::Lost) => Err(Error::lease_lost(format!(
                        "worker {}: another worker took over the migration",
                        self.leases.worker()
                    ))),
                    Ok(Kept::Stopped(_)) => ran.map(|_| ()),
                    Err(e) => Err(e),
                };
            }
            ran = &mut running => ran,
        };
        keep_stop.cancel();
        let kept = keeping.await;
        window.close();
        self.store.hold(None);
        // Released only when no table task is left that could still send a write; otherwise the
        // lease runs out, and the window closed before that.
        if let (Ok(true), Ok(Ok(Kept::Stopped(fence)))) = (&ran, kept) {
            match self.leases.release(&fence).await {
                Ok(true) => tracing::info!(worker = self.leases.worker(), "released the migration's lease"),
                Ok(false) => {}
                Err(e) => tracing::warn!("could not release the migration's lease (it runs out instead): {e}"),
            }
        }
        ran.map(|_| ())
    }
}

/// This process's name in the lease table: host, process id and a random suffix (a restarted
/// process is a new worker, and takes over only once the old one's lease runs out).
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}
