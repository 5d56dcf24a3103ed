//! One stream shard held by this worker under its own lease
//! ([`crate::checkpoint::lease::shards`]), and the table's side of those leases
//! ([`TableShards`], for the table's coordinator). Whichever worker holds the table's lease
//! offers the shards; any worker, that one included, may hold them.
//!
//! ```text
//!   taken ─▶ reading ── stop, or a claim ─▶ drained, row flushed ─▶ released
//!              │
//!              ├── SHARD_END, every record applied ─▶ row done ─▶ lease ended "done"
//!              ├── the lease lost ─▶ window closed, reading stopped, nothing released
//!              └── an error retrying cannot fix ─▶ lease ended "failed" (the table fails)
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::OnceCell;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::super::table::ApplyParts;
use crate::apply::Limiter;
use crate::checkpoint::StateStore;
use crate::checkpoint::dynamo::DynamoStore;
use crate::checkpoint::lease::keeper::Marks;
use crate::checkpoint::lease::keeping::{End, Keeping};
use crate::checkpoint::lease::shards::ShardLease;
use crate::checkpoint::lease::watch::Window;
use crate::checkpoint::lease::{Fence, Lease, Leases, Unit, shard_key};
use crate::config::{Clients, TableConfig};
use crate::discover::{self, View};
use crate::error::{Error, Result};
use crate::retry::Policy;
use crate::source::TableContext;
use crate::source::streams::StreamTask;
use crate::source::streams::api::SdkStreams;
use crate::source::streams::coordinate::ShardLeasing;
use crate::source::streams::gap::Listed;
use crate::source::streams::leased::ShardRun;
use crate::telemetry::TableStats;

/// What every shard of one table held here shares: clients, the item key, the stream and its
/// replay point, and one write budget. Built at the first shard taken.
pub(super) struct Kit {
    pub cfg: TableConfig,
    pub clients: (Clients, Clients),
    ready: OnceCell<Arc<Ready>>,
}

struct Ready {
    view: View,
    stream_arn: String,
    replay_from_ms: i64,
    apply: ApplyParts,
    stats: Arc<TableStats>,
}

impl Kit {
    pub fn new(cfg: TableConfig, clients: (Clients, Clients)) -> Kit {
        Kit {
            cfg,
            clients,
            ready: OnceCell::new(),
        }
    }

    /// Reads the source's key and stream view and the table's capture point, once.
    async fn ready(&self, store: &DynamoStore, stop: &CancellationToken) -> Result<Arc<Ready>> {
        let name = &self.cfg.source;
        let build = async {
            let source = tokio::select! {
                d = discover::describe(&self.clients.0, name, Policy::DAEMON) => d?,
                _ = stop.cancelled() => return Err(Error::stopped(format!("reading table {name}"))),
            };
            let source = source.ok_or_else(|| Error::fatal(format!("source table {name} does not exist")))?;
            let view = discover::check::stream_view(&source, &self.cfg, Default::default())?
                .ok_or_else(|| Error::fatal(format!("source table {name} has no stream")))?;
            let row = store.table(name).await?;
            let capture = row.as_ref().and_then(|r| r.stream_arn.clone().zip(r.replay_from_ms));
            let (stream_arn, replay_from_ms) =
                capture.ok_or_else(|| Error::fatal(format!("table {name} has a shard lease but no capture point")))?;
            let stats = Arc::new(TableStats::default());
            let key_names: Arc<[String]> = discover::key_names(&source).into();
            let reads = crate::snapshot::budget::resolve(self.cfg.max_read_units_per_second, &source);
            let read_limiter = Arc::new(Limiter::new(reads.units_per_second));
            let apply = ApplyParts::new(
                &self.cfg,
                (&self.clients.0, &self.clients.1),
                key_names,
                read_limiter,
                &stats,
            );
            Ok::<_, Error>(Arc::new(Ready {
                view,
                stream_arn,
                replay_from_ms,
                apply,
                stats,
            }))
        };
        self.ready.get_or_try_init(|| build).await.cloned()
    }
}

pub(super) struct ShardHolding {
    pub kit: Arc<Kit>,
    pub lease: Lease,
    pub store: Arc<DynamoStore>,
    pub leases: Arc<Leases>,
    pub failover: Duration,
}

impl ShardHolding {
    /// Reads the shard under `fence` (taken at `sent`) until it is finished, `stop`, a claim, or
    /// the lease's loss.
    pub async fn run(self, fence: Fence, sent: Instant, stop: CancellationToken) -> Result<()> {
        let run_stop = stop.child_token();
        let on_claim = {
            let run_stop = run_stop.clone();
            move |f: &Fence| {
                if !run_stop.is_cancelled() {
                    tracing::info!(lease = %f.key, "another worker asked for this shard: handing it over");
                    run_stop.cancel();
                }
            }
        };
        let marks = Marks::default();
        let taken = (fence, sent);
        let mut keeping = Keeping::start(
            self.leases.clone(),
            &self.store,
            taken,
            self.failover,
            on_claim,
            Some(marks.clone()),
        );
        let reading = self.read((keeping.store.clone(), keeping.window.clone()), marks, &run_stop);
        tokio::pin!(reading);
        let read = tokio::select! {
            lost = keeping.lost() => {
                run_stop.cancel();
                let _ = reading.await;
                return Err(lost);
            }
            read = &mut reading => read,
        };
        let (end, result) = match read {
            Ok(Some(done)) => (End::Done(done), Ok(())),
            Ok(None) => (End::Release, Ok(())),
            Err(e) if e.is_stopped() => (End::Release, Ok(())),
            Err(e) if e.is_lease_lost() => (End::RunOut, Err(e)),
            Err(e) => (End::Failed(e.to_string()), Err(e)),
        };
        keeping.finish(end).await;
        result
    }

    async fn read(
        &self,
        (store, window): (Arc<DynamoStore>, Arc<Window>),
        marks: Marks,
        stop: &CancellationToken,
    ) -> Result<Option<crate::checkpoint::lease::shards::Done>> {
        let Some(Unit::Shard { table, shard }) = Unit::of(&self.lease.key) else {
            return Err(Error::fatal(format!("{} is no shard's lease", self.lease.key)));
        };
        let ready = self.kit.ready(&self.store, stop).await?;
        let store: Arc<dyn StateStore> = store;
        let (apply, applier_stop) = (ready.apply.clone(), stop.clone());
        let key_names = ready.apply.key_names();
        let ctx = TableContext::new(
            table.into(),
            key_names,
            store,
            ready.stats.clone(),
            stop.clone(),
            move || apply.open(Some(&window), &applier_stop),
        );
        let task = StreamTask {
            api: Arc::new(SdkStreams(self.kit.clients.0.streams.clone())),
            ctx: ctx.clone(),
            stream_arn: ready.stream_arn.clone(),
            view: ready.view,
            replay_from_ms: ready.replay_from_ms,
            list_every: Duration::MAX,
            clock: Default::default(),
            leasing: None,
        };
        let run = ShardRun {
            task,
            shard: shard.to_string(),
            facts: Listed {
                born_after_ms: self.lease.shard.born_after_ms,
                first_seq: self.lease.shard.first_seq.clone(),
            },
            marks,
        };
        run.run(ctx.applier()).await
    }
}

/// The latest listing of every lease, from the worker's last round.
pub(super) type Latest = watch::Receiver<Arc<Vec<Lease>>>;

/// One table's shard leases, as its coordinator sees them.
pub(super) struct TableShards {
    pub table: String,
    pub leases: Arc<Leases>,
    pub latest: Latest,
}

impl ShardLeasing for TableShards {
    fn offer<'a>(&'a self, shard: &'a str, facts: &'a Listed) -> BoxFuture<'a, Result<()>> {
        let key = shard_key(&self.table, shard);
        Box::pin(async move {
            self.leases
                .offer_shard(&key, facts.born_after_ms, facts.first_seq.as_deref())
                .await
        })
    }

    fn reports(&self) -> HashMap<String, ShardLease> {
        self.latest
            .borrow()
            .iter()
            .filter_map(|l| match Unit::of(&l.key)? {
                Unit::Shard { table, shard } if table == self.table => Some((shard.to_string(), l.shard.clone())),
                _ => None,
            })
            .collect()
    }

    fn remove_done<'a>(&'a self, shard: &'a str) -> BoxFuture<'a, Result<()>> {
        let key = shard_key(&self.table, shard);
        Box::pin(async move { self.leases.remove_done(&key).await })
    }
}
