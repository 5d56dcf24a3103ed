use std::collections::HashSet;
use std::sync::Mutex;

use super::*;

/// A FIFO queue in memory with SQS's deduplication, plus scripted failures.
#[derive(Default)]
struct FakeQueue {
    /// (group, dedup id, body) in enqueue order.
    queue: Mutex<Vec<(String, String, String)>>,
    seen: Mutex<HashSet<String>>,
    calls: Mutex<Vec<Vec<String>>>,
    objects: Mutex<Vec<(String, String, Vec<u8>)>>,
    /// Dedup ids whose entry fails once.
    fail_once: Mutex<HashSet<String>>,
    /// Whole calls that fail (count down).
    fail_calls: Mutex<u32>,
    fail_puts: Mutex<u32>,
}

impl Sender for FakeQueue {
    async fn send_batch(&self, _queue: &str, entries: &[Entry]) -> Result<Vec<String>> {
        assert!(entries.len() <= 10);
        let groups: HashSet<&str> = entries.iter().map(|e| e.group.as_str()).collect();
        assert_eq!(
            groups.len(),
            entries.len(),
            "one call never holds two records of one group"
        );
        self.calls
            .lock()
            .unwrap()
            .push(entries.iter().map(|e| e.dedup.clone()).collect());
        {
            let mut n = self.fail_calls.lock().unwrap();
            if *n > 0 {
                *n -= 1;
                return Err(Error::fatal("AccessDenied"));
            }
        }
        let mut failed = Vec::new();
        for e in entries {
            if self.fail_once.lock().unwrap().remove(&e.dedup) {
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

fn target(bucket: Option<&str>) -> Target {
    Target {
        queue_url: "q.fifo".into(),
        offload_bucket: bucket.map(str::to_string),
        table: "T".into(),
        sends_in_flight: SENDS_IN_FLIGHT,
    }
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

fn ids(q: &FakeQueue) -> Vec<String> {
    q.queue.lock().unwrap().iter().map(|(_, d, _)| d.clone()).collect()
}

#[tokio::test]
async fn batches_hold_ten_distinct_groups_in_stream_order() {
    let keys: Vec<String> = (0..25).map(|i| format!("k{i}")).collect();
    let recs: Vec<(String, &str)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (format!("e{i}"), k.as_str()))
        .collect();
    let recs: Vec<(&str, &str)> = recs.iter().map(|(e, k)| (e.as_str(), *k)).collect();
    let q = FakeQueue::default();
    let r = forward(&q, &target(None), &event(&recs, 10)).await.unwrap();
    assert_eq!(
        r,
        Forwarded {
            sent: 25,
            offloaded: 0,
            failed_at: None
        }
    );
    let sizes: Vec<usize> = q.calls.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(ids(&q), recs.iter().map(|(e, _)| e.to_string()).collect::<Vec<_>>());
    assert_eq!(r.lambda_response(), serde_json::json!({"batchItemFailures": []}));
}

#[tokio::test]
async fn a_key_seen_twice_ends_the_batch() {
    let q = FakeQueue::default();
    let recs = [("e1", "a"), ("e2", "b"), ("e3", "a"), ("e4", "c"), ("e5", "c")];
    forward(&q, &target(None), &event(&recs, 10)).await.unwrap();
    let calls = q.calls.lock().unwrap().clone();
    assert_eq!(calls, [vec!["e1", "e2"], vec!["e3", "e4"], vec!["e5"]]);
}

#[tokio::test]
async fn batches_stay_under_the_payload_limit() {
    let q = FakeQueue::default();
    let recs = [("e1", "a"), ("e2", "b"), ("e3", "c"), ("e4", "d")];
    // ~100 KB bodies: two fit in 256 KiB, three do not.
    forward(&q, &target(None), &event(&recs, 100_000)).await.unwrap();
    let sizes: Vec<usize> = q.calls.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2]);
}

#[tokio::test]
async fn a_failed_entry_is_reported_at_the_earliest_failure_and_nothing_is_lost_or_reordered() {
    let q = FakeQueue::default();
    // Hot keys: the same groups recur across batches.
    let recs: Vec<(String, String)> = (0..40).map(|i| (format!("e{i}"), format!("k{}", i % 7))).collect();
    let recs: Vec<(&str, &str)> = recs.iter().map(|(e, k)| (e.as_str(), k.as_str())).collect();
    q.fail_once
        .lock()
        .unwrap()
        .extend(["e3".to_string(), "e9".into(), "e30".into()]);
    let ev = event(&recs, 10);
    let first = forward(&q, &target(None), &ev).await.unwrap();
    assert_eq!(first.failed_at.as_deref(), Some("00004"), "e3 is the 4th record");
    assert_eq!(
        first.lambda_response(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "00004"}]})
    );
    let invocations = lambda_retries(&q, &target(None), &ev).await;
    assert!(invocations >= 3, "{invocations}");
    // Every record exactly once, and each group's records in stream order.
    let mut got = ids(&q);
    let mut want: Vec<String> = recs.iter().map(|(e, _)| e.to_string()).collect();
    for g in 0..7 {
        let of_group = |list: &[String]| -> Vec<String> {
            list.iter()
                .filter(|e| e[1..].parse::<usize>().unwrap() % 7 == g)
                .cloned()
                .collect()
        };
        assert_eq!(of_group(&got), of_group(&want), "group of k{g}");
    }
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_failed_call_is_reported_at_its_first_record() {
    let q = FakeQueue::default();
    *q.fail_calls.lock().unwrap() = 1;
    let r = forward(&q, &target(None), &event(&[("e1", "a"), ("e2", "b")], 10))
        .await
        .unwrap();
    assert_eq!((r.sent, r.failed_at.as_deref()), (0, Some("00001")));
    assert!(ids(&q).is_empty());
}

#[tokio::test]
async fn oversize_records_go_through_s3_first() {
    let q = FakeQueue::default();
    let recs = [("e1", "a"), ("e2", "b")];
    let r = forward(&q, &target(Some("bkt")), &event(&recs, 300_000)).await.unwrap();
    assert_eq!((r.sent, r.offloaded), (2, 2));
    let objects = q.objects.lock().unwrap().clone();
    assert_eq!(objects[0].0, "bkt");
    assert_eq!(objects[0].1, "ferry-offload/T/e1.json");
    let stored: Value = serde_json::from_slice(&objects[0].2).unwrap();
    assert_eq!(stored["eventID"], "e1");
    let body = q.queue.lock().unwrap()[0].2.clone();
    assert!(body.len() < 1000, "the message carries a pointer: {body}");
    assert!(body.contains("ferry-offload/T/e1.json"));

    // A failed PutObject is that record's failure; the record before it is still sent.
    let q = FakeQueue::default();
    *q.fail_puts.lock().unwrap() = 1;
    let mixed = serde_json::json!({"Records": [
        event(&[("e1", "a")], 10)["Records"][0].clone(),
        {"eventID": "e2", "dynamodb": {"Keys": {"pk": {"S": "b"}}, "SequenceNumber": "00002",
            "NewImage": {"pad": {"S": "y".repeat(300_000)}}}},
    ]});
    let r = forward(&q, &target(Some("bkt")), &mixed).await.unwrap();
    assert_eq!((r.sent, r.failed_at.as_deref()), (1, Some("00002")));
    assert_eq!(ids(&q), ["e1"]);

    // Without a bucket an oversize record is an error, not a silent drop.
    let err = forward(&FakeQueue::default(), &target(None), &event(&recs, 300_000))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("FERRY_OFFLOAD_BUCKET"), "{err}");
}

#[tokio::test]
async fn malformed_events_are_errors() {
    let q = FakeQueue::default();
    for bad in [
        serde_json::json!({}),
        serde_json::json!({"Records": [{"dynamodb": {"Keys": {"pk": {"S": "a"}}, "SequenceNumber": "1"}}]}),
        serde_json::json!({"Records": [{"eventID": "e", "dynamodb": {"Keys": {}, "SequenceNumber": "1"}}]}),
    ] {
        assert!(forward(&q, &target(None), &bad).await.is_err(), "{bad}");
    }
    assert!(q.calls.lock().unwrap().is_empty());
}

/// [`FakeQueue`] answering each call after `delay` (SQS's round trip), checking that calls in
/// flight at once never share a group, and counting how many overlap.
struct SlowQueue {
    q: FakeQueue,
    delay: std::time::Duration,
    groups_in_flight: Mutex<HashSet<String>>,
    /// (calls in flight now, most at once)
    calls: Mutex<(usize, usize)>,
}

impl SlowQueue {
    fn new(q: FakeQueue) -> SlowQueue {
        SlowQueue {
            q,
            delay: std::time::Duration::from_millis(10),
            groups_in_flight: Mutex::default(),
            calls: Mutex::default(),
        }
    }
}

impl Sender for SlowQueue {
    async fn send_batch(&self, queue: &str, entries: &[Entry]) -> Result<Vec<String>> {
        for e in entries {
            let fresh = self.groups_in_flight.lock().unwrap().insert(e.group.clone());
            assert!(fresh, "{}: its group is in another call in flight", e.dedup);
        }
        {
            let mut c = self.calls.lock().unwrap();
            c.0 += 1;
            c.1 = c.1.max(c.0);
        }
        tokio::time::sleep(self.delay).await;
        self.calls.lock().unwrap().0 -= 1;
        for e in entries {
            self.groups_in_flight.lock().unwrap().remove(&e.group);
        }
        self.q.send_batch(queue, entries).await
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
        self.q.put_object(bucket, key, body).await
    }
}

/// Each group's records in `got` in the order of `recs` (event ids `e<i>`, key `k<i % keys>`).
fn assert_each_group_in_stream_order(got: &[String], recs: &[(&str, &str)], keys: usize) {
    for g in 0..keys {
        let of_group = |list: Vec<&str>| -> Vec<String> {
            list.into_iter()
                .filter(|e| e[1..].parse::<usize>().unwrap() % keys == g)
                .map(str::to_string)
                .collect()
        };
        let want = of_group(recs.iter().map(|(e, _)| *e).collect());
        assert_eq!(
            of_group(got.iter().map(String::as_str).collect()),
            want,
            "group of k{g}"
        );
    }
}

fn cycling(n: usize, keys: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("e{i}"), format!("k{}", i % keys))).collect()
}

#[tokio::test(start_paused = true)]
async fn calls_over_distinct_keys_go_out_in_one_round_trip() {
    let recs = cycling(100, 100);
    let recs: Vec<(&str, &str)> = recs.iter().map(|(e, k)| (e.as_str(), k.as_str())).collect();
    let q = SlowQueue::new(FakeQueue::default());
    let started = tokio::time::Instant::now();
    let r = forward(&q, &target(None), &event(&recs, 10)).await.unwrap();
    assert_eq!((r.sent, r.failed_at), (100, None));
    assert_eq!(q.calls.lock().unwrap().1, SENDS_IN_FLIGHT, "ten calls at once");
    assert!(
        started.elapsed() < 2 * q.delay,
        "one round trip, not ten: {:?}",
        started.elapsed()
    );
    assert_each_group_in_stream_order(&ids(&q.q), &recs, 100);
}

#[tokio::test(start_paused = true)]
async fn a_hot_key_waits_for_its_call_in_flight_and_failures_lose_and_reorder_nothing() {
    // 23 keys: calls of 10, 10 and 3 keys, the next call shares groups with the first, and so on.
    let recs = cycling(120, 23);
    let recs: Vec<(&str, &str)> = recs.iter().map(|(e, k)| (e.as_str(), k.as_str())).collect();
    let q = SlowQueue::new(FakeQueue::default());
    q.q.fail_once
        .lock()
        .unwrap()
        .extend(["e5".to_string(), "e40".into(), "e41".into(), "e90".into()]);
    let ev = event(&recs, 10);
    let first = forward(&q, &target(None), &ev).await.unwrap();
    assert_eq!(first.failed_at.as_deref(), Some("00006"), "e5 is the 6th record");
    let invocations = lambda_retries(&q, &target(None), &ev).await;
    assert_eq!(invocations, 3, "e40 and e41 fail in one call, e90 in another");
    assert!(q.calls.lock().unwrap().1 > 1, "calls over distinct keys overlapped");
    let got = ids(&q.q);
    assert_each_group_in_stream_order(&got, &recs, 23);
    assert_eq!(got.len(), recs.len(), "each record once: {got:?}");
}

#[tokio::test(start_paused = true)]
async fn no_call_starts_after_a_failure() {
    // Three calls over distinct keys go out together; the first fails as a whole. The calls
    // already in flight finish, none starts after, and the batch is retried from its first record.
    let recs = cycling(60, 60);
    let recs: Vec<(&str, &str)> = recs.iter().map(|(e, k)| (e.as_str(), k.as_str())).collect();
    let q = SlowQueue::new(FakeQueue::default());
    *q.q.fail_calls.lock().unwrap() = 1;
    let r = forward(&q, &target(None), &event(&recs, 10)).await.unwrap();
    assert_eq!(r.failed_at.as_deref(), Some("00001"));
    assert_eq!(
        q.q.calls.lock().unwrap().len(),
        6,
        "all six were in flight before the failure came back"
    );

    let q = SlowQueue::new(FakeQueue::default());
    q.q.fail_once.lock().unwrap().insert("e3".into());
    let hot = cycling(60, 5);
    let hot: Vec<(&str, &str)> = hot.iter().map(|(e, k)| (e.as_str(), k.as_str())).collect();
    let r = forward(&q, &target(None), &event(&hot, 10)).await.unwrap();
    assert_eq!(r.failed_at.as_deref(), Some("00004"));
    // Each call of 5 keys shares them all with the next: only the failed first call was made.
    assert_eq!(q.q.calls.lock().unwrap().len(), 1);
    assert_eq!(ids(&q.q), ["e0", "e1", "e2", "e4"]);
}
