//! Keeping daemons off a table while `ferry checkpoint set` moves it. With the SQLite state, the
//! file's daemon lock. With the DynamoDB state, the table's lease, taken by this command as a
//! worker of its own (when free, or once its holder stopped renewing it for `failover_seconds`)
//! and renewed until the move is written: every write of the move is fenced by it, and the workers
//! take the table back, from the moved position, once it is released.

use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::super::no_store;
use crate::checkpoint::dynamo::DynamoStore;
use crate::checkpoint::lease::keeping::{End, Keeping};
use crate::checkpoint::lease::watch::Observed;
use crate::checkpoint::lease::{Fence, Leases, Unit, table_key};
use crate::checkpoint::{DaemonLock, StateStore, Store};
use crate::config::{Config, DynamoState, StateConfig, build_clients};
use crate::error::{Error, Result};

const STOP_SYNC: &str = "stop `ferry sync` before moving a checkpoint";

/// The state store, while no daemon may run the table.
pub struct Guarded {
    pub store: Arc<dyn StateStore>,
    guard: Guard,
}

enum Guard {
    File { _lock: DaemonLock },
    Lease(Keeping),
}

/// Takes `table` away from every daemon, or says which one runs it.
pub async fn take(config: &Config, table: &str) -> Result<Guarded> {
    match &config.state {
        StateConfig::Sqlite(path) => {
            let lock = DaemonLock::acquire(path).map_err(|e| Error::fatal(format!("{e}: {STOP_SYNC}")))?;
            let store = Store::open_existing(path)?.ok_or_else(|| no_store(config))?;
            Ok(Guarded {
                store: Arc::new(store),
                guard: Guard::File { _lock: lock },
            })
        }
        StateConfig::Dynamo(d) => take_lease(config, d, table).await,
    }
}

async fn take_lease(config: &Config, d: &DynamoState, table: &str) -> Result<Guarded> {
    let clients = build_clients("state", &d.side).await?;
    let base = DynamoStore::open_existing(clients.dynamodb.clone(), &d.table)
        .await?
        .ok_or_else(|| no_store(config))?;
    let me = format!("checkpoint-{}", std::process::id());
    let leases =
        Leases::new(clients.dynamodb, &d.table, &me, &CancellationToken::new()).retrying_within(d.failover / 5);
    let leases = Arc::new(leases);
    let key = table_key(table);
    leases.create(&key).await?;
    let taken = when_idle(&leases, &key, table, d.failover).await?;
    // A claim is ignored: the move is short, and a worker takes the table once it is released.
    let keeping = Keeping::start(leases.clone(), &base, taken, d.failover, |_| {}, None);
    if let Err(e) = clear_units(&leases, table, d.failover).await {
        keeping.finish(End::Release).await;
        return Err(e);
    }
    Ok(Guarded {
        store: keeping.store.clone(),
        guard: Guard::Lease(keeping),
    })
}

/// Takes the lease `key` once no worker renews it: free at once, or after watching its counter
/// stand still for `failover` (a worker killed without a hand-off). A live worker's lease is
/// refused, naming the worker.
async fn when_idle(leases: &Leases, key: &str, table: &str, failover: std::time::Duration) -> Result<(Fence, Instant)> {
    let mut seen = Observed::default();
    let mut watched = None;
    loop {
        let lease = leases.list().await?.into_iter().find(|l| l.key == key);
        let lease = lease.ok_or_else(|| Error::fatal(format!("the lease of table {table} vanished")))?;
        if let Some(owner) = &lease.owner
            && !seen.expired(key, lease.counter, Instant::now(), failover)
        {
            match watched {
                Some(counter) if counter != lease.counter => {
                    return Err(Error::fatal(format!(
                        "{} is held by worker {owner}, which is running: {STOP_SYNC} (every worker)",
                        Unit::label(key)
                    )));
                }
                Some(_) => {}
                None => {
                    eprintln!(
                        "{} is held by worker {owner}: waiting up to {} s to see whether it still runs",
                        Unit::label(key),
                        failover.as_secs()
                    );
                    watched = Some(lease.counter);
                }
            }
            tokio::time::sleep(failover / 5).await;
            continue;
        }
        let sent = Instant::now();
        return match leases.take(&lease).await? {
            Some(fence) => Ok((fence, sent)),
            None => Err(Error::fatal(format!(
                "a worker took table {table} meanwhile: {STOP_SYNC}"
            ))),
        };
    }
}

/// Removes the table's shard and segment leases (none may be renewed: every worker must be
/// stopped), so that no reader resumes from a position the move replaces; the table's next
/// coordinator offers the units again from the moved rows.
async fn clear_units(leases: &Leases, table: &str, failover: std::time::Duration) -> Result<()> {
    let keys: Vec<String> = leases
        .list()
        .await?
        .into_iter()
        .filter(|l| match Unit::of(&l.key) {
            Some(Unit::Shard { table: t, .. } | Unit::Segment { table: t, .. } | Unit::File { table: t, .. }) => {
                t == table
            }
            _ => false,
        })
        .map(|l| l.key)
        .collect();
    let cleared = keys.iter().map(|key| async move {
        let (fence, _) = when_idle(leases, key, table, failover).await?;
        leases.remove_held(&fence).await
    });
    for cleared in futures::future::join_all(cleared).await {
        cleared?;
    }
    Ok(())
}

impl Guarded {
    /// Lets daemons run the table again.
    pub async fn release(self) {
        if let Guard::Lease(keeping) = self.guard {
            keeping.finish(End::Release).await;
        }
    }
}
