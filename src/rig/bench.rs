//! Building blocks of the end-to-end benchmark (`benches/e2e.rs`): the endpoint's raw write
//! ceiling, a stream of changes written per key in order, a naive one-record-at-a-time replayer,
//! `/metrics` and `/proc` readers for a `ferry` child, and a replication-lag probe. (The chart is
//! drawn in the bench itself: plotters is a dev-dependency.)
//!
//! Timings live here and in the bench only, never in tests.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as Av, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
    KeysAndAttributes, PutRequest, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus, WriteRequest,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::data::{HASH, RANGE, key_of, send_batch, sized_item};
use super::{Account, DynamoLocal};
use crate::item::Item;
use crate::item::convert::from_stream_item;

/// The table every phase uses (each phase in its own account).
pub const TABLE: &str = "Bench";
/// Approximate item size.
pub const ITEM_BYTES: usize = 1000;

// ---------------------------------------------------------------------------------------------
// Tables, items and changes

/// Creates `TABLE` with only the rig's key (pk S, sk N), on demand, with a stream of `view` (or
/// none), and waits until it is active. No indexes: the bench measures the raw write path.
pub async fn create_plain_table(c: &Client, view: Option<StreamViewType>) -> Result<(), String> {
    let attr = |n: &str, t| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(t)
            .build()
            .expect("complete")
    };
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .expect("complete")
    };
    let stream = view.map(|v| {
        StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(v)
            .build()
            .expect("complete")
    });
    c.create_table()
        .table_name(TABLE)
        .attribute_definitions(attr(HASH, ScalarAttributeType::S))
        .attribute_definitions(attr(RANGE, ScalarAttributeType::N))
        .key_schema(key(HASH, KeyType::Hash))
        .key_schema(key(RANGE, KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .set_stream_specification(stream)
        .send()
        .await
        .map_err(|e| format!("CreateTable {TABLE}: {e:?}"))?;
    wait_active(c).await
}

async fn wait_active(c: &Client) -> Result<(), String> {
    loop {
        let t = c
            .describe_table()
            .table_name(TABLE)
            .send()
            .await
            .map_err(|e| format!("DescribeTable {TABLE}: {e:?}"))?
            .table;
        if t.and_then(|t| t.table_status).is_some_and(|s| s == TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A ~1 KB item carrying a `version`.
pub fn item(pk: &str, sk: i64, version: u64) -> Item {
    let mut it = sized_item(pk, sk, ITEM_BYTES);
    it.insert("version".into(), Av::N(version.to_string()));
    it
}

/// One write of the source workload.
#[derive(Debug, Clone)]
pub enum Change {
    Put(Item),
    Delete(Item),
}

impl Change {
    fn pk(&self) -> &str {
        let (Change::Put(i) | Change::Delete(i)) = self;
        match i.get(HASH) {
            Some(Av::S(s)) => s,
            _ => "",
        }
    }

    fn request(&self) -> WriteRequest {
        match self {
            Change::Put(i) => WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(i.clone())).build().expect("item"))
                .build(),
            Change::Delete(k) => WriteRequest::builder()
                .delete_request(DeleteRequest::builder().set_key(Some(k.clone())).build().expect("key"))
                .build(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// ~N distinct keys: ~90% puts of new keys, ~10% deletes of live earlier keys.
    Uniform,
    /// Half the changes on 100 hot keys, half as in `Uniform`.
    Hot,
}

/// Live keys of one part of a mix, so every delete removes an existing item (and so every change
/// yields exactly one stream record: puts always change `version`).
#[derive(Default)]
struct Keys {
    live: Vec<i64>,
    next: i64,
}

impl Keys {
    fn uniform(&mut self, seq: u64, rng: &mut StdRng) -> Change {
        if !self.live.is_empty() && rng.random_bool(0.1) {
            let id = self.live.swap_remove(rng.random_range(0..self.live.len()));
            return Change::Delete(key_of(&format!("u{id:09}"), id));
        }
        let id = self.next;
        self.next += 1;
        self.live.push(id);
        Change::Put(item(&format!("u{id:09}"), id, seq))
    }
}

const HOT_KEYS: usize = 100;

fn hot(live: &mut [bool], seq: u64, rng: &mut StdRng) -> Change {
    let h = rng.random_range(0..HOT_KEYS);
    let pk = format!("hot{h:03}");
    if live[h] && rng.random_bool(0.1) {
        live[h] = false;
        return Change::Delete(key_of(&pk, 0));
    }
    live[h] = true;
    Change::Put(item(&pk, 0, seq))
}

/// `n` changes of `mix`, each producing exactly one stream record.
pub fn changes(mix: Mix, n: usize, seed: u64) -> Vec<Change> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut keys = Keys::default();
    let mut hot_live = vec![false; HOT_KEYS];
    (0..n as u64)
        .map(|seq| {
            if mix == Mix::Hot && rng.random_bool(0.5) {
                hot(&mut hot_live, seq, &mut rng)
            } else {
                keys.uniform(seq, &mut rng)
            }
        })
        .collect()
}

fn lane_of(pk: &str, lanes: usize) -> usize {
    let mut h = std::hash::DefaultHasher::new();
    pk.hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

/// Splits `changes` into BatchWriteItem batches per writer: each key stays on one writer (in its
/// order), and a batch never holds a key twice (DynamoDB rejects that).
pub fn plan_batches(changes: &[Change], writers: usize) -> Vec<Vec<Vec<WriteRequest>>> {
    let mut lanes: Vec<Vec<Vec<WriteRequest>>> = vec![Vec::new(); writers];
    let mut open: Vec<(Vec<WriteRequest>, HashSet<&str>)> =
        (0..writers).map(|_| (Vec::new(), HashSet::new())).collect();
    for c in changes {
        let w = lane_of(c.pk(), writers);
        let (batch, seen) = &mut open[w];
        if batch.len() == 25 || seen.contains(c.pk()) {
            lanes[w].push(std::mem::take(batch));
            seen.clear();
        }
        seen.insert(c.pk());
        batch.push(c.request());
    }
    for (w, (batch, _)) in open.into_iter().enumerate() {
        if !batch.is_empty() {
            lanes[w].push(batch);
        }
    }
    lanes
}

/// Runs one writer task per lane, each sending its batches in order. Returns the wall time.
pub async fn write_lanes(c: &Client, table: &str, lanes: Vec<Vec<Vec<WriteRequest>>>) -> Result<Duration, String> {
    let start = Instant::now();
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|batches| {
            let (c, table) = (c.clone(), table.to_string());
            tokio::spawn(async move {
                for b in batches {
                    send_batch(&c, &table, b).await?;
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(start.elapsed())
}

// ---------------------------------------------------------------------------------------------
// Ceiling

/// Items/s of a BatchWriteItem load of `n` ~1 KB items, 25 a call, with `concurrency` writers
/// pulling batches from one queue, into a fresh table without a stream in a fresh account. The
/// table is deleted afterwards.
pub async fn ceiling_run(ddb: &DynamoLocal, n: usize, concurrency: usize) -> Result<f64, String> {
    let c = ddb.client(&Account::fresh("ceil"));
    create_plain_table(&c, None).await?;
    let batches: Vec<Vec<WriteRequest>> = (0..n as i64)
        .map(|i| Change::Put(item(&format!("c{i:09}"), i, 0)).request())
        .collect::<Vec<_>>()
        .chunks(25)
        .map(<[WriteRequest]>::to_vec)
        .collect();
    let batches = Arc::new(batches);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (c, batches, next) = (c.clone(), batches.clone(), next.clone());
            tokio::spawn(async move {
                while let Some(b) = batches.get(next.fetch_add(1, Relaxed)) {
                    send_batch(&c, TABLE, b.clone()).await?;
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop_table(&c).await;
    Ok(rate)
}

// ---------------------------------------------------------------------------------------------
// Naive baseline

/// The stream ARN of `table`.
pub async fn stream_arn(c: &Client, table: &str) -> Result<String, String> {
    c.describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| format!("DescribeTable {table}: {e:?}"))?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| format!("{table} has no stream"))
}

/// Every shard of the stream, parents before children.
pub async fn shards_in_lineage_order(s: &aws_sdk_dynamodbstreams::Client, arn: &str) -> Result<Vec<String>, String> {
    let mut all: Vec<(String, Option<String>)> = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let d = s
            .describe_stream()
            .stream_arn(arn)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await
            .map_err(|e| format!("DescribeStream: {e:?}"))?
            .stream_description
            .ok_or("DescribeStream: no description")?;
        for sh in d.shards.unwrap_or_default() {
            all.push((sh.shard_id.unwrap_or_default(), sh.parent_shard_id));
        }
        match d.last_evaluated_shard_id {
            Some(id) => start = Some(id),
            None => break,
        }
    }
    Ok(lineage_order(all))
}

fn lineage_order(mut pending: Vec<(String, Option<String>)>) -> Vec<String> {
    let ids: HashSet<String> = pending.iter().map(|(id, _)| id.clone()).collect();
    let mut done: Vec<String> = Vec::new();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|(id, parent)| {
            let ready = parent.as_ref().is_none_or(|p| !ids.contains(p) || done.contains(p));
            if ready {
                done.push(id.clone());
            }
            !ready
        });
        if pending.len() == before {
            done.extend(pending.drain(..).map(|(id, _)| id));
        }
    }
    done
}

/// Applies one stream record with one PutItem or DeleteItem.
async fn apply_one(dst: &Client, table: &str, r: aws_sdk_dynamodbstreams::types::Record) -> Result<(), String> {
    let rec = r.dynamodb.ok_or("record without dynamodb")?;
    match rec.new_image {
        Some(img) => {
            dst.put_item()
                .table_name(table)
                .set_item(Some(from_stream_item(img)?))
                .send()
                .await
                .map_err(|e| format!("PutItem: {e:?}"))?;
        }
        None => {
            let keys = from_stream_item(rec.keys.ok_or("record without keys")?)?;
            dst.delete_item()
                .table_name(table)
                .set_key(Some(keys))
                .send()
                .await
                .map_err(|e| format!("DeleteItem: {e:?}"))?;
        }
    }
    Ok(())
}

/// Reads one shard from TRIM_HORIZON and applies each record in order, up to `limit` records in
/// all (`done` counts across shards). Stops at the shard's end or at an empty page.
async fn naive_shard(
    s: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    shard: &str,
    dst: &Client,
    table: &str,
    limit: usize,
    done: &mut usize,
) -> Result<(), String> {
    let mut iter = s
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .map_err(|e| format!("GetShardIterator: {e:?}"))?
        .shard_iterator;
    while let Some(it) = iter.take() {
        let page = s
            .get_records()
            .shard_iterator(it)
            .limit(1000)
            .send()
            .await
            .map_err(|e| format!("GetRecords: {e:?}"))?;
        let records = page.records.unwrap_or_default();
        if records.is_empty() {
            return Ok(());
        }
        for r in records {
            if *done >= limit {
                return Ok(());
            }
            apply_one(dst, table, r).await?;
            *done += 1;
        }
        iter = page.next_shard_iterator;
    }
    Ok(())
}

/// The naive replayer: GetRecords from TRIM_HORIZON, shards in lineage order, one sequential
/// PutItem/DeleteItem per record, for the first `limit` records. Returns (records, wall time).
pub async fn naive_replay(
    s: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    dst: &Client,
    table: &str,
    limit: usize,
) -> Result<(usize, Duration), String> {
    let start = Instant::now();
    let mut done = 0;
    for shard in shards_in_lineage_order(s, arn).await? {
        if done >= limit {
            break;
        }
        naive_shard(s, arn, &shard, dst, table, limit, &mut done).await?;
    }
    Ok((done, start.elapsed()))
}

// ---------------------------------------------------------------------------------------------
// /metrics and /proc

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET `path` from `addr` (HTTP/1.1, Connection: close); the body.
pub async fn http_get(addr: &str, path: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.map_err(|e| e.to_string())?;
    Ok(out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(out))
}

/// The value of `name{table="<table>"}` in a Prometheus text body.
pub fn metric(body: &str, name: &str, table: &str) -> Option<f64> {
    let prefix = format!("{name}{{table=\"{table}\"}}");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// When ferry's applied count, as `/metrics` showed it, first moved and when it reached the target
/// (both from `start`).
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    pub first: Duration,
    pub done: Duration,
}

/// Polls ferry's `/metrics` every 50 ms until `ferry_records_applied_total` reaches `target`.
/// Fails when ferry exits or the count stops moving for `stall`.
pub async fn wait_applied(
    ferry: &mut std::process::Child,
    addr: &str,
    table: &str,
    target: u64,
    start: Instant,
    stall: Duration,
) -> Result<Applied, String> {
    let (mut last, mut moved) = (0.0, Instant::now());
    let mut first = None;
    loop {
        if let Ok(Some(status)) = ferry.try_wait() {
            return Err(format!("ferry exited ({status}) after {last} of {target} records"));
        }
        let body = http_get(addr, "/metrics").await.unwrap_or_default();
        let applied = metric(&body, "ferry_records_applied_total", table).unwrap_or(0.0);
        if applied > 0.0 && first.is_none() {
            first = Some(start.elapsed());
        }
        if applied >= target as f64 {
            let done = start.elapsed();
            let first = first.unwrap_or(done);
            return Ok(Applied { first, done });
        }
        if applied != last {
            (last, moved) = (applied, Instant::now());
        }
        if moved.elapsed() > stall {
            let read = metric(&body, "ferry_records_read_total", table).unwrap_or(0.0);
            return Err(format!(
                "ferry stalled: {applied} of {target} records applied ({read} read) for {stall:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Peak resident set (`VmHWM`) of `pid`, in KB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that fails).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) used so far by `pid`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    // After "(comm)": state is field 3, utime field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

// ---------------------------------------------------------------------------------------------
// Lag probe

/// Writes not yet seen on the destination: pk → (version, time the write returned), in order.
type Pending = Arc<Mutex<HashMap<String, VecDeque<(u64, Instant)>>>>;

/// One measured write: when it returned (since the probe started) and its replication lag.
#[derive(Debug, Clone, Copy)]
pub struct LagSample {
    pub written_at: Duration,
    pub lag: Duration,
}

#[derive(Debug, Clone)]
pub struct LagReport {
    pub samples: Vec<LagSample>,
    pub writes: usize,
    pub write_secs: f64,
}

pub struct LagProbe {
    pub src: Client,
    pub dst: Client,
    pub table: String,
    pub rate: u64,
    pub duration: Duration,
    pub keys: usize,
    pub writers: usize,
}

fn lag_pk(k: usize) -> String {
    format!("lag{k:05}")
}

impl LagProbe {
    /// Runs the paced writer and the visibility checker; every write's lag.
    pub async fn run(&self) -> Result<LagReport, String> {
        let pending: Pending = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let checker = tokio::spawn(check_visible(
            self.dst.clone(),
            self.table.clone(),
            pending.clone(),
            done.clone(),
            start,
        ));
        let writes = self.paced_writes(&pending).await;
        let write_secs = start.elapsed().as_secs_f64();
        done.store(true, Relaxed);
        let samples = checker.await.map_err(|e| e.to_string())??;
        Ok(LagReport {
            samples,
            writes: writes?,
            write_secs,
        })
    }

    /// `rate` PutItems a second for `duration`, paced on 1 ms ticks, each key on one writer.
    async fn paced_writes(&self, pending: &Pending) -> Result<usize, String> {
        let (txs, tasks): (Vec<_>, Vec<_>) = (0..self.writers)
            .map(|_| {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u64)>();
                let task = tokio::spawn(lag_writer(self.src.clone(), self.table.clone(), rx, pending.clone()));
                (tx, task)
            })
            .unzip();
        let mut versions = vec![0u64; self.keys];
        let mut rng = StdRng::seed_from_u64(11);
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let (start, mut sent) = (Instant::now(), 0usize);
        while start.elapsed() < self.duration {
            tick.tick().await;
            let due = (start.elapsed().as_secs_f64() * self.rate as f64) as usize;
            while sent < due {
                let k = rng.random_range(0..self.keys);
                versions[k] += 1;
                let _ = txs[k % self.writers].send((k, versions[k]));
                sent += 1;
            }
        }
        drop(txs);
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok(sent)
    }
}

/// Puts each (key, version) it is sent, in order; records when each put returned.
async fn lag_writer(
    c: Client,
    table: String,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(usize, u64)>,
    pending: Pending,
) -> Result<(), String> {
    while let Some((k, v)) = rx.recv().await {
        let pk = lag_pk(k);
        c.put_item()
            .table_name(&table)
            .set_item(Some(item(&pk, 0, v)))
            .send()
            .await
            .map_err(|e| format!("PutItem: {e:?}"))?;
        let now = Instant::now();
        pending.lock().unwrap().entry(pk).or_default().push_back((v, now));
    }
    Ok(())
}

/// Every ~10 ms, reads the pending keys from the destination (BatchGetItem, ≤100 keys a call,
/// concurrently) and resolves every pending write whose version (or a later one) is visible.
/// Ends once the writer is done and nothing is pending; fails if writes stay invisible 60 s.
async fn check_visible(
    dst: Client,
    table: String,
    pending: Pending,
    writer_done: Arc<AtomicBool>,
    start: Instant,
) -> Result<Vec<LagSample>, String> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_since: Option<Instant> = None;
    loop {
        tick.tick().await;
        let done = writer_done.load(Relaxed);
        let keys: Vec<String> = pending.lock().unwrap().keys().cloned().collect();
        if keys.is_empty() && done {
            return Ok(samples);
        }
        if done && idle_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(60) {
            return Err(format!("{} keys never became visible on the destination", keys.len()));
        }
        let reads = keys.chunks(100).map(|chunk| visible_versions(&dst, &table, chunk));
        for seen in futures::future::join_all(reads).await {
            resolve(&pending, seen?, start, &mut samples);
        }
    }
}

/// (pk, version) of each key of `pks` present on the destination, and when the answer came.
async fn visible_versions(dst: &Client, table: &str, pks: &[String]) -> Result<(Vec<(String, u64)>, Instant), String> {
    let ka = KeysAndAttributes::builder()
        .set_keys(Some(pks.iter().map(|pk| key_of(pk, 0)).collect()))
        .projection_expression("pk, version")
        .consistent_read(true)
        .build()
        .map_err(|e| e.to_string())?;
    let out = dst
        .batch_get_item()
        .request_items(table, ka)
        .send()
        .await
        .map_err(|e| format!("BatchGetItem: {e:?}"))?;
    let now = Instant::now();
    let items = out.responses.and_then(|mut r| r.remove(table)).unwrap_or_default();
    let seen = items
        .into_iter()
        .filter_map(|i| match (i.get("pk"), i.get("version")) {
            (Some(Av::S(pk)), Some(Av::N(v))) => Some((pk.clone(), v.parse().ok()?)),
            _ => None,
        })
        .collect();
    Ok((seen, now))
}

fn resolve(pending: &Pending, (seen, at): (Vec<(String, u64)>, Instant), start: Instant, samples: &mut Vec<LagSample>) {
    let mut p = pending.lock().unwrap();
    for (pk, version) in seen {
        let Some(q) = p.get_mut(&pk) else { continue };
        while q.front().is_some_and(|(v, _)| *v <= version) {
            let (_, written) = q.pop_front().expect("front");
            samples.push(LagSample {
                written_at: written.duration_since(start),
                lag: at.saturating_duration_since(written),
            });
        }
        if q.is_empty() {
            p.remove(&pk);
        }
    }
}

/// The `q`-quantile (0..=1) of sorted milliseconds.
pub fn quantile(sorted_ms: &[f64], q: f64) -> f64 {
    if sorted_ms.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_ms.len() - 1) as f64 * q).round() as usize;
    sorted_ms[i]
}

/// Lags in ms, sorted.
pub fn sorted_lags_ms(samples: &[LagSample]) -> Vec<f64> {
    let mut v: Vec<f64> = samples.iter().map(|s| s.lag.as_secs_f64() * 1000.0).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Per second of the run (by write time): (second, p50 ms, p99 ms).
pub fn lag_per_second(samples: &[LagSample]) -> Vec<(u64, f64, f64)> {
    let mut by_sec: std::collections::BTreeMap<u64, Vec<LagSample>> = Default::default();
    for s in samples {
        by_sec.entry(s.written_at.as_secs()).or_default().push(*s);
    }
    by_sec
        .into_iter()
        .map(|(sec, v)| {
            let ms = sorted_lags_ms(&v);
            (sec, quantile(&ms, 0.5), quantile(&ms, 0.99))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Key-by-key comparison

/// The keys `changes` touch, once each.
pub fn keys_touched(changes: &[Change]) -> Vec<Item> {
    let mut seen = HashSet::new();
    changes
        .iter()
        .filter(|c| seen.insert(c.pk().to_string()))
        .map(|c| {
            let (Change::Put(i) | Change::Delete(i)) = c;
            crate::item::key_of(&[HASH.into(), RANGE.into()], i)
        })
        .collect()
}

/// Consistent BatchGetItem of `keys` (≤100), retrying unprocessed keys: canonical key → canonical
/// item.
async fn get_many(c: &Client, keys: Vec<Item>) -> Result<HashMap<String, serde_json::Value>, String> {
    use crate::item::{canonical::canonical, json::item_to_json};
    let mut out = HashMap::new();
    let mut todo = keys;
    while !todo.is_empty() {
        let ka = KeysAndAttributes::builder()
            .set_keys(Some(std::mem::take(&mut todo)))
            .consistent_read(true)
            .build()
            .map_err(|e| e.to_string())?;
        let resp = c
            .batch_get_item()
            .request_items(TABLE, ka)
            .send()
            .await
            .map_err(|e| format!("BatchGetItem: {e:?}"))?;
        for item in resp.responses.and_then(|mut r| r.remove(TABLE)).into_iter().flatten() {
            let key = crate::item::key_of(&[HASH.into(), RANGE.into()], &item);
            out.insert(item_to_json(&key).to_string(), canonical(&item));
        }
        todo = resp
            .unprocessed_keys
            .and_then(|mut m| m.remove(TABLE))
            .map(|ka| ka.keys)
            .unwrap_or_default();
    }
    Ok(out)
}

/// Deletes `TABLE` (frees DynamoDB Local's memory for the next phase); errors ignored.
pub async fn drop_table(c: &Client) {
    let _ = c.delete_table().table_name(TABLE).send().await;
}

/// `ItemCount` of `TABLE` (DynamoDB Local keeps it current).
pub async fn item_count(c: &Client) -> Result<i64, String> {
    c.describe_table()
        .table_name(TABLE)
        .send()
        .await
        .map_err(|e| format!("DescribeTable: {e:?}"))?
        .table
        .and_then(|t| t.item_count)
        .ok_or_else(|| "DescribeTable: no ItemCount".to_string())
}

/// Source and destination compared item by item over every key the workload touched (100 keys a
/// BatchGetItem, consistent reads), plus both tables' `ItemCount` so that items outside those keys
/// count too. DynamoDB Local's Scan slows down with table size (a 160k-item table takes minutes),
/// so this is the comparison for large tables.
pub async fn compare_by_keys(src: &Client, dst: &Client, keys: &[Item]) -> Result<super::compare::Diff, String> {
    use futures::StreamExt;
    let chunks = futures::stream::iter(keys.chunks(100).map(|chunk| async move {
        let (a, b) = tokio::join!(get_many(src, chunk.to_vec()), get_many(dst, chunk.to_vec()));
        Ok::<_, String>((a?, b?))
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
    let mut d = super::compare::Diff::default();
    for r in chunks {
        let (a, b) = r?;
        d.source_items += a.len();
        d.destination_items += b.len();
        for (k, v) in &a {
            match b.get(k) {
                None => d.missing.push(k.clone()),
                Some(w) if w != v => d.differing.push(k.clone()),
                _ => {}
            }
        }
        d.extra.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    }
    count_outside(src, dst, &mut d).await?;
    Ok(d)
}

/// Items beyond the compared keys: on the source they mean the key list is wrong; on the
/// destination they are extra items.
async fn count_outside(src: &Client, dst: &Client, d: &mut super::compare::Diff) -> Result<(), String> {
    let (s, t) = (item_count(src).await?, item_count(dst).await?);
    if s != d.source_items as i64 {
        return Err(format!(
            "source ItemCount {s} but {} items under the written keys: the key list is incomplete",
            d.source_items
        ));
    }
    let outside = t - d.destination_items as i64;
    if outside != 0 {
        d.extra.push(format!(
            "{outside} items outside the written keys (destination ItemCount {t})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_reads_one_table_s_counter() {
        let body = "# TYPE ferry_records_applied_total counter\n\
                    ferry_records_applied_total{table=\"Other\"} 5\n\
                    ferry_records_applied_total{table=\"Bench\"} 1234\n";
        assert_eq!(metric(body, "ferry_records_applied_total", "Bench"), Some(1234.0));
        assert_eq!(metric(body, "ferry_records_read_total", "Bench"), None);
    }

    #[test]
    fn shards_come_parents_first() {
        let order = lineage_order(vec![
            ("c".into(), Some("b".into())),
            ("b".into(), Some("a".into())),
            ("a".into(), Some("trimmed".into())),
        ]);
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[test]
    fn every_change_yields_a_record_and_deletes_hit_live_keys() {
        for mix in [Mix::Uniform, Mix::Hot] {
            let mut live = HashSet::new();
            for c in changes(mix, 5_000, 3) {
                match c {
                    Change::Put(_) => {
                        live.insert(c.pk().to_string());
                    }
                    Change::Delete(_) => assert!(live.remove(c.pk()), "delete of a missing key"),
                }
            }
        }
    }

    #[test]
    fn batches_keep_each_key_on_one_writer_in_order_and_never_twice_in_a_batch() {
        let cs = changes(Mix::Hot, 3_000, 5);
        let lanes = plan_batches(&cs, 4);
        assert_eq!(lanes.iter().flatten().flatten().count(), cs.len());
        let mut seen_in: HashMap<String, usize> = HashMap::new();
        for (w, lane) in lanes.iter().enumerate() {
            for b in lane {
                assert!(b.len() <= 25);
                let pks: HashSet<String> = b.iter().map(request_pk).collect();
                assert_eq!(pks.len(), b.len(), "a key twice in one batch");
                for pk in pks {
                    assert_eq!(*seen_in.entry(pk).or_insert(w), w, "a key on two writers");
                }
            }
        }
        let order = |pk: &str| -> Vec<bool> {
            cs.iter()
                .filter(|c| c.pk() == pk)
                .map(|c| matches!(c, Change::Put(_)))
                .collect()
        };
        let hot = "hot007";
        let planned: Vec<bool> = lanes
            .iter()
            .flatten()
            .flatten()
            .filter(|r| request_pk(r) == hot)
            .map(|r| r.put_request.is_some())
            .collect();
        assert_eq!(planned, order(hot));
    }

    fn request_pk(r: &WriteRequest) -> String {
        let item = match (&r.put_request, &r.delete_request) {
            (Some(p), _) => &p.item,
            (_, Some(d)) => &d.key,
            _ => unreachable!(),
        };
        match item.get(HASH) {
            Some(Av::S(s)) => s.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn quantiles_pick_from_sorted_values() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 51.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
