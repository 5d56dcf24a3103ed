//! The apply path against a scripted destination that throttles and leaves items unprocessed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::apply::test_support::{put_change, write_only};
use crate::checkpoint::OrderedAck;
use crate::error::Kind;

struct Flaky {
    rng: Mutex<StdRng>,
    /// Per key, values in the order they became durable.
    durable: Mutex<HashMap<String, Vec<i64>>>,
    /// The acknowledger, to check at every write that the checkpoint never passed an unapplied record.
    ack: Mutex<Option<Arc<OrderedAck<usize>>>>,
    /// (key, value) of every submitted record, by position.
    submitted: Mutex<Vec<(String, i64)>>,
    throttles: Mutex<u32>,
    partials: Mutex<u32>,
}

fn kv(op: &WriteOp) -> (String, i64) {
    let WriteOp::Put(i) = op else { panic!("puts only") };
    let (Some(AttributeValue::S(k)), Some(AttributeValue::N(v))) = (i.get("pk"), i.get("v")) else {
        panic!()
    };
    (k.clone(), v.parse().unwrap())
}

impl Flaky {
    fn check_checkpoint(&self) {
        let Some(ack) = self.ack.lock().unwrap().clone() else {
            return;
        };
        let Some(pos) = ack.committed() else { return };
        let durable = self.durable.lock().unwrap();
        for (k, v) in &self.submitted.lock().unwrap()[..=pos] {
            let ok = durable.get(k).is_some_and(|h| h.iter().any(|x| x >= v));
            assert!(ok, "checkpoint {pos} passed record {k}={v}, which is not durable");
        }
    }
}

impl ApplyIo for Flaky {
    async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
        let ops: Vec<WriteOp> = ops.iter().map(WriteOp::to_map).collect();
        self.check_checkpoint();
        let roll: f64 = self.rng.lock().unwrap().random();
        if roll < 0.25 {
            *self.throttles.lock().unwrap() += 1;
            return Err(Error::new(Kind::Throttled, "ProvisionedThroughputExceededException"));
        }
        if roll < 0.30 {
            return Err(Error::new(Kind::Retryable, "connection reset"));
        }
        let mut left = Vec::new();
        let mut durable = self.durable.lock().unwrap();
        for op in ops {
            if roll < 0.60 && self.rng.lock().unwrap().random_bool(0.5) {
                left.push(op);
                continue;
            }
            let (k, v) = kv(&op);
            durable.entry(k).or_default().push(v);
        }
        if !left.is_empty() {
            *self.partials.lock().unwrap() += 1;
        }
        Ok(left)
    }
    write_only!();
}

#[tokio::test(start_paused = true)]
async fn throttled_and_unprocessed_writes_all_land_in_order_and_checkpoints_wait_for_them() {
    let io = Arc::new(Flaky {
        rng: Mutex::new(StdRng::seed_from_u64(11)),
        durable: Mutex::default(),
        ack: Mutex::default(),
        submitted: Mutex::default(),
        throttles: Mutex::default(),
        partials: Mutex::default(),
    });
    let ack = Arc::new(OrderedAck::new(None));
    *io.ack.lock().unwrap() = Some(ack.clone());
    let stats = Arc::new(TableStats::default());
    let applier = Applier::start(io.clone(), 4, Arc::new(Limiter::new(0)), stats.clone());
    let mut rng = StdRng::seed_from_u64(5);
    let mut version: HashMap<String, i64> = HashMap::new();
    for i in 0..3_000usize {
        // Hot keys and cold keys mixed.
        let k = if rng.random_bool(0.5) {
            format!("hot{}", rng.random_range(0..4))
        } else {
            format!("cold{i}")
        };
        let v = version.entry(k.clone()).or_default();
        *v += 1;
        io.submitted.lock().unwrap().push((k.clone(), *v));
        let index = ack.register(Some(i));
        applier
            .submit(put_change(k.as_str(), *v as usize, ack.clone(), index))
            .await
            .unwrap();
    }
    applier.finish().await.unwrap();

    assert_eq!(ack.committed(), Some(2_999), "every record acknowledged");
    assert_eq!(ack.outstanding(), 0);
    let durable = io.durable.lock().unwrap();
    for (k, last) in &version {
        let h = &durable[k];
        assert!(h.windows(2).all(|w| w[0] < w[1]), "key {k} went backwards: {h:?}");
        assert_eq!(h.last(), Some(last), "key {k} ends at its last value");
    }
    assert!(
        *io.throttles.lock().unwrap() > 10 && *io.partials.lock().unwrap() > 10,
        "the script did throttle"
    );
    assert!(stats.throttles.load(std::sync::atomic::Ordering::Relaxed) > 20);
    assert!(
        stats.coalesced.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "hot keys were coalesced"
    );
}

/// A record DynamoDB refuses (here: a validation error on one key) stops the applier with that
/// key in the message, and is never acknowledged.
#[tokio::test(start_paused = true)]
async fn a_record_that_cannot_be_applied_stops_loudly_with_its_key() {
    struct Refuses;
    impl ApplyIo for Refuses {
        async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
            let ops: Vec<WriteOp> = ops.iter().map(WriteOp::to_map).collect();
            if ops.iter().any(|o| kv(o).0 == "poison") {
                return Err(Error::fatal(
                    "BatchWriteItem failed: ValidationException: Item size has exceeded the maximum allowed size",
                ));
            }
            Ok(vec![])
        }
        write_only!();
    }
    let ack = Arc::new(OrderedAck::new(None));
    let applier = Applier::start(Arc::new(Refuses), 1, Arc::new(Limiter::new(0)), Arc::default());
    for (i, k) in ["a", "b", "poison", "c"].iter().enumerate() {
        let index = ack.register(Some(i));
        let _ = applier.submit(put_change(k, 1, ack.clone(), index)).await;
    }
    let err = applier.finish().await.unwrap_err();
    assert!(err.is_fatal());
    assert!(err.to_string().contains(r#"put of key {"pk":{"S":"poison"}}"#), "{err}");
    assert!(err.to_string().contains("ValidationException"), "{err}");
    assert!(
        ack.committed().is_none_or(|p| p < 2),
        "the checkpoint never passes the refused record"
    );
}

/// A destination that refuses connections until `down_until` (paused tokio time), then works.
struct Outage {
    down_until: tokio::time::Instant,
    attempts: Mutex<u32>,
    written: Mutex<Vec<String>>,
}

impl ApplyIo for Outage {
    async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
        let ops: Vec<WriteOp> = ops.iter().map(WriteOp::to_map).collect();
        *self.attempts.lock().unwrap() += 1;
        if tokio::time::Instant::now() < self.down_until {
            return Err(Error::retryable("BatchWriteItem failed: connection refused"));
        }
        self.written.lock().unwrap().extend(ops.iter().map(|o| kv(o).0));
        Ok(vec![])
    }
    write_only!();
}

fn outage(hours: u64) -> Arc<Outage> {
    Arc::new(Outage {
        down_until: tokio::time::Instant::now() + std::time::Duration::from_secs(hours * 3600),
        attempts: Mutex::default(),
        written: Mutex::default(),
    })
}

async fn submit_keys(applier: &Applier, ack: &Arc<OrderedAck<usize>>, keys: &[&str]) {
    for (i, k) in keys.iter().enumerate() {
        let index = ack.register(Some(i));
        applier.submit(put_change(k, i, ack.clone(), index)).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_destination_outage_of_hours_is_ridden_out_and_shown_as_retrying() {
    let io = outage(3);
    let stats = Arc::new(TableStats::default());
    let ack = Arc::new(OrderedAck::new(None));
    let applier = Applier::start(io.clone(), 2, Arc::new(Limiter::new(0)), stats.clone());
    submit_keys(&applier, &ack, &["a", "b", "c"]).await;
    // An hour into the outage: still retrying, nothing acknowledged, the table says why.
    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    let (for_how_long, last) = stats.health.retrying().expect("retrying during the outage");
    assert!(for_how_long >= std::time::Duration::from_secs(3500), "{for_how_long:?}");
    assert!(last.contains("connection refused"), "{last}");
    assert!(ack.committed().is_none());
    assert!(!applier.failed.is_cancelled(), "an outage never stops the table");
    applier.finish().await.unwrap();
    assert_eq!(ack.committed(), Some(2), "every record is durable after the outage");
    let mut written = io.written.lock().unwrap().clone();
    written.sort();
    assert_eq!(written, ["a", "b", "c"]);
    assert!(stats.health.retrying().is_none(), "working again");
    assert!(
        *io.attempts.lock().unwrap() > 30,
        "far past the old budget of 30 attempts"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_an_outage_ends_the_writes_without_acknowledging_them() {
    let io = outage(3);
    let stats = Arc::new(TableStats::default());
    let stop = CancellationToken::new();
    let ack = Arc::new(OrderedAck::new(None));
    let shape = Arc::new(crate::transform::Transform::identity(io.key_names().into()));
    let applier = Applier::start_with_stop(
        io.clone(),
        2,
        Arc::new(Limiter::new(0)),
        stats.clone(),
        shape,
        stop.clone(),
    );
    submit_keys(&applier, &ack, &["a", "b"]).await;
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    stop.cancel();
    let err = applier.finish().await.unwrap_err();
    assert!(err.is_stopped(), "{err:?}");
    assert!(ack.committed().is_none(), "nothing written, nothing acknowledged");
    assert!(io.written.lock().unwrap().is_empty());
    assert!(stats.health.retrying().is_none());
}

/// A submitter waiting on a full lane (its writes stuck) gets the applier's error as soon as
/// another lane fails, instead of waiting for room that never comes.
#[tokio::test(start_paused = true)]
async fn a_submit_waiting_on_a_full_lane_ends_when_another_lane_fails() {
    struct StuckOrRefused;
    impl ApplyIo for StuckOrRefused {
        async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
            let ops: Vec<WriteOp> = ops.iter().map(WriteOp::to_map).collect();
            if ops.iter().any(|o| kv(o).0 == "poison") {
                return Err(Error::fatal("BatchWriteItem failed: ValidationException: bad item"));
            }
            std::future::pending().await
        }
        write_only!();
    }
    fn change(k: &str) -> Change {
        let item = Item::from([
            ("pk".to_string(), AttributeValue::S(k.to_string())),
            ("v".to_string(), AttributeValue::N("1".into())),
        ]);
        test_support::change(k, Op::Put(item), 0)
    }
    let lane = |k: &str| change(k).key.lane_hash() % 2;
    let poison_lane = lane("poison");
    let stuck: Vec<String> = (0..)
        .map(|i| format!("k{i}"))
        .filter(|k| lane(k) != poison_lane)
        .take(20_000)
        .collect();

    let applier = Arc::new(Applier::start(
        Arc::new(StuckOrRefused),
        2,
        Arc::new(Limiter::new(0)),
        Arc::default(),
    ));
    let submitted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let submitter = tokio::spawn({
        let (applier, submitted) = (applier.clone(), submitted.clone());
        async move {
            for k in &stuck {
                applier.submit(change(k)).await?;
                submitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok::<_, Error>(())
        }
    });
    // With time paused this returns once every other task is idle: the stuck lane's queue is full.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(
        submitted.load(std::sync::atomic::Ordering::Relaxed) < 20_000,
        "the lane never filled"
    );

    applier.submit(change("poison")).await.unwrap();
    let err = submitter.await.unwrap().unwrap_err();
    assert!(err.to_string().contains(r#"put of key {"pk":{"S":"poison"}}"#), "{err}");
}

/// DynamoIo sends the body ferry writes: every request once, a raw image byte for byte, the
/// Content-Length of that body; and the requests the service leaves unprocessed come back as ops.
#[tokio::test]
async fn dynamo_io_sends_the_body_it_built_and_returns_what_was_left_unprocessed() {
    // Each request's body and Content-Length header.
    type Sent = Vec<(Vec<u8>, Option<String>)>;
    let seen: Arc<Mutex<Sent>> = Arc::default();
    let log = seen.clone();
    let http = aws_smithy_http_client::test_util::infallible_client_fn(move |req| {
        let body = req.body().bytes().unwrap().to_vec();
        let length = req.headers().get("content-length").and_then(|v| v.to_str().ok());
        log.lock().unwrap().push((body, length.map(str::to_string)));
        let left = r#"{"UnprocessedItems":{"Dest \"T\"":[{"DeleteRequest":{"Key":{"pk":{"S":"d"}}}}]}}"#;
        http::Response::builder().status(200).body(left).unwrap()
    });
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("a", "b", None, None, "test"))
        .http_client(http)
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let io = DynamoIo {
        destination: client.clone(),
        destination_table: "Dest \"T\"".into(),
        source: client,
        source_table: "Source".into(),
        key_names: vec!["pk".to_string()].into(),
        read_limiter: Arc::new(Limiter::new(0)),
        stop: CancellationToken::new(),
        stats: Arc::default(),
    };
    let raw_json = r#"{"pk":{"S":"a"},"v":{"N":"1.50"},"b":{"B":"AAE="}}"#;
    let crate::item::Image::Raw(raw) = crate::item::Image::from_json(raw_json.into()).unwrap() else {
        panic!("raw")
    };
    let map = Item::from([
        ("pk".to_string(), AttributeValue::S("b \"quoted\"".into())),
        ("l".to_string(), AttributeValue::L(vec![AttributeValue::Bool(true)])),
    ]);
    let key = Item::from([("pk".to_string(), AttributeValue::S("d".into()))]);
    let ops = [
        WriteOp::PutRaw(raw),
        WriteOp::Put(map.clone()),
        WriteOp::Delete(key.clone()),
    ];
    let left = io.write_batch(&ops).await.unwrap();
    assert_eq!(left, [WriteOp::Delete(key.clone())]);

    let (body, length) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(length, Some(body.len().to_string()));
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains(raw_json), "the raw image goes out unchanged: {text}");
    let sent: serde_json::Value = serde_json::from_str(&text).unwrap();
    let reqs = sent["RequestItems"]["Dest \"T\""].as_array().unwrap();
    assert_eq!(reqs.len(), 3);
    let item = |v: &serde_json::Value| crate::item::json::item_from_json(v).unwrap();
    let WriteOp::Put(raw_item) = ops[0].to_map() else {
        panic!("a put")
    };
    assert_eq!(item(&reqs[0]["PutRequest"]["Item"]), raw_item);
    assert_eq!(raw_item["v"], AttributeValue::N("1.50".into()), "numbers as spelled");
    assert_eq!(item(&reqs[1]["PutRequest"]["Item"]), map);
    assert_eq!(item(&reqs[2]["DeleteRequest"]["Key"]), key);
}
