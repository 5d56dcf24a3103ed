//! Lanes' small batches combined into one write: fewer calls, the same per-key order and failures.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use tokio::sync::Notify;

use super::*;
use crate::apply::test_support::{put_change, write_only};
use crate::checkpoint::OrderedAck;

/// Records every call's (key, value) pairs; the first `hold` calls wait for `release`.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Vec<(String, String)>>>,
    hold: AtomicUsize,
    entered: Notify,
    release: Notify,
}

impl ApplyIo for Recorder {
    async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
        let kvs: Vec<(String, String)> = ops.iter().map(|o| kv(&o.to_map())).collect();
        if kvs.iter().any(|(k, _)| k == "poison") {
            return Err(Error::fatal("BatchWriteItem failed: ValidationException: bad item"));
        }
        self.calls.lock().unwrap().push(kvs);
        if self.hold.load(Relaxed) > 0 {
            self.hold.fetch_sub(1, Relaxed);
            self.entered.notify_one();
            self.release.notified().await;
        }
        Ok(vec![])
    }
    write_only!();
}

fn kv(op: &WriteOp) -> (String, String) {
    let WriteOp::Put(i) = op else { panic!("puts only") };
    let (Some(AttributeValue::S(k)), Some(AttributeValue::N(v))) = (i.get("pk"), i.get("v")) else {
        panic!("{i:?}")
    };
    (k.clone(), v.clone())
}

/// Puts of `kvs`, registered with `ack` in order (the position is the value).
fn changes(ack: &Arc<OrderedAck<usize>>, kvs: &[(&str, usize)]) -> Vec<Change> {
    kvs.iter()
        .map(|(k, v)| put_change(k, *v, ack.clone(), ack.register(Some(*v))))
        .collect()
}

fn lane_of(k: &str, lanes: u64) -> u64 {
    put_change(k, 0, Arc::new(OrderedAck::<usize>::new(None)), 0)
        .key
        .lane_hash()
        % lanes
}

/// Keys of distinct lanes (of `lanes`), `n` of them.
fn one_per_lane(lanes: u64, n: usize) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    (0..)
        .map(|i| format!("k{i}"))
        .filter(|k| seen.insert(lane_of(k, lanes)))
        .take(n)
        .collect()
}

/// A page of 20 changes to 20 lanes of 64 goes out as one BatchWriteItem, not 20 of one item,
/// and every change is acknowledged.
#[tokio::test]
async fn a_page_spread_over_many_lanes_is_written_in_one_call() {
    let io = Arc::new(Recorder::default());
    let applier = Applier::start(io.clone(), 64, Arc::new(Limiter::new(0)), Arc::default());
    let ack = Arc::new(OrderedAck::new(None));
    let keys = one_per_lane(64, 20);
    let kvs: Vec<(&str, usize)> = keys.iter().map(|k| (k.as_str(), 1)).collect();
    applier.submit_all(changes(&ack, &kvs)).await.unwrap();
    applier.finish().await.unwrap();

    let calls = io.calls.lock().unwrap();
    assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [20], "{calls:?}");
    assert_eq!(ack.outstanding(), 0, "every change acknowledged");
}

/// A lane whose batch rode another lane's write takes its next batch only once that write is
/// durable: per key, the second change never overtakes the first.
#[tokio::test(start_paused = true)]
async fn a_lane_waits_for_the_combined_write_that_carries_its_keys() {
    let io = Arc::new(Recorder {
        hold: AtomicUsize::new(1),
        ..Default::default()
    });
    let applier = Applier::start(io.clone(), 8, Arc::new(Limiter::new(0)), Arc::default());
    let ack = Arc::new(OrderedAck::new(None));
    let keys = one_per_lane(8, 3);
    let (a, b, c) = (keys[0].as_str(), keys[1].as_str(), keys[2].as_str());
    applier
        .submit_all(changes(&ack, &[(a, 1), (b, 1), (c, 1)]))
        .await
        .unwrap();
    io.entered.notified().await;
    applier
        .submit_all(changes(&ack, &[(a, 2), (b, 2), (c, 2)]))
        .await
        .unwrap();
    // With time paused this returns once every task is idle: a lane that did not wait would
    // have sent its second change by now.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        io.calls.lock().unwrap().len(),
        1,
        "nothing sent while the first write is in flight"
    );
    assert!(ack.committed().is_none(), "nothing acknowledged before it is durable");

    io.release.notify_one();
    applier.finish().await.unwrap();
    let calls = io.calls.lock().unwrap();
    let values: Vec<Vec<&str>> = calls
        .iter()
        .map(|c| c.iter().map(|(_, v)| v.as_str()).collect())
        .collect();
    assert_eq!(values, [vec!["1"; 3], vec!["2"; 3]], "{calls:?}");
    assert_eq!(ack.outstanding(), 0);
}

/// A key the destination refuses, riding a combined write, stops the table with that key named;
/// the checkpoint never passes it, and every lane ends.
#[tokio::test(start_paused = true)]
async fn a_refused_key_in_a_combined_write_stops_the_table_naming_it() {
    let io = Arc::new(Recorder::default());
    let applier = Applier::start(io.clone(), 8, Arc::new(Limiter::new(0)), Arc::default());
    let ack = Arc::new(OrderedAck::new(None));
    let mut others = one_per_lane(8, 8);
    others.retain(|k| lane_of(k, 8) != lane_of("poison", 8));
    let mut kvs = vec![("poison", 0)];
    kvs.extend(others.iter().map(|k| (k.as_str(), 1)));
    applier.submit_all(changes(&ack, &kvs)).await.unwrap();

    let err = applier.finish().await.unwrap_err();
    assert!(err.to_string().contains(r#"put of key {"pk":{"S":"poison"}}"#), "{err}");
    assert!(
        ack.committed().is_none(),
        "the checkpoint never passes the refused change"
    );
}
