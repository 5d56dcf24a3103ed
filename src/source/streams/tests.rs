//! The stream scheduler and consumers driven by a scripted shard tree: parents, two-child splits,
//! a parent that still looks open after its children appear, and a child listed only later.
//! Proves children wait for parents and every record is applied, in order per key.

mod faults;
mod gather;
mod leased;
mod long_runs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue as Av;
use tokio_util::sync::CancellationToken;

use super::api::{Listing, Page, ShardInfo, StartAt, StreamApi};
use super::wire::{Event, RawRecord};
use super::{Clock, StreamTask};
use crate::apply::{Applier, ApplyIo, Limiter, WriteOp};
use crate::checkpoint::Store;
use crate::discover::View;
use crate::error::Result;
use crate::item::Item;
use crate::source::TableContext;
use crate::telemetry::TableStats;

/// What the destination received, in order.
#[derive(Default)]
struct Dest {
    /// Per key, every value written (for order), and the current item (None = deleted).
    history: HashMap<String, Vec<i64>>,
    current: HashMap<String, Option<i64>>,
}

#[derive(Clone, Default)]
struct RecordingIo(Arc<Mutex<Dest>>);

fn key_str(i: &Item) -> String {
    match i.get("pk") {
        Some(aws_sdk_dynamodb::types::AttributeValue::S(s)) => s.clone(),
        _ => panic!("no pk"),
    }
}

impl ApplyIo for RecordingIo {
    async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
        let ops: Vec<WriteOp> = ops.iter().map(WriteOp::to_map).collect();
        let mut d = self.0.lock().unwrap();
        let mut keys = std::collections::HashSet::new();
        for op in ops {
            let (k, v) = match &op {
                WriteOp::PutRaw(_) => unreachable!("read into a map by to_map"),
                WriteOp::Put(i) => (
                    key_str(i),
                    match i.get("v") {
                        Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => Some(n.parse::<i64>().unwrap()),
                        _ => panic!("no v"),
                    },
                ),
                WriteOp::Delete(k) => (key_str(k), None),
            };
            assert!(keys.insert(k.clone()), "a batch held key {k} twice");
            if let Some(v) = v {
                d.history.entry(k.clone()).or_default().push(v);
            }
            d.current.insert(k, v);
        }
        Ok(vec![])
    }
    crate::apply::test_support::write_only!();
}

struct ScriptShard {
    id: String,
    parent: Option<String>,
    records: Vec<(String, Option<i64>, u64)>, // key, value (None = REMOVE), seq
    /// Polls that return an empty page with a next iterator before the shard reveals its end.
    looks_open_for: u32,
    /// Listing calls before this shard appears.
    listed_after: u32,
    /// Records with a lower sequence number are trimmed (0: none).
    trimmed_before: u64,
}

struct Scripted {
    shards: Vec<ScriptShard>,
    listings: Mutex<u32>,
    /// Listing calls after which the stream reports DISABLED.
    disabled_after: Option<u32>,
    polls: Mutex<HashMap<String, u32>>,
    dest: RecordingIo,
    /// Stamps records (ApproximateCreationDateTime) when they are read.
    clock: Clock,
    /// Every this many GetRecords calls, the iterator has expired (0: never).
    expire_every: u32,
    /// GetRecords calls so far, and those still to throttle.
    record_calls: Mutex<u32>,
    throttle_records: Mutex<u32>,
}

impl Scripted {
    fn new(shards: Vec<ScriptShard>, dest: RecordingIo) -> Self {
        Scripted {
            shards,
            listings: Mutex::new(0),
            disabled_after: None,
            polls: Mutex::new(HashMap::new()),
            dest,
            clock: Clock::default(),
            expire_every: 0,
            record_calls: Mutex::new(0),
            throttle_records: Mutex::new(0),
        }
    }

    fn record(&self, key: &str, v: Option<i64>, seq: u64) -> RawRecord {
        let keys = Item::from([("pk".to_string(), Av::S(key.to_string()))]);
        let new_image = v.map(|v| {
            let mut img = keys.clone();
            img.insert("v".into(), Av::N(v.to_string()));
            img
        });
        RawRecord {
            event: if v.is_some() { Event::Modify } else { Event::Remove },
            seq: format!("{seq:021}"),
            time_ms: self.clock.now_ms(),
            keys: crate::item::RawKeys::of(&keys),
            // As GetRecords gives it: the image's JSON.
            new_image: new_image.map(|i| crate::item::Image::Raw(crate::item::RawItem::of(&i))),
        }
    }
}

impl StreamApi for Scripted {
    async fn list_shards(&self, _: &str) -> Result<Listing> {
        let mut n = self.listings.lock().unwrap();
        *n += 1;
        let shards = self
            .shards
            .iter()
            .filter(|s| s.listed_after < *n)
            .map(|s| ShardInfo {
                id: s.id.clone(),
                parent: s.parent.clone(),
                first_seq: None,
            })
            .collect();
        Ok(Listing {
            shards,
            disabled: self.disabled_after.is_some_and(|d| *n > d),
        })
    }

    async fn iterator(&self, _: &str, shard: &str, at: &StartAt) -> Result<String> {
        let s = self.shards.iter().find(|s| s.id == shard).unwrap();
        // The lineage rule itself: a child is opened only when its parent's records are all
        // durably applied at the destination.
        if let Some(parent) = s.parent.as_ref().and_then(|p| self.shards.iter().find(|x| &x.id == p)) {
            let p = &parent.id;
            let d = self.dest.0.lock().unwrap();
            for (k, v, _) in &parent.records {
                if let Some(v) = v {
                    let applied = d.history.get(k).is_some_and(|h| h.iter().any(|x| x >= v));
                    assert!(
                        applied,
                        "child {shard} opened before parent {p}'s record {k}={v} was applied"
                    );
                }
            }
        }
        if let StartAt::After(seq) = at
            && seq.parse::<u64>().unwrap() < s.trimmed_before
        {
            return Err(long_runs::trimmed());
        }
        let idx = match at {
            StartAt::TrimHorizon => 0,
            StartAt::After(seq) => s.records.iter().position(|r| format!("{:021}", r.2) == *seq).unwrap() + 1,
        };
        Ok(format!("{shard}|{idx}"))
    }

    async fn records(&self, iterator: &str) -> Result<Page> {
        faults::inject(self)?;
        let (shard, idx) = iterator.split_once('|').unwrap();
        let idx: usize = idx.parse().unwrap();
        let s = self.shards.iter().find(|s| s.id == shard).unwrap();
        let end = (idx + 3).min(s.records.len());
        let records: Vec<RawRecord> = s.records[idx..end]
            .iter()
            .map(|(k, v, seq)| self.record(k, *v, *seq))
            .collect();
        if end == s.records.len() {
            let mut polls = self.polls.lock().unwrap();
            let p = polls.entry(shard.to_string()).or_default();
            *p += 1;
            if *p <= s.looks_open_for {
                return Ok(Page {
                    records,
                    next: Some(format!("{shard}|{end}")),
                });
            }
            return Ok(Page { records, next: None });
        }
        Ok(Page {
            records,
            next: Some(format!("{shard}|{end}")),
        })
    }
}

/// root → (a, b); a → (a1, a2); b → b1 listed late. Keys move from parent to children.
fn tree(dest: RecordingIo) -> (Scripted, HashMap<String, Option<i64>>) {
    let mut seq = 0u64;
    let mut version: HashMap<String, i64> = HashMap::new();
    let mut last: HashMap<String, Option<i64>> = HashMap::new();
    let mut recs = |keys: &[&str], n: usize, seq: &mut u64| {
        let mut out = Vec::new();
        for i in 0..n {
            let k = keys[i % keys.len()].to_string();
            *seq += 1;
            let v = version.entry(k.clone()).or_default();
            *v += 1;
            let val = if *v % 7 == 0 { None } else { Some(*v) };
            last.insert(k.clone(), val);
            out.push((k, val, *seq));
        }
        out
    };
    let all = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];
    let root = recs(&all, 40, &mut seq);
    let a = recs(&all[..4], 30, &mut seq);
    let b = recs(&all[4..], 30, &mut seq);
    let a1 = recs(&all[..2], 20, &mut seq);
    let a2 = recs(&all[2..4], 20, &mut seq);
    let b1 = recs(&all[4..], 25, &mut seq);
    let shard = |id: &str, parent: Option<&str>, records, looks_open_for, listed_after| ScriptShard {
        id: id.into(),
        parent: parent.map(str::to_string),
        records,
        looks_open_for,
        listed_after,
        trimmed_before: 0,
    };
    let s = Scripted::new(
        vec![
            shard("root", None, root, 6, 0),
            shard("a", Some("root"), a, 2, 0),
            shard("b", Some("root"), b, 0, 0),
            shard("a1", Some("a"), a1, 0, 0),
            shard("a2", Some("a"), a2, u32::MAX, 0), // still open at the end
            shard("b1", Some("b"), b1, u32::MAX, 3),
        ],
        dest,
    );
    (s, last)
}

/// A stream task over a scripted stream for table "T" keyed by `pk`.
fn task(
    script: Scripted,
    arn: &str,
    replay_from_ms: i64,
    store: Arc<Store>,
    stats: Arc<TableStats>,
    stop: CancellationToken,
) -> StreamTask<Scripted> {
    StreamTask {
        api: Arc::new(script),
        ctx: TableContext::for_test("T", &["pk"], store, stats, stop),
        stream_arn: arn.into(),
        view: View::NewImage,
        replay_from_ms,
        list_every: Duration::from_millis(20),
        clock: Clock::default(),
        leasing: None,
    }
}

/// Runs the stream task over `script` (the tree of [`tree`], replayed from an hour ago) into `io`.
fn spawn_tree(
    script: Scripted,
    io: &RecordingIo,
    store: &Arc<Store>,
    stats: &Arc<TableStats>,
    stop: &CancellationToken,
) -> (tokio::task::JoinHandle<Result<()>>, Arc<Scripted>) {
    let replay_from = crate::clock::now_ms() - 3_600_000;
    let task = task(script, "arn", replay_from, store.clone(), stats.clone(), stop.clone());
    let api = task.api.clone();
    let applier = Applier::start(Arc::new(io.clone()), 4, Arc::new(Limiter::new(0)), stats.clone());
    (tokio::spawn(task.run(applier)), api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_wait_for_parents_and_every_record_lands_in_order_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
    let io = RecordingIo::default();
    let (script, expected) = tree(io.clone());
    let (stats, stop) = (Arc::new(TableStats::default()), CancellationToken::new());
    let (run, _) = spawn_tree(script, &io, &store, &stats, &stop);
    // Wait on state: every closed shard done, the open ones drained.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let done: Vec<String> = store
            .shards("T")
            .unwrap()
            .into_iter()
            .filter(|s| s.done)
            .map(|s| s.shard_id)
            .collect();
        let current = io.0.lock().unwrap().current.clone();
        if done.len() == 4 && current == expected {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not converged: done {done:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    run.await.unwrap().unwrap();

    let d = io.0.lock().unwrap();
    for (k, h) in &d.history {
        assert!(
            h.windows(2).all(|w| w[0] < w[1]),
            "key {k} saw values out of order or twice: {h:?}"
        );
    }
    let shards = store.shards("T").unwrap();
    let mut done: Vec<&str> = shards.iter().filter(|s| s.done).map(|s| s.shard_id.as_str()).collect();
    done.sort();
    assert_eq!(done, vec!["a", "a1", "b", "root"]);
    let total: i64 = shards.iter().map(|s| s.records).sum();
    assert_eq!(
        total,
        40 + 30 + 30 + 20 + 20 + 25,
        "every record acknowledged exactly once"
    );
    let b1 = shards.iter().find(|s| s.shard_id == "b1").unwrap();
    assert_eq!(
        b1.position.as_deref(),
        Some(format!("{:021}", 165).as_str()),
        "checkpoint at the last record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_disabled_under_ferry_stops_the_table_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
    let io = RecordingIo::default();
    let (mut script, _) = tree(io.clone());
    script.disabled_after = Some(3);
    let stats = Arc::new(TableStats::default());
    let task = task(
        script,
        "arn:stream",
        crate::clock::now_ms() - 3_600_000,
        store,
        stats.clone(),
        CancellationToken::new(),
    );
    let applier = Applier::start(Arc::new(io), 2, Arc::new(Limiter::new(0)), stats);
    let err = tokio::time::timeout(Duration::from_secs(10), task.run(applier))
        .await
        .expect("stops by itself")
        .unwrap_err();
    assert!(err.is_fatal());
    assert!(err.to_string().contains("stream arn:stream was disabled"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_read_shard_that_may_have_lost_records_is_a_gap_not_a_silent_skip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
    let io = RecordingIo::default();
    let (script, _) = tree(io.clone());
    let stats = Arc::new(TableStats::default());
    let task = task(
        script,
        "arn:stream",
        crate::clock::now_ms() - 25 * 3_600_000,
        store,
        stats.clone(),
        CancellationToken::new(),
    );
    let applier = Applier::start(Arc::new(io.clone()), 2, Arc::new(Limiter::new(0)), stats);
    let err = tokio::time::timeout(Duration::from_secs(10), task.run(applier))
        .await
        .expect("stops by itself")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("possible gap in stream arn:stream: shard root"),
        "{err}"
    );
    assert!(
        io.0.lock().unwrap().current.is_empty(),
        "nothing applied from a possibly trimmed stream"
    );
}
