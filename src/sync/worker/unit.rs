//! One unit of a table held by this worker under its own lease
//! ([`crate::checkpoint::lease::units`]): a stream shard, a snapshot segment, or an export data
//! file ([`super::file`]). And the table's side of those leases ([`TableUnits`], for the table's
//! coordinators). Whichever worker holds the table's lease offers the units; any worker, that one
//! included, may hold them.
//!
//! ```text
//!   taken ─▶ working ── stop, or a claim ─▶ drained, row flushed ─▶ released
//!              │
//!              ├── finished (a shard at SHARD_END, a segment or file loaded), every write applied
//!              │     ─▶ row done ─▶ lease ended "done"
//!              ├── the lease lost ─▶ window closed, work stopped, nothing released
//!              └── an error retrying cannot fix ─▶ lease ended "failed" (the table fails)
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::kit::{Kit, Ready};
use crate::checkpoint::StateStore;
use crate::checkpoint::dynamo::DynamoStore;
use crate::checkpoint::lease::keeper::Marks;
use crate::checkpoint::lease::keeping::{End, Keeping, hand_over};
use crate::checkpoint::lease::units::{Done, Offers, UnitLease};
use crate::checkpoint::lease::watch::Window;
use crate::checkpoint::lease::{Fence, Lease, Leases, Unit, file_key, segment_key, shard_key};
use crate::error::{Error, Result};
use crate::snapshot::scan::ScanTask;
use crate::snapshot::source::SdkScan;
use crate::source::TableContext;
use crate::source::streams::StreamTask;
use crate::source::streams::api::SdkStreams;
use crate::source::streams::gap::Listed;
use crate::source::streams::leased::ShardRun;

pub(super) struct UnitHolding {
    pub kit: Arc<Kit>,
    pub lease: Lease,
    pub store: Arc<DynamoStore>,
    pub leases: Arc<Leases>,
    pub failover: Duration,
}

/// What a unit's work runs with: its state fenced by its lease, its window, its stop.
pub(super) struct Held {
    pub store: Arc<DynamoStore>,
    pub window: Arc<Window>,
    pub marks: Marks,
    pub stop: CancellationToken,
}

impl UnitHolding {
    /// Works on the unit under `fence` (taken at `sent`) until it is finished, `stop`, a claim,
    /// or the lease's loss.
    pub async fn run(self, fence: Fence, sent: Instant, stop: CancellationToken) -> Result<()> {
        let run_stop = stop.child_token();
        let on_claim = hand_over(&run_stop, "unit");
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
        let held = Held {
            store: keeping.store.clone(),
            window: keeping.window.clone(),
            marks,
            stop: run_stop.clone(),
        };
        let working = self.work(held);
        tokio::pin!(working);
        let worked = tokio::select! {
            lost = keeping.lost() => {
                run_stop.cancel();
                let _ = working.await;
                return Err(lost);
            }
            worked = &mut working => worked,
        };
        let (end, result) = match worked {
            Ok(Some(done)) => (End::Done(done), Ok(())),
            Ok(None) => (End::Release, Ok(())),
            Err(e) if e.is_stopped() => (End::Release, Ok(())),
            Err(e) if e.is_lease_lost() => (End::RunOut, Err(e)),
            Err(e) => (End::Failed(e.to_string()), Err(e)),
        };
        keeping.finish(end).await;
        result
    }

    /// The unit's work: `Some` once it is finished (its row done), `None` when stopped.
    async fn work(&self, held: Held) -> Result<Option<Done>> {
        let ready = self.kit.ready(&self.store, &held.stop).await?;
        match Unit::of(&self.lease.key) {
            Some(Unit::Shard { table, shard }) => self.read_shard(&ready, table, shard, held).await,
            Some(Unit::Segment { table, segment }) => {
                copy_segment(&ready, &self.kit, table, self.number(segment)?, held).await
            }
            Some(Unit::File { table, file }) => {
                super::file::load_file(&ready, &self.kit, table, self.number(file)? as usize, held).await
            }
            _ => Err(Error::fatal(format!("{} is no unit's lease", self.lease.key))),
        }
    }

    /// A segment's or file's number, from the lease's key.
    fn number(&self, id: &str) -> Result<i64> {
        id.parse()
            .map_err(|_| Error::fatal(format!("lease {}: no part number", self.lease.key)))
    }

    async fn read_shard(&self, ready: &Ready, table: &str, shard: &str, held: Held) -> Result<Option<Done>> {
        let ctx = context(table, ready, &ready.stream, &held);
        let task = StreamTask {
            api: Arc::new(SdkStreams(self.kit.clients.0.streams.clone(), ready.stream.images())),
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
                born_after_ms: self.lease.unit.born_after_ms,
                first_seq: self.lease.unit.first_seq.clone(),
            },
            marks: held.marks,
        };
        run.run(ctx.applier()).await
    }
}

/// Copies one segment of the snapshot scan.
async fn copy_segment(ready: &Ready, kit: &Kit, table: &str, segment: i64, held: Held) -> Result<Option<Done>> {
    if ready.segments == 0 {
        return Err(Error::fatal(format!(
            "table {table} has a segment lease but no snapshot"
        )));
    }
    let ctx = context(table, ready, &ready.scan, &held);
    let task = ScanTask {
        source: Arc::new(SdkScan {
            client: kit.clients.0.dynamodb.clone(),
            table: table.to_string(),
        }),
        ctx: ctx.clone(),
        segments: ready.segments,
        read_limiter: ready.scan_reads.clone(),
        read_budget: ready.read_budget.clone(),
        table_bytes: ready.source.table_size_bytes.unwrap_or(0).max(0) as u64,
        table_items: ready.source.item_count.unwrap_or(0).max(0) as u64,
        only: Some(segment),
        leasing: None,
    };
    let loaded = task.run(ctx.applier()).await?;
    part_done(&ctx, loaded, segment).await
}

/// A bulk-load part (a segment, a file) that ran: `Some` with its item count when it is loaded
/// (its row done), `None` when it stopped first.
pub(super) async fn part_done(ctx: &TableContext, loaded: bool, part: i64) -> Result<Option<Done>> {
    if !loaded {
        return Ok(None);
    }
    let rows = ctx.store.segments(&ctx.table).await?;
    let row = rows.into_iter().find(|r| r.segment == part);
    Ok(Some(Done {
        records: row.map_or(0, |r| r.items),
        ..Done::default()
    }))
}

/// A unit's table context: its state fenced by its lease, its writes held to its window.
pub(super) fn context(
    table: &str,
    ready: &Ready,
    apply: &super::super::table::ApplyParts,
    held: &Held,
) -> TableContext {
    let store: Arc<dyn StateStore> = held.store.clone();
    let (apply, window, stop) = (apply.clone(), held.window.clone(), held.stop.clone());
    let key_names = apply.key_names();
    TableContext::new(
        table.into(),
        key_names,
        store,
        ready.stats.clone(),
        held.stop.clone(),
        move || apply.open(Some(&window), &stop),
    )
}

/// The latest listing of every lease, from the worker's last round.
pub(super) type Latest = watch::Receiver<Arc<Vec<Lease>>>;

/// Which units of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Shards,
    Segments,
    Files,
}

/// One table's units of one kind, as its coordinator sees them.
pub(super) struct TableUnits {
    pub table: String,
    pub kind: Kind,
    pub leases: Arc<Leases>,
    pub latest: Latest,
}

impl TableUnits {
    fn key(&self, id: &str) -> String {
        match self.kind {
            Kind::Shards => shard_key(&self.table, id),
            Kind::Segments => segment_key(&self.table, id),
            Kind::Files => file_key(&self.table, id),
        }
    }
}

impl Offers for TableUnits {
    fn offer<'a>(
        &'a self,
        id: &'a str,
        born_after_ms: Option<i64>,
        first_seq: Option<&'a str>,
    ) -> BoxFuture<'a, Result<()>> {
        let key = self.key(id);
        Box::pin(async move { self.leases.offer(&key, born_after_ms, first_seq).await })
    }

    fn reports(&self) -> HashMap<String, UnitLease> {
        let latest = self.latest.borrow();
        let mine = |l: &Lease| match (Unit::of(&l.key)?, self.kind) {
            (Unit::Shard { table, shard: id }, Kind::Shards)
            | (Unit::Segment { table, segment: id }, Kind::Segments)
            | (Unit::File { table, file: id }, Kind::Files)
                if table == self.table =>
            {
                Some((id.to_string(), l.unit.clone()))
            }
            _ => None,
        };
        latest.iter().filter_map(mine).collect()
    }

    fn remove_done<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        let key = self.key(id);
        Box::pin(async move { self.leases.remove_done(&key).await })
    }
}
