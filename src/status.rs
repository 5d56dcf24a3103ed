//! `ferry status`: what the state store says, readable while the daemon runs.

use serde::Serialize;

use crate::checkpoint::lease::{Unit, table_key};
use crate::checkpoint::{Direction, StateStore};
use crate::clock::{fmt_ms, now_ms};
use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct TableStatus {
    pub table: String,
    pub destination: String,
    pub phase: String,
    pub error: Option<String>,
    pub daemon_running: bool,
    pub capture_time: Option<String>,
    pub snapshot: Snapshot,
    pub shards_open: usize,
    pub shards_done: usize,
    pub records_applied: i64,
    /// How far the destination is behind; 0 when caught up (see [`crate::telemetry::lag_ms`]).
    pub lag_seconds: Option<f64>,
    pub caught_up: bool,
    /// Every change written to the source before this time is at the destination.
    pub applied_as_of: Option<String>,
    /// The SQS change buffer, for `change_source = "sqs"`.
    pub queue: Option<QueueStatus>,
    /// Calls are failing and being retried (an outage, a 5xx storm): the table waits, it has not
    /// stopped.
    pub retrying: bool,
    /// How long the table has been failing, while it is.
    pub retrying_seconds: Option<f64>,
    /// The error of the last failed attempt, while retrying.
    pub last_error: Option<String>,
    /// Which way the pair replicates: "forward" (source → destination) or "reverse" (after
    /// `ferry cutover --switch`).
    pub direction: Direction,
    /// Every switch of direction, oldest first.
    pub switches: Vec<SwitchStatus>,
    /// The worker holding the table's lease, with several workers.
    pub worker: Option<String>,
    /// With several workers: the worker reading each open shard, by shard.
    pub shard_workers: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SwitchStatus {
    /// The direction entered.
    pub direction: Direction,
    pub at: String,
    pub at_ms: i64,
}

/// One worker of a migration shared by several.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    pub worker: String,
    /// Since its last heartbeat, by its wall clock and this host's (for people, not decisions).
    pub heartbeat_age_seconds: f64,
    /// The tables whose lease it holds (it runs their lifecycle).
    pub tables: Vec<String>,
    /// The stream shards it reads, as `table/shard`.
    pub shards: Vec<String>,
    /// The snapshot segments it copies, as `table/segment`, and the export files it loads, as
    /// `table/file N`.
    pub segments: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    pub url: String,
    /// Messages waiting (ApproximateNumberOfMessages).
    pub depth: Option<i64>,
    /// Messages received and not yet deleted (ApproximateNumberOfMessagesNotVisible).
    pub in_flight: Option<i64>,
    /// Records dropped as older than the replay point.
    pub dropped: i64,
    /// The dead-letter queue watched with `queue_allow_dead_letter`.
    pub dead_letter_url: Option<String>,
    /// Messages in it: any stops the table.
    pub dead_letter_depth: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub segments_done: usize,
    pub segments_total: usize,
    pub items_copied: i64,
    /// Items in the export being loaded (`snapshot = "export"`), from its manifest.
    pub items_total: Option<i64>,
    pub done: bool,
}

pub async fn table_status(store: &dyn StateStore, name: &str) -> Result<Option<TableStatus>> {
    let Some(t) = store.table(name).await? else {
        return Ok(None);
    };
    let segs = store.segments(name).await?;
    let shards = store.shards(name).await?;
    let now = now_ms();
    let running = store.daemon_running().await?;
    // Only a live daemon's report counts: a killed one left its last word behind.
    let health = store.health(name).await?.filter(|_| running);
    let lag = if t.phase.as_str() != "streaming" {
        None
    } else {
        crate::telemetry::lag_ms(now, t.caught_up, t.newest_applied_ms, t.applied_as_of_ms).map(|ms| ms as f64 / 1000.0)
    };
    Ok(Some(TableStatus {
        table: t.name,
        destination: t.destination,
        phase: t.phase.as_str().to_string(),
        error: t.error,
        daemon_running: running,
        capture_time: t.capture_ms.map(fmt_ms),
        snapshot: Snapshot {
            segments_done: segs.iter().filter(|s| s.done).count(),
            segments_total: t.snapshot_segments.max(0) as usize,
            items_copied: segs.iter().map(|s| s.items).sum(),
            items_total: store.export(name).await?.and_then(|e| e.items_total),
            done: t.snapshot_done,
        },
        shards_open: shards.iter().filter(|s| !s.done).count(),
        shards_done: shards.iter().filter(|s| s.done).count(),
        records_applied: t.records_applied,
        lag_seconds: lag,
        caught_up: t.caught_up,
        applied_as_of: t.applied_as_of_ms.map(fmt_ms),
        queue: store.queue(name).await?.map(|q| QueueStatus {
            url: q.queue_url,
            depth: q.depth,
            in_flight: q.in_flight,
            dropped: q.dropped,
            dead_letter_url: q.dead_letter_url,
            dead_letter_depth: q.dead_letter_depth,
        }),
        retrying: health.is_some(),
        retrying_seconds: health.as_ref().map(|h| h.for_ms as f64 / 1000.0),
        last_error: health.map(|h| h.last_error),
        direction: t.direction,
        switches: t
            .switches
            .iter()
            .map(|p| SwitchStatus {
                direction: p.direction,
                at: p.at(),
                at_ms: p.at_ms,
            })
            .collect(),
        worker: None,
        shard_workers: Default::default(),
    }))
}

/// A table's status on one line (the progress bars' text), or `None` if the store has no such table.
pub async fn line(store: &dyn StateStore, name: &str) -> Result<Option<String>> {
    Ok(table_status(store, name).await?.map(|s| s.one_line()))
}

pub async fn all(store: &dyn StateStore) -> Result<Vec<TableStatus>> {
    let crew = store.workers().await?.unwrap_or_default();
    let mut out = Vec::new();
    for t in store.tables().await? {
        if let Some(mut s) = table_status(store, &t.name).await? {
            let key = table_key(&t.name);
            s.worker = crew.leases.iter().find(|l| l.key == key).and_then(|l| l.owner.clone());
            for l in &crew.leases {
                if let (Some(Unit::Shard { table, shard }), Some(owner)) = (Unit::of(&l.key), &l.owner)
                    && table == t.name
                {
                    s.shard_workers.insert(shard.to_string(), owner.clone());
                }
            }
            out.push(s);
        }
    }
    Ok(out)
}

/// The workers sharing the migration (none with the embedded store), with the tables each holds.
pub async fn workers(store: &dyn StateStore) -> Result<Vec<WorkerStatus>> {
    let crew = store.workers().await?.unwrap_or_default();
    let now = now_ms();
    Ok(crew
        .workers
        .into_iter()
        .map(|w| {
            let held = crew
                .leases
                .iter()
                .filter(|l| l.owner.as_deref() == Some(w.worker.as_str()))
                .filter_map(|l| Unit::of(&l.key));
            let (mut tables, mut shards, mut segments) = (Vec::new(), Vec::new(), Vec::new());
            for unit in held {
                match unit {
                    Unit::Table(t) => tables.push(t.to_string()),
                    Unit::Shard { table, shard } => shards.push(format!("{table}/{shard}")),
                    Unit::Segment { table, segment } => segments.push(format!("{table}/{segment}")),
                    Unit::File { table, file } => segments.push(format!("{table}/file {file}")),
                }
            }
            WorkerStatus {
                heartbeat_age_seconds: (now - w.seen_ms).max(0) as f64 / 1000.0,
                tables,
                shards,
                segments,
                worker: w.worker,
            }
        })
        .collect())
}

impl TableStatus {
    pub fn one_line(&self) -> String {
        let snap = if self.snapshot.done {
            format!("snapshot done ({} items)", self.snapshot.items_copied)
        } else {
            let total = self.snapshot.items_total.map(|t| format!("/{t}")).unwrap_or_default();
            format!(
                "snapshot {}/{} segments, {}{total} items",
                self.snapshot.segments_done, self.snapshot.segments_total, self.snapshot.items_copied
            )
        };
        let lag = self.lag_seconds.map_or("-".to_string(), |l| format!("{l:.1}s"));
        let mut s = format!(
            "{} | {snap} | shards {} open, {} done | {} records applied | lag {lag}{}",
            self.phase,
            self.shards_open,
            self.shards_done,
            self.records_applied,
            if self.caught_up { " (caught up)" } else { "" }
        );
        if let Some(q) = &self.queue {
            let n = |v: Option<i64>| v.map_or("?".to_string(), |v| v.to_string());
            s.push_str(&format!(
                " | queue {} waiting, {} in flight, {} dropped before the replay point",
                n(q.depth),
                n(q.in_flight),
                q.dropped
            ));
            if let Some(url) = &q.dead_letter_url {
                s.push_str(&format!(
                    " | dead-letter queue {url}: {} messages",
                    n(q.dead_letter_depth)
                ));
            }
        }
        if self.retrying {
            s.push_str(&format!(
                " | retrying for {:.0}s: {}",
                self.retrying_seconds.unwrap_or(0.0),
                self.last_error.as_deref().unwrap_or("")
            ));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(" | error: {e}"));
        }
        s
    }
}

pub fn render(list: &[TableStatus], workers: &[WorkerStatus]) -> String {
    if list.is_empty() {
        return "no tables in the state store yet (has `ferry sync` run?)\n".into();
    }
    let running = list.iter().any(|t| t.daemon_running);
    let mut out = format!("daemon: {}\n", if running { "running" } else { "not running" });
    for w in workers {
        out.push_str(&format!(
            "worker {}: {} table(s), {} load part(s), {} shard(s), last heartbeat {:.1} s ago\n",
            w.worker,
            w.tables.len(),
            w.segments.len(),
            w.shards.len(),
            w.heartbeat_age_seconds
        ));
    }
    for t in list {
        let by = t.worker.as_ref().map(|w| format!(" [{w}]")).unwrap_or_default();
        let arrow = match t.direction {
            Direction::Forward => format!("{} -> {}", t.table, t.destination),
            Direction::Reverse => format!("{} <- {} (direction: reverse)", t.table, t.destination),
        };
        out.push_str(&format!("{arrow}{by}: {}\n", t.one_line()));
        for p in &t.switches {
            out.push_str(&format!("  switched to {} at {}\n", p.direction.as_str(), p.at));
        }
    }
    out
}
