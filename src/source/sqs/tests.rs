//! The consumer against a scripted FIFO queue and offload bucket (a fake at its [`QueueApi`] and
//! [`Offloads`] seam) and a scripted destination, in paused time.
//!
//! A slow decode (an S3 fetch that stalls past the visibility timeout) must never end with an
//! older image at the destination. The script: key `a` has two queued changes, v=1 (offloaded to
//! S3, whose first fetch stalls for 10 s) then v=2 (inline); the source's current item has v=2;
//! the visibility timeout is 4 s and two receivers poll. Slow writes must not let a batch reappear,
//! and a throttle storm on receive and delete must lose and reorder nothing.
//!
//! [`QueueApi`]: super::api::QueueApi
//! [`Offloads`]: super::api::Offloads

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue as Av;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod fake;
mod formats;

use fake::{Broker, Fake, Msg};

use super::consumer::SqsTask;
use crate::apply::{Applier, ApplyIo, Limiter, WriteOp};
use crate::config::QueueConfig;
use crate::discover::View;
use crate::error::Result;
use crate::item::Item;
use crate::source::TableContext;
use crate::telemetry::TableStats;

const VISIBILITY: u64 = 4;
const STALL: Duration = Duration::from_secs(10);
const QUEUE: &str = "http://sqs.fake/1/t.fifo";

/// The destination, and the source's current items for reads.
#[derive(Default)]
struct Dest {
    /// Every write batch takes this long.
    write_delay: Duration,
    items: Mutex<HashMap<String, i64>>,
    /// (key, v) of every put, in order.
    puts: Mutex<Vec<(String, i64)>>,
    source: HashMap<String, i64>,
}

fn pk_v(i: &Item) -> (String, Option<i64>) {
    let Some(Av::S(k)) = i.get("pk") else { panic!("{i:?}") };
    (
        k.clone(),
        i.get("v").and_then(|v| v.as_n().ok()).map(|n| n.parse().unwrap()),
    )
}

impl ApplyIo for Dest {
    async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
        let ops: Vec<WriteOp> = ops.iter().map(WriteOp::to_map).collect();
        tokio::time::sleep(self.write_delay).await;
        for op in ops {
            let (k, v) = match &op {
                WriteOp::PutRaw(_) => unreachable!("read into a map by to_map"),
                WriteOp::Put(i) | WriteOp::Delete(i) => pk_v(i),
            };
            match (op, v) {
                (WriteOp::Put(_), Some(v)) => {
                    self.puts.lock().unwrap().push((k.clone(), v));
                    self.items.lock().unwrap().insert(k, v);
                }
                _ => {
                    self.items.lock().unwrap().remove(&k);
                }
            }
        }
        Ok(Vec::new())
    }
    async fn read_source(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        for k in keys {
            let (pk, _) = pk_v(&k);
            if let Some(v) = self.source.get(&pk) {
                out.push(Item::from([
                    ("pk".to_string(), Av::S(pk.clone())),
                    ("v".to_string(), Av::N(v.to_string())),
                ]));
            }
        }
        Ok(out)
    }
    fn key_names(&self) -> &[String] {
        static K: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        K.get_or_init(|| vec!["pk".to_string()])
    }
    fn destination(&self) -> &str {
        "T"
    }
}

fn record(v: i64, seq: &str) -> Value {
    record_of("a", v, seq)
}

fn record_of(key: &str, v: i64, seq: &str) -> Value {
    json!({"eventID": format!("e{key}{v}"), "eventName": "MODIFY", "dynamodb": {
        "Keys": {"pk": {"S": key}}, "NewImage": {"pk": {"S": key}, "v": {"N": v.to_string()}},
        "SequenceNumber": seq, "ApproximateCreationDateTime": 1700000000.0 + v as f64}})
}

struct Run {
    broker: Arc<Mutex<Broker>>,
    dest: Arc<Dest>,
    stats: Arc<TableStats>,
}

/// Runs the slow-decode script (see the module doc).
async fn run(fail_extend: bool) -> Run {
    let offloaded = super::message::pointer_body(
        "T",
        &super::message::Offload {
            bucket: "b".into(),
            key: "k1".into(),
        },
        "100",
    );
    let broker = Broker {
        fail_extend,
        objects: HashMap::from([("k1".to_string(), record(1, "100").to_string())]),
        stall: HashMap::from([("k1".to_string(), STALL)]),
        queue: vec![
            Msg::new("m1", "g", offloaded),
            Msg::new("m2", "g", super::message::inline_body("T", &record(2, "200"))),
        ],
        ..Default::default()
    };
    let dest = Dest {
        source: HashMap::from([("a".to_string(), 2)]),
        ..Default::default()
    };
    run_script(broker, dest, VISIBILITY).await
}

/// Clients for the task's SDK fields, never called: the fake stands in for them.
fn unused_clients() -> (aws_sdk_sqs::Client, aws_sdk_s3::Client) {
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build(),
    );
    (sqs, s3)
}

/// Runs the consumer (two receivers) over `broker` until the queue is empty, then stops it (a
/// stop drains every received batch).
async fn run_script(broker: Broker, dest: Dest, visibility: u64) -> Run {
    let broker = Arc::new(Mutex::new(broker));
    run_until(broker, dest, visibility, 2, |b| b.queue.is_empty()).await
}

/// Runs the consumer with `receivers` over `broker` until `done`, then stops it.
async fn run_until(
    broker: Arc<Mutex<Broker>>,
    dest: Dest,
    visibility: u64,
    receivers: u32,
    done: impl Fn(&Broker) -> bool,
) -> Run {
    let fake = Arc::new(Fake(broker.clone()));
    let dest = Arc::new(dest);
    let (sqs, s3) = unused_clients();
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(TableStats::default());
    let stop = CancellationToken::new();
    let task = SqsTask {
        sqs,
        s3,
        ctx: TableContext::for_test(
            "T",
            &["pk"],
            Arc::new(crate::checkpoint::Store::open(&dir.path().join("ferry.db")).unwrap()),
            stats.clone(),
            stop.clone(),
        ),
        queue: QueueConfig {
            url: QUEUE.into(),
            visibility_timeout_seconds: visibility as u32,
            receivers,
            allow_dead_letter: false,
        },
        view: View::NewImage,
        replay_from_ms: 0,
    };
    let applier = Applier::start(dest.clone(), 2, Arc::new(Limiter::new(0)), stats.clone());
    let running = tokio::spawn(task.run_with(fake.clone(), fake, applier));
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done(&broker.lock().unwrap()) {
        if running.is_finished() {
            panic!("the consumer stopped early: {:?}", running.await);
        }
        assert!(Instant::now() < deadline, "the queue never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    running.await.unwrap().unwrap();
    Run { broker, dest, stats }
}

#[tokio::test(start_paused = true)]
async fn a_batch_stays_invisible_from_receipt_through_a_slow_decode() {
    let r = run(false).await;
    assert_eq!(r.dest.items.lock().unwrap().get("a"), Some(&2));
    // Never handed out twice: the stalled message's visibility was extended while it was decoded.
    assert_eq!(r.broker.lock().unwrap().fetches.get("k1"), Some(&1));
    // Admitted 10 s after receipt (past half the visibility timeout): settled by reading the
    // source (v=2), not written as its own image (v=1).
    assert_eq!(
        *r.dest.puts.lock().unwrap(),
        [("a".to_string(), 2), ("a".to_string(), 2)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_change_decoded_after_it_became_visible_again_is_settled_by_reading_the_source() {
    // Extensions fail: the stalled message reappears, another receiver applies it and the newer
    // change and releases the key; then the first receiver's decode ends.
    let r = run(true).await;
    let fetches = r.broker.lock().unwrap().fetches.get("k1").copied();
    assert_eq!(fetches, Some(2), "the message was received twice");
    let puts = r.dest.puts.lock().unwrap().clone();
    assert!(
        !puts.contains(&("a".to_string(), 1)),
        "the stale image was written: {puts:?}"
    );
    assert_eq!(r.dest.items.lock().unwrap().get("a"), Some(&2), "{puts:?}");
}

#[tokio::test(start_paused = true)]
async fn visibility_is_extended_while_a_batch_is_slow_to_apply() {
    // Every write takes 10 s, past the 4 s visibility timeout: only extensions keep the batch
    // from being handed out again.
    let queue = ["a", "b", "c"]
        .iter()
        .map(|k| {
            let body = super::message::inline_body("T", &record_of(k, 1, "100"));
            Msg::new(&format!("m{k}"), k, body)
        })
        .collect();
    let dest = Dest {
        write_delay: Duration::from_secs(10),
        ..Default::default()
    };
    let r = run_script(
        Broker {
            queue,
            ..Default::default()
        },
        dest,
        VISIBILITY,
    )
    .await;
    let b = r.broker.lock().unwrap();
    assert!(b.extended > 0, "the slow batch was never extended");
    assert_eq!(
        b.late_extends, 0,
        "an extension came after the visibility timeout ran out"
    );
    let mut deleted = b.deleted.clone();
    deleted.sort();
    let once: Vec<(String, u32)> = ["ma", "mb", "mc"].iter().map(|m| (m.to_string(), 1)).collect();
    assert_eq!(deleted, once, "every message received once, then deleted");
    let mut puts = r.dest.puts.lock().unwrap().clone();
    puts.sort();
    assert_eq!(puts, [("a".to_string(), 1), ("b".to_string(), 1), ("c".to_string(), 1)]);
}

#[tokio::test(start_paused = true)]
async fn a_throttle_storm_on_receive_and_delete_loses_and_reorders_nothing() {
    let mut queue = Vec::new();
    for v in 1..=5 {
        let seq = (100 * v).to_string();
        queue.push(Msg::new(
            &format!("a{v}"),
            "a",
            super::message::inline_body("T", &record_of("a", v, &seq)),
        ));
        if v <= 3 {
            let body = super::message::inline_body("T", &record_of("b", v, &seq));
            queue.push(Msg::new(&format!("b{v}"), "b", body));
        }
    }
    let broker = Broker {
        queue,
        throttle_receives: 12,
        throttle_deletes: 6,
        ..Default::default()
    };
    let r = run_script(broker, Dest::default(), 30).await;
    assert!(
        r.stats.throttles.load(std::sync::atomic::Ordering::Relaxed) >= 18,
        "the storm was retried"
    );
    let b = r.broker.lock().unwrap();
    assert_eq!(b.deleted.len(), 8, "every message deleted: {:?}", b.deleted);
    assert!(
        b.deleted.iter().all(|(_, n)| *n == 1),
        "nothing redelivered: {:?}",
        b.deleted
    );
    let puts = r.dest.puts.lock().unwrap().clone();
    let of = |k: &str| -> Vec<i64> { puts.iter().filter(|(p, _)| p == k).map(|(_, v)| *v).collect() };
    assert_eq!(of("a"), [1, 2, 3, 4, 5], "{puts:?}");
    assert_eq!(of("b"), [1, 2, 3], "{puts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_steady_flow_is_received_in_turns_not_a_message_per_call() {
    // 400 changes over 100 keys, one every 2 ms (500/s), to 8 receivers: each receiver asking
    // again the moment it is answered would take them a message or two per call.
    let broker = Arc::new(Mutex::new(Broker {
        poll: Some(Duration::from_millis(1)),
        ..Default::default()
    }));
    let feed = broker.clone();
    let feeding = tokio::spawn(async move {
        for i in 0..400i64 {
            let k = format!("k{}", i % 100);
            let body = super::message::inline_body("T", &record_of(&k, i, &format!("{:05}", i + 1)));
            feed.lock().unwrap().queue.push(Msg::new(&format!("m{i}"), &k, body));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let r = run_until(broker, Dest::default(), 30, 8, |b| b.deleted.len() == 400).await;
    feeding.await.unwrap();
    let calls = r.broker.lock().unwrap().receive_calls;
    // 800 ms of flow: about one call per GATHER (20 ms), each taking ~10 messages.
    assert!(calls <= 120, "{calls} ReceiveMessage calls for 400 messages");
    let puts = r.dest.puts.lock().unwrap().clone();
    for k in 0..100 {
        let of: Vec<i64> = puts
            .iter()
            .filter(|(p, _)| *p == format!("k{k}"))
            .map(|(_, v)| *v)
            .collect();
        let want: Vec<i64> = (0..4).map(|j| k + 100 * j).collect();
        assert!(of.ends_with(&want[3..]) && of.is_sorted(), "k{k}: {of:?}");
    }
}
