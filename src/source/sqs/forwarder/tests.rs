use std::collections::HashSet;
use std::sync::Mutex;

use super::*;
use crate::source::sqs::message::{self, BATCH_ENTRIES, GROUPS};

/// A FIFO queue in memory with SQS's deduplication, plus scripted failures.
#[derive(Default)]
struct FakeQueue {
    /// (group, dedup id, body) in enqueue order.
    queue: Mutex<Vec<(String, String, String)>>,
    seen: Mutex<HashSet<String>>,
    /// Per call, its messages' event ids.
    calls: Mutex<Vec<Vec<Vec<String>>>>,
    objects: Mutex<Vec<(String, String, Vec<u8>)>>,
    /// Event ids whose message fails once each.
    fail_once: Mutex<HashSet<String>>,
    /// Whole calls that fail (count down).
    fail_calls: Mutex<u32>,
    fail_puts: Mutex<u32>,
    /// The queue's `MaximumMessageSize` ([`QUEUE_MAX`] unless set), enforced as SQS does.
    max: Option<usize>,
}

/// The tests' queue: 256 KiB messages, as queues made before 2025 (four 60 KB records a message).
const QUEUE_MAX: usize = 256 * 1024;

/// The event ids of a message body, in order.
fn event_ids(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["v"], 2, "{body}");
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| match p.get("record") {
            Some(r) => r["eventID"].as_str().unwrap().to_string(),
            None => p["offload"]["key"].as_str().unwrap().to_string(),
        })
        .collect()
}

impl Sender for FakeQueue {
    async fn send_batch(&self, _queue: &str, entries: &[Entry]) -> Result<Vec<String>> {
        assert!(entries.len() <= BATCH_ENTRIES);
        let groups: HashSet<&str> = entries.iter().map(|e| e.group.as_str()).collect();
        assert_eq!(
            groups.len(),
            entries.len(),
            "one call never holds two messages of one group"
        );
        let max = self.max.unwrap_or(QUEUE_MAX);
        assert!(
            entries.iter().all(|e| e.body.len() <= max),
            "a message over {max} bytes"
        );
        let size: usize = entries.iter().map(|e| e.body.len()).sum();
        assert!(size <= max, "{size} bytes in one call");
        self.calls
            .lock()
            .unwrap()
            .push(entries.iter().map(|e| event_ids(&e.body)).collect());
        {
            let mut n = self.fail_calls.lock().unwrap();
            if *n > 0 {
                *n -= 1;
                return Err(Error::fatal("AccessDenied"));
            }
        }
        let mut failed = Vec::new();
        for e in entries {
            // One failure per listed id: a message holding two fails twice.
            let mut fail = self.fail_once.lock().unwrap();
            if let Some(id) = event_ids(&e.body).into_iter().find(|id| fail.contains(id)) {
                fail.remove(&id);
                failed.push(e.id.clone());
                continue;
            }
            if self.seen.lock().unwrap().insert(e.dedup.clone()) {
                self.queue
                    .lock()
                    .unwrap()
                    .push((e.group.clone(), e.dedup.clone(), e.body.clone()));
            }
        }
        Ok(failed)
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
        let mut n = self.fail_puts.lock().unwrap();
        if *n > 0 {
            *n -= 1;
            return Err(Error::fatal("AccessDenied"));
        }
        self.objects.lock().unwrap().push((bucket.into(), key.into(), body));
        Ok(())
    }
}

/// Key buckets many enough that the few keys of a test each get their own (checked by
/// [`distinct_groups`]).
const MANY: u32 = 100_000;

fn target(bucket: Option<&str>, groups: u32) -> Target {
    Target {
        queue_url: "q.fifo".into(),
        offload_bucket: bucket.map(str::to_string),
        table: "T".into(),
        sends_in_flight: SENDS_IN_FLIGHT,
        message_max: QUEUE_MAX,
        groups,
    }
}

fn group_of(key: &str, groups: u32) -> String {
    let item = crate::item::Item::from([("pk".to_string(), aws_sdk_dynamodb::types::AttributeValue::S(key.into()))]);
    message::group_id(
        "T",
        &crate::item::KeyBytes::of(&["pk".to_string()], &item).unwrap(),
        groups,
    )
}

fn distinct_groups(keys: usize) {
    let groups: HashSet<String> = (0..keys).map(|k| group_of(&format!("k{k}"), MANY)).collect();
    assert_eq!(groups.len(), keys, "each test key in its own group");
}

/// Records `(event id, key)` with sequence numbers 1, 2, ...
fn event(recs: &[(&str, &str)], pad: usize) -> Value {
    let list: Vec<Value> = recs
        .iter()
        .enumerate()
        .map(|(i, (id, k))| {
            serde_json::json!({"eventID": id, "eventName": "MODIFY", "dynamodb": {
                "Keys": {"pk": {"S": k}}, "NewImage": {"pk": {"S": k}, "pad": {"S": "x".repeat(pad)}},
                "SequenceNumber": format!("{:05}", i + 1), "ApproximateCreationDateTime": 1.0e9}})
        })
        .collect();
    serde_json::json!({ "Records": list })
}

/// Lambda's side of ReportBatchItemFailures: retry from the reported record until none fails.
async fn lambda_retries<S: Sender>(q: &S, t: &Target, ev: &Value) -> u32 {
    let mut ev = ev.clone();
    let mut invocations = 0;
    loop {
        invocations += 1;
        let r = forward(q, t, &ev).await.unwrap();
        let Some(seq) = r.failed_at else { return invocations };
        let recs = ev["Records"].as_array().unwrap();
        let from = recs
            .iter()
            .position(|r| r["dynamodb"]["SequenceNumber"] == seq.as_str())
            .unwrap();
        ev = serde_json::json!({ "Records": recs[from..].to_vec() });
    }
}

/// The event ids of the queued messages, in queue order.
fn ids(q: &FakeQueue) -> Vec<String> {
    q.queue
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, _, b)| event_ids(b))
        .collect()
}

/// `(event id e<i>, key k<i % keys>)` for i in 0..n.
fn cycling(n: usize, keys: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("e{i}"), format!("k{}", i % keys))).collect()
}

fn refs(recs: &[(String, String)]) -> Vec<(&str, &str)> {
    recs.iter().map(|(e, k)| (e.as_str(), k.as_str())).collect()
}

/// Per key, the queue (event ids `e<i>`, key `k<i % keys>`) replays to the key's last record
/// without skipping one: it starts at the key's first record, each next one is the key's next
/// record or a step back (a repeated suffix), and it ends at the key's last record.
fn assert_converges(got: &[String], n: usize, keys: usize) {
    for k in 0..keys {
        let of_key: Vec<usize> = got
            .iter()
            .map(|e| e[1..].parse::<usize>().unwrap())
            .filter(|i| i % keys == k)
            .map(|i| i / keys)
            .collect();
        let last = (n - 1 - k) / keys;
        assert_eq!(of_key.first(), Some(&0), "k{k}: {of_key:?}");
        assert_eq!(of_key.last(), Some(&last), "k{k}: {of_key:?}");
        for w in of_key.windows(2) {
            assert!(w[1] == w[0] + 1 || w[1] <= w[0], "k{k} skips or jumps: {of_key:?}");
        }
    }
}

#[tokio::test]
async fn a_batch_over_distinct_keys_is_packed_by_group_into_one_call() {
    let recs = cycling(100, 100);
    let q = FakeQueue::default();
    let r = forward(&q, &target(None, GROUPS), &event(&refs(&recs), 10))
        .await
        .unwrap();
    assert_eq!(
        (r.sent, r.messages, r.failed_at.as_deref()),
        (100, GROUPS as usize, None)
    );
    let calls = q.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "a message per group: one call");
    for (group, _, body) in q.queue.lock().unwrap().iter() {
        let ids = event_ids(body);
        for e in &ids {
            let i: usize = e[1..].parse().unwrap();
            assert_eq!(&group_of(&format!("k{i}"), GROUPS), group, "{e} in its key's group");
        }
        let mut sorted = ids.clone();
        sorted.sort_by_key(|e| e[1..].parse::<usize>().unwrap());
        assert_eq!(ids, sorted, "a message's records in stream order");
    }
    let mut got = ids(&q);
    got.sort();
    let mut want: Vec<String> = recs.iter().map(|(e, _)| e.clone()).collect();
    want.sort();
    assert_eq!(got, want, "every record once");
    assert_eq!(r.lambda_response(), serde_json::json!({"batchItemFailures": []}));
}

#[tokio::test]
async fn messages_and_calls_stay_under_their_size_limits() {
    // ~60 KB records: four fit a message; a key's twelve records are three messages, each a call.
    distinct_groups(2);
    let recs = cycling(24, 2);
    let q = FakeQueue::default();
    let r = forward(&q, &target(None, MANY), &event(&refs(&recs), 60_000))
        .await
        .unwrap();
    assert_eq!((r.sent, r.messages, r.failed_at), (24, 6, None));
    for (_, _, body) in q.queue.lock().unwrap().iter() {
        assert!(body.len() <= message::body_max(QUEUE_MAX), "{}", body.len());
        assert_eq!(event_ids(body).len(), 4);
    }
    assert_eq!(q.calls.lock().unwrap().len(), 6);
    assert_converges(&ids(&q), 24, 2);
}

#[tokio::test]
async fn a_failed_message_is_reported_at_its_first_record_and_retries_lose_and_reorder_nothing() {
    // Hot keys in three groups: a failure's message holds records of other keys before it.
    let recs = cycling(40, 7);
    let q = FakeQueue::default();
    q.fail_once
        .lock()
        .unwrap()
        .extend(["e3".to_string(), "e9".into(), "e30".into()]);
    let ev = event(&refs(&recs), 10);
    let t = target(None, 3);
    let first = forward(&q, &t, &ev).await.unwrap();
    let failing: HashSet<String> = ["k3", "k2"].iter().map(|k| group_of(k, 3)).collect();
    let want = recs
        .iter()
        .position(|(_, k)| failing.contains(&group_of(k, 3)))
        .unwrap();
    let want = format!("{:05}", want + 1);
    assert_eq!(first.failed_at.as_deref(), Some(want.as_str()));
    assert_eq!(
        first.lambda_response(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": want}]})
    );
    let invocations = lambda_retries(&q, &t, &ev).await;
    assert!(invocations >= 2, "{invocations}");
    assert_converges(&ids(&q), 40, 7);
}

#[tokio::test]
async fn a_failed_call_is_reported_at_its_first_record() {
    let q = FakeQueue::default();
    *q.fail_calls.lock().unwrap() = 1;
    let r = forward(&q, &target(None, GROUPS), &event(&[("e1", "a"), ("e2", "b")], 10))
        .await
        .unwrap();
    assert_eq!((r.sent, r.failed_at.as_deref()), (0, Some("00001")));
    assert!(ids(&q).is_empty());
}

#[tokio::test]
async fn oversize_records_go_through_s3_first() {
    distinct_groups(2);
    let q = FakeQueue::default();
    let recs = [("e1", "k0"), ("e2", "k1")];
    let r = forward(&q, &target(Some("bkt"), MANY), &event(&recs, 300_000))
        .await
        .unwrap();
    assert_eq!((r.sent, r.offloaded), (2, 2));
    let objects = q.objects.lock().unwrap().clone();
    assert_eq!(objects[0].0, "bkt");
    assert_eq!(objects[0].1, "ferry-offload/T/e1.json");
    let stored: Value = serde_json::from_slice(&objects[0].2).unwrap();
    assert_eq!(stored["eventID"], "e1");
    let body = q.queue.lock().unwrap()[0].2.clone();
    assert!(body.len() < 1000, "the message carries a pointer: {body}");
    assert!(body.contains("ferry-offload/T/e1.json"));

    // A failed PutObject fails that record's message; the message before it is still sent.
    let q = FakeQueue::default();
    *q.fail_puts.lock().unwrap() = 1;
    let mixed = serde_json::json!({"Records": [
        event(&[("e1", "k0")], 10)["Records"][0].clone(),
        {"eventID": "e2", "dynamodb": {"Keys": {"pk": {"S": "k1"}}, "SequenceNumber": "00002",
            "NewImage": {"pad": {"S": "y".repeat(300_000)}}}},
    ]});
    let r = forward(&q, &target(Some("bkt"), MANY), &mixed).await.unwrap();
    assert_eq!((r.sent, r.failed_at.as_deref()), (1, Some("00002")));
    assert_eq!(ids(&q), ["e1"]);

    // Without a bucket an oversize record is an error, not a silent drop.
    let err = forward(&FakeQueue::default(), &target(None, GROUPS), &event(&recs, 300_000))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("FERRY_OFFLOAD_BUCKET"), "{err}");
}

#[tokio::test]
async fn a_queue_of_larger_messages_takes_big_records_inline_and_packs_fuller_messages() {
    // The two 300 KB records that go through S3 on a 256 KiB queue (above) ride inline, in one
    // call, on a queue of SQS's 1 MiB messages.
    distinct_groups(2);
    let big = || FakeQueue {
        max: Some(message::SQS_MESSAGE_MAX),
        ..FakeQueue::default()
    };
    let t = Target {
        message_max: message::SQS_MESSAGE_MAX,
        ..target(Some("bkt"), MANY)
    };
    let q = big();
    let r = forward(&q, &t, &event(&[("e1", "k0"), ("e2", "k1")], 300_000))
        .await
        .unwrap();
    assert_eq!((r.sent, r.messages, r.offloaded), (2, 2, 0));
    assert_eq!(q.calls.lock().unwrap().len(), 1);
    assert!(q.objects.lock().unwrap().is_empty());
    assert_eq!(ids(&q), ["e1", "e2"]);

    // A key's 60 KB records: sixteen a message rather than four.
    let recs = cycling(32, 1);
    let q = big();
    let r = forward(&q, &t, &event(&refs(&recs), 60_000)).await.unwrap();
    assert_eq!((r.sent, r.messages, r.failed_at), (32, 2, None));
    assert_converges(&ids(&q), 32, 1);
}

#[tokio::test]
async fn malformed_events_are_errors() {
    let q = FakeQueue::default();
    for bad in [
        serde_json::json!({}),
        serde_json::json!({"Records": [{"dynamodb": {"Keys": {"pk": {"S": "a"}}, "SequenceNumber": "1"}}]}),
        serde_json::json!({"Records": [{"eventID": "e", "dynamodb": {"Keys": {}, "SequenceNumber": "1"}}]}),
    ] {
        assert!(forward(&q, &target(None, GROUPS), &bad).await.is_err(), "{bad}");
    }
    assert!(q.calls.lock().unwrap().is_empty());
}

mod overlap;
