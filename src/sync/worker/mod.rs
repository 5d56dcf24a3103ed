//! One worker of a migration whose state lives in DynamoDB (`[state] backend = "dynamodb"`).
//! Any number of workers may run on one config; they share the work through leases in the state
//! table ([`crate::checkpoint::lease`]): one per table (its lifecycle, and the coordination of its
//! bulk load and its stream), one per scan segment or export file while it is loaded, one per
//! stream shard while it streams. Every round (a fifth of `failover_seconds`) a worker beats in
//! the worker registry, reads the leases, and takes or claims its fair share of the tables and of
//! each table's units ([`crate::checkpoint::lease::share`]); each table it holds runs in a
//! [`holding::Holding`], each unit in a [`unit::UnitHolding`]. A worker that dies or freezes stops
//! renewing, and its leases are taken over once they stood still for `failover_seconds` on the
//! taker's own clock.
//!
//! ```text
//!   start ─▶ register, one lease per table ─▶ round: beat, list, take/claim ─┐
//!                                                ▲                          │ each taken table:
//!                                                └────── every failover/5 ──┘ a Holding; each
//!                                                                  unit: a UnitHolding
//!   stop (SIGTERM) ─▶ leave the registry (the others' share grows at once) ─▶ every holding
//!                     drains, flushes, and releases its lease ─▶ exit
//! ```

mod books;
mod file;
mod holding;
mod kit;
mod unit;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Shared, SyncOptions};
use crate::checkpoint::dynamo::DynamoStore;
use crate::checkpoint::lease::share::{self, Act, View};
use crate::checkpoint::lease::{Fence, Lease, Leases, Unit, table_key};
use crate::config::{Config, DynamoState, TableConfig, build_clients};
use crate::error::Result;
use books::{Holdings, Seen};
use holding::Holding;
use kit::Kit;
use unit::{Kind, TableUnits, UnitHolding};

/// A worker whose beats stood still for this many lease durations is removed from the registry.
const FORGET_AFTER: u32 = 30;

pub(super) struct Worker {
    config: Config,
    opts: SyncOptions,
    /// The state table, unfenced: each holding writes through its own fenced view.
    store: Arc<DynamoStore>,
    leases: Arc<Leases>,
    failover: Duration,
    /// Each configured table by its lease's key.
    tables: BTreeMap<String, TableConfig>,
    /// What this worker needs to work on each configured table's units, by table.
    kits: HashMap<String, Arc<Kit>>,
    /// Every lease as the last round listed it (each held table's coordinator reads its
    /// shards' reports here).
    latest: tokio::sync::watch::Sender<Arc<Vec<Lease>>>,
    slots: Option<Arc<Semaphore>>,
}

/// A lease this worker just took: as read, as held, and when the take was sent.
type Taken = (Lease, Fence, Instant);

impl Worker {
    /// Opens (or creates) the state table and one lease per configured table.
    pub async fn start(
        config: &Config,
        opts: &SyncOptions,
        state: &DynamoState,
        stop: &CancellationToken,
    ) -> Result<Worker> {
        let clients = build_clients("state", &state.side).await?;
        let store = Arc::new(DynamoStore::open(clients.dynamodb.clone(), &state.table, stop).await?);
        // A lease call that hangs is abandoned and tried again well within the lease.
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(state.failover / 4)
            .build();
        let lease_client = Client::from_conf(clients.dynamodb.config().to_builder().timeout_config(timeouts).build());
        let leases = Leases::new(lease_client, &state.table, &worker_id(), stop).retrying_within(state.failover / 5);
        let leases = Arc::new(leases);
        let tables: BTreeMap<String, TableConfig> = config
            .tables
            .iter()
            .map(|t| (table_key(&t.source), t.clone()))
            .collect();
        for key in tables.keys() {
            leases.create(key).await?;
        }
        let src = build_clients("source", &config.source).await?;
        let dst = build_clients("destination", &config.destination).await?;
        let kits = config
            .tables
            .iter()
            .map(|t| {
                (
                    t.source.clone(),
                    Arc::new(Kit::new(t.clone(), (src.clone(), dst.clone()))),
                )
            })
            .collect();
        tracing::info!(worker = leases.worker(), table = %state.table, "worker started (state in DynamoDB)");
        Ok(Worker {
            config: config.clone(),
            // Several tables' runs come and go: no shared progress bars.
            opts: SyncOptions {
                progress: false,
                ..opts.clone()
            },
            store,
            leases,
            failover: state.failover,
            tables,
            kits,
            latest: tokio::sync::watch::Sender::new(Arc::default()),
            slots: Shared::slots(opts),
        })
    }

    /// Takes part in the migration until `stop`; an error only when the state table refuses
    /// this worker for good.
    pub async fn run(self, stop: &CancellationToken) -> Result<()> {
        let all = stop.child_token();
        let mut holdings = Holdings::default();
        let mut seen = Seen::default();
        let mut rounds = tokio::time::interval(self.failover / 5);
        let outcome = loop {
            tokio::select! {
                _ = all.cancelled() => break Ok(()),
                Some(ended) = holdings.tasks.join_next_with_id() => holdings.ended(ended),
                _ = rounds.tick() => match self.round(&mut seen, &mut holdings, &all).await {
                    Ok(()) => {}
                    Err(e) if e.is_stopped() => break Ok(()),
                    Err(e) => break Err(e),
                },
            }
        };
        all.cancel();
        if let Err(e) = self.leases.leave().await {
            tracing::warn!("could not leave the worker registry (the others see this worker gone later): {e}");
        }
        while let Some(ended) = holdings.tasks.join_next_with_id().await {
            holdings.ended(ended);
        }
        outcome
    }

    /// One round: beat, read the leases, take or claim this worker's share of the tables and of
    /// each table's units of each kind (a share of each, so that one table's work spreads too).
    async fn round(&self, seen: &mut Seen, holdings: &mut Holdings, all: &CancellationToken) -> Result<()> {
        self.leases.beat().await?;
        let live = self.live_workers(seen).await?;
        let listed = self.leases.list().await?;
        seen.leases.keep_only(listed.iter().map(|l| l.key.as_str()));
        self.latest.send_replace(Arc::new(listed.clone()));
        // `None`: the table leases; `Some((kind, t))`: table t's units of that kind (ended ones
        // are no work).
        let mut groups = BTreeMap::<Option<(Kind, String)>, Vec<Lease>>::new();
        let running: HashSet<&String> = holdings.keys.values().collect();
        for mut l in listed {
            // A unit's lease still this worker's that nothing here works on any more (its end
            // could not be written) is as good as free: no write under it can be in flight. (A
            // table's lease is left to run out on purpose after a failure: not this.)
            let unit = !matches!(Unit::of(&l.key), Some(Unit::Table(_)));
            if unit && l.owner.as_deref() == Some(self.leases.worker()) && !running.contains(&l.key) {
                l.owner = None;
            }
            let group = match Unit::of(&l.key) {
                Some(Unit::Table(_)) if self.tables.contains_key(&l.key) => None,
                Some(Unit::Shard { table, .. }) if self.kits.contains_key(table) && !l.ended() => {
                    Some((Kind::Shards, table.to_string()))
                }
                Some(Unit::Segment { table, .. }) if self.kits.contains_key(table) && !l.ended() => {
                    Some((Kind::Segments, table.to_string()))
                }
                Some(Unit::File { table, .. }) if self.kits.contains_key(table) && !l.ended() => {
                    Some((Kind::Files, table.to_string()))
                }
                _ => continue,
            };
            groups.entry(group).or_default().push(l);
        }
        for (group, leases) in groups {
            let what = match &group {
                None => "tables".to_string(),
                Some((Kind::Shards, t)) => format!("shards of {t}"),
                Some((Kind::Segments, t)) => format!("segments of {t}"),
                Some((Kind::Files, t)) => format!("export files of {t}"),
            };
            let won = self.share(&what, &leases, live, seen).await?;
            // Budgets are shared before the new holdings spend any.
            if let Some((kind, table)) = &group {
                let mine = leases
                    .iter()
                    .filter(|l| l.owner.as_deref() == Some(self.leases.worker()));
                self.set_share(*kind, table, mine.count() + won.len(), leases.len());
            }
            for (lease, fence, sent) in won {
                self.spawn(lease, fence, sent, holdings, all)?;
            }
        }
        Ok(())
    }

    /// This worker's part of `table`'s budgets: `mine` of the `all` units of that kind.
    fn set_share(&self, kind: Kind, table: &str, mine: usize, all: usize) {
        let Some(kit) = self.kits.get(table) else { return };
        let share = match kind {
            Kind::Shards => &kit.shard_share,
            Kind::Segments | Kind::Files => &kit.load_share,
        };
        share.set(mine, all);
    }

    /// Takes or claims this worker's share of one group of leases; the leases taken.
    async fn share(&self, what: &str, leases: &[Lease], live: usize, seen: &mut Seen) -> Result<Vec<Taken>> {
        let me = self.leases.worker();
        let now = Instant::now();
        let expired: HashSet<String> = leases
            .iter()
            .filter(|l| l.owner.as_deref().is_some_and(|o| o != me))
            .filter(|l| seen.leases.expired(&l.key, l.counter, now, self.failover))
            .map(|l| l.key.clone())
            .collect();
        let view = View {
            me,
            leases,
            live,
            expired: &expired,
        };
        let why = format!(
            "a share is {} of {} {what} over {live} workers",
            view.share(),
            leases.len()
        );
        let mut won = Vec::new();
        for act in share::plan(&view) {
            match act {
                Act::Take(lease) => won.extend(self.take(lease, &why, seen).await?),
                Act::Claim(lease) if self.leases.claim(&lease).await? => {
                    let owner = lease.owner.as_deref().unwrap_or("?");
                    tracing::info!(
                        worker = me,
                        "asked {owner} to hand over {} ({why})",
                        Unit::label(&lease.key)
                    );
                }
                Act::Claim(_) => {} // it changed hands meanwhile
            }
        }
        Ok(won)
    }

    /// Takes `lease` as read, unless another worker was first.
    async fn take(&self, lease: Lease, why: &str, seen: &mut Seen) -> Result<Option<Taken>> {
        let sent = Instant::now();
        let Some(fence) = self.leases.take(&lease).await? else {
            return Ok(None);
        };
        seen.leases.forget(&lease.key);
        let from = lease.owner.as_deref().unwrap_or("nobody");
        let me = self.leases.worker();
        tracing::info!(
            worker = me,
            "holding {} (taken from {from}; {why})",
            Unit::label(&lease.key)
        );
        Ok(Some((lease, fence, sent)))
    }

    /// Runs the work under a lease just taken.
    fn spawn(
        &self,
        lease: Lease,
        fence: Fence,
        sent: Instant,
        holdings: &mut Holdings,
        all: &CancellationToken,
    ) -> Result<()> {
        let key = lease.key.clone();
        let task = match self.tables.get(&lease.key) {
            Some(table) => holdings
                .tasks
                .spawn(self.holding(table).run(fence, sent, all.child_token())),
            None => holdings
                .tasks
                .spawn(self.unit(lease)?.run(fence, sent, all.child_token())),
        };
        holdings.keys.insert(task.id(), key);
        Ok(())
    }

    /// How many workers are alive (this one included), by their beats on this worker's clock. A
    /// worker killed long ago leaves its item behind: it is cleared, so that the registry (and
    /// `ferry status`) does not grow with every restart.
    async fn live_workers(&self, seen: &mut Seen) -> Result<usize> {
        let me = self.leases.worker();
        let beats = self.leases.workers().await?;
        let now = Instant::now();
        seen.look(now, self.failover);
        let mut live = 0;
        for b in &beats {
            if b.worker == me || !seen.beats.expired(&b.worker, b.beats, now, self.failover) {
                live += 1;
            } else if seen
                .beats
                .expired(&b.worker, b.beats, now, self.failover * FORGET_AFTER)
            {
                self.leases.forget(b).await?;
                seen.beats.forget(&b.worker);
            }
        }
        Ok(live)
    }

    fn holding(&self, table: &TableConfig) -> Holding {
        Holding {
            config: Config {
                tables: vec![table.clone()],
                ..self.config.clone()
            },
            opts: self.opts.clone(),
            store: self.store.clone(),
            leases: self.leases.clone(),
            failover: self.failover,
            slots: self.slots.clone(),
            shards: self.units(table, Kind::Shards),
            segments: self.units(table, Kind::Segments),
            files: self.units(table, Kind::Files),
        }
    }

    fn units(&self, table: &TableConfig, kind: Kind) -> Arc<TableUnits> {
        Arc::new(TableUnits {
            table: table.source.clone(),
            kind,
            leases: self.leases.clone(),
            latest: self.latest.subscribe(),
        })
    }

    fn unit(&self, lease: Lease) -> Result<UnitHolding> {
        let table = Unit::of(&lease.key).map(|u| u.table().to_string()).unwrap_or_default();
        let kit = self
            .kits
            .get(&table)
            .cloned()
            .ok_or_else(|| crate::error::Error::fatal(format!("lease {} names no configured table", lease.key)))?;
        Ok(UnitHolding {
            kit,
            lease,
            store: self.store.clone(),
            leases: self.leases.clone(),
            failover: self.failover,
        })
    }
}

/// This process's name in the lease table: host, process id and a random suffix (a restarted
/// process is a new worker, and takes over only once the old one's leases run out).
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}
