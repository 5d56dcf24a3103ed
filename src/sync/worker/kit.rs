//! What every unit of one table held by this worker shares (its shards, its snapshot segments):
//! clients, the source's key, stream and size, the table's capture point, and this worker's part
//! of the table's budgets. Built at the first unit taken, once.

use std::sync::Arc;

use aws_sdk_dynamodb::types::TableDescription;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::super::table::ApplyParts;
use crate::apply::Limiter;
use crate::apply::limit::Share;
use crate::checkpoint::StateStore;
use crate::checkpoint::dynamo::DynamoStore;
use crate::config::{Clients, TableConfig};
use crate::discover::schema::TableSchema;
use crate::discover::{self, View, capacity};
use crate::error::{Error, Result};
use crate::retry::Policy;
use crate::snapshot::budget::{self, ReadBudget};
use crate::telemetry::TableStats;

pub(super) struct Kit {
    pub cfg: TableConfig,
    /// Source, destination.
    pub clients: (Clients, Clients),
    /// This worker's part of the table's budgets while it streams: its shards, of all.
    pub shard_share: Arc<Share>,
    /// ... and while it is loaded: its scan segments or export files, of all.
    pub load_share: Arc<Share>,
    ready: OnceCell<Arc<Ready>>,
}

pub(super) struct Ready {
    pub source: TableDescription,
    pub view: View,
    pub stream_arn: String,
    pub replay_from_ms: i64,
    /// TotalSegments of the snapshot scan, as recorded at the capture point.
    pub segments: u32,
    /// The stream's apply path (its write budget shared by shards).
    pub stream: ApplyParts,
    /// The bulk load's apply path (shared by segments or files) and the scan's read budget.
    pub scan: ApplyParts,
    pub scan_reads: Arc<Limiter>,
    pub read_budget: ReadBudget,
    pub stats: Arc<TableStats>,
}

impl Kit {
    pub fn new(cfg: TableConfig, clients: (Clients, Clients)) -> Kit {
        Kit {
            cfg,
            clients,
            shard_share: Arc::default(),
            load_share: Arc::default(),
            ready: OnceCell::new(),
        }
    }

    /// Reads the source's key, stream and size and the table's capture point, once.
    pub async fn ready(&self, store: &DynamoStore, stop: &CancellationToken) -> Result<Arc<Ready>> {
        self.ready.get_or_try_init(|| self.build(store, stop)).await.cloned()
    }

    async fn build(&self, store: &DynamoStore, stop: &CancellationToken) -> Result<Arc<Ready>> {
        let name = &self.cfg.source;
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
            capture.ok_or_else(|| Error::fatal(format!("table {name} has a unit lease but no capture point")))?;
        let stats = Arc::new(TableStats::default());
        let key_names: Arc<[String]> = discover::key_names(&source).into();
        let read_budget = budget::resolve(self.cfg.max_read_units_per_second, &source);
        // Each worker spends its part of the table's budgets (see `Share`).
        let reads = |share: &Arc<Share>| Arc::new(Limiter::new(read_budget.units_per_second).with_share(share.clone()));
        let clients = (&self.clients.0, &self.clients.1);
        let writes = self.write_budget(&source, stop).await?;
        let stream = ApplyParts::new(
            &self.cfg,
            clients,
            key_names.clone(),
            (reads(&self.shard_share), writes),
            &stats,
        );
        let scan_reads = reads(&self.load_share);
        let scan = ApplyParts::new(&self.cfg, clients, key_names, (scan_reads.clone(), writes), &stats);
        Ok(Arc::new(Ready {
            segments: row.map_or(0, |r| r.snapshot_segments.max(0) as u32),
            source,
            view,
            stream_arn,
            replay_from_ms,
            stream: stream.shared(writes, self.shard_share.clone()),
            scan: scan.shared(writes, self.load_share.clone()),
            scan_reads,
            read_budget,
            stats,
        }))
    }

    /// The table's write budget in units/s, resolved as its holder's run resolves it (the
    /// destination exists once the capture point does; until then, like the source).
    async fn write_budget(&self, source: &TableDescription, stop: &CancellationToken) -> Result<u32> {
        let like_source = TableSchema::from_description(source, &Default::default());
        let (name, configured) = (&self.cfg.destination, self.cfg.max_write_units_per_second);
        let read = capacity::write_budget(&self.clients.1, name, configured, Policy::DAEMON, Some(&like_source));
        let budget = tokio::select! {
            b = read => b?,
            _ = stop.cancelled() => return Err(Error::stopped(format!("reading table {name}"))),
        };
        Ok(budget.units_per_second)
    }
}
