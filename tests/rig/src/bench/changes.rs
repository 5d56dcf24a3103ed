//! The source workload of the benchmark: its plain table, ~1 KB items, mixes of changes that each
//! yield one stream record, those changes written per key in order, and the endpoint's raw write
//! ceiling.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as Av, BillingMode, DeleteRequest, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus, WriteRequest,
};
use ferry::item::Item;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{ITEM_BYTES, TABLE, drop_table};
use crate::data::{HASH, RANGE, key_of, send_batch, sized_item};
use crate::{Account, DynamoLocal};

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
    pub(super) fn pk(&self) -> &str {
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
/// `FERRY_BENCH_TRACE=1` prints the rate every half second (a ceiling's own warm-up or slump).
pub async fn write_lanes(c: &Client, table: &str, lanes: Vec<Vec<Vec<WriteRequest>>>) -> Result<Duration, String> {
    let start = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let tracer = std::env::var_os("FERRY_BENCH_TRACE").map(|_| {
        let done = done.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let now = done.load(Relaxed);
                eprintln!(
                    "[trace] {:.1} s: {} changes/s",
                    start.elapsed().as_secs_f64(),
                    (now - last) * 2
                );
                last = now;
            }
        })
    });
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|batches| {
            let (c, table, done) = (c.clone(), table.to_string(), done.clone());
            tokio::spawn(async move {
                for b in batches {
                    let n = b.len();
                    send_batch(&c, &table, b).await?;
                    done.fetch_add(n, Relaxed);
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    if let Some(t) = tracer {
        t.abort();
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

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
}
