//! Calls in flight at once, against a queue with a round trip: they overlap across groups, never
//! within one, and none starts once a failure is known.

use std::collections::HashSet;
use std::sync::Mutex;

use super::*;

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
            assert!(fresh, "{}: its group is in another call in flight", e.group);
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

#[tokio::test(start_paused = true)]
async fn calls_over_distinct_groups_go_out_in_one_round_trip() {
    distinct_groups(100);
    let recs = cycling(100, 100);
    let q = SlowQueue::new(FakeQueue::default());
    let started = tokio::time::Instant::now();
    let r = forward(&q, &target(None, MANY), &event(&refs(&recs), 10))
        .await
        .unwrap();
    assert_eq!((r.sent, r.messages, r.failed_at), (100, 100, None));
    assert_eq!(q.calls.lock().unwrap().1, SENDS_IN_FLIGHT, "ten calls at once");
    assert!(
        started.elapsed() < 2 * q.delay,
        "one round trip, not ten: {:?}",
        started.elapsed()
    );
    assert_converges(&ids(&q.q), 100, 100);
}

#[tokio::test(start_paused = true)]
async fn a_group_waits_for_its_call_in_flight_and_failures_lose_and_reorder_nothing() {
    // Five keys of ~60 KB records: each key's records are three messages, one call each; a key's
    // next call waits for its previous one.
    distinct_groups(5);
    let recs = cycling(60, 5);
    let q = SlowQueue::new(FakeQueue::default());
    q.q.fail_once
        .lock()
        .unwrap()
        .extend(["e6".to_string(), "e42".into(), "e43".into()]);
    let ev = event(&refs(&recs), 60_000);
    let t = target(None, MANY);
    let first = forward(&q, &t, &ev).await.unwrap();
    assert_eq!(first.failed_at.as_deref(), Some("00002"), "e6's message starts at e1");
    let invocations = lambda_retries(&q, &t, &ev).await;
    assert!(invocations >= 2, "{invocations}");
    assert!(q.calls.lock().unwrap().1 > 1, "calls of distinct groups overlapped");
    assert_converges(&ids(&q.q), 60, 5);
}

#[tokio::test(start_paused = true)]
async fn no_call_starts_after_a_failure() {
    // Six calls over distinct groups go out together; the first fails as a whole. The calls
    // already in flight finish, none starts after, and the batch is retried from its first record.
    distinct_groups(60);
    let recs = cycling(60, 60);
    let q = SlowQueue::new(FakeQueue::default());
    *q.q.fail_calls.lock().unwrap() = 1;
    let r = forward(&q, &target(None, MANY), &event(&refs(&recs), 10))
        .await
        .unwrap();
    assert_eq!(r.failed_at.as_deref(), Some("00001"));
    assert_eq!(
        q.q.calls.lock().unwrap().len(),
        6,
        "all six were in flight before the failure came back"
    );

    // Five keys' first messages go out together and the first answered fails: each key's second
    // message waits for its first, and none starts once the failure is known.
    distinct_groups(5);
    let q = SlowQueue::new(FakeQueue::default());
    q.q.fail_once.lock().unwrap().insert("e0".into());
    let hot = cycling(60, 5);
    let r = forward(&q, &target(None, MANY), &event(&refs(&hot), 60_000))
        .await
        .unwrap();
    assert_eq!(r.failed_at.as_deref(), Some("00001"));
    assert_eq!(q.q.calls.lock().unwrap().len(), 5, "only the first message of each key");
    assert_eq!(r.messages, 4);
}
