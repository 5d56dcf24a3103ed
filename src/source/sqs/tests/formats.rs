//! Packed messages and an older forwarder's, and polling a queue that, like moto, cannot see a
//! group freed during a long poll.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_packed_message_applies_its_records_in_order_and_a_format_1_message_is_read_from_the_source() {
    // A forwarder upgrade: the queue holds a packed message (a: v1..v3, b: v1) and, behind it in
    // another group, an older forwarder's one-record message of a's first change.
    let parts: Vec<String> = [("a", 1), ("b", 1), ("a", 2), ("a", 3)]
        .iter()
        .enumerate()
        .map(|(i, (k, v))| crate::source::sqs::message::inline_part(&record_of(k, *v, &format!("{:05}", i + 1))))
        .collect();
    let broker = Arc::new(Mutex::new(Broker {
        queue: vec![Msg::new(
            "packed",
            "T#3of5",
            crate::source::sqs::message::body("T", &parts),
        )],
        ..Default::default()
    }));
    // Queued once the packed message is settled (its keys no longer in flight), so only its
    // format tells the consumer it may be older than what was applied.
    let feed = broker.clone();
    let feeding = tokio::spawn(async move {
        while feed.lock().unwrap().deleted.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let legacy = json!({"table": "T", "record": record_of("a", 1, "00001")}).to_string();
        feed.lock().unwrap().queue.push(Msg::new("old", "T#a", legacy));
    });
    let dest = Dest {
        source: HashMap::from([("a".to_string(), 3), ("b".to_string(), 1)]),
        ..Default::default()
    };
    let r = run_until(broker, dest, 30, 2, |b| b.deleted.len() == 2).await;
    feeding.await.unwrap();
    let puts = r.dest.puts.lock().unwrap().clone();
    let of = |k: &str| -> Vec<i64> { puts.iter().filter(|(p, _)| p == k).map(|(_, v)| *v).collect() };
    assert!(of("a").is_sorted() && of("a").ends_with(&[3]), "{puts:?}");
    assert_eq!(of("b"), [1], "{puts:?}");
    assert_eq!(
        *r.dest.items.lock().unwrap(),
        HashMap::from([("a".to_string(), 3), ("b".to_string(), 1)])
    );
    assert_eq!(r.stats.records_read.load(std::sync::atomic::Ordering::Relaxed), 5);
}

#[tokio::test(start_paused = true)]
async fn a_group_ferry_frees_is_asked_for_again_without_a_long_poll_that_cannot_see_it() {
    // One group of 30 messages on a broker that, like moto, keeps a long poll's blocked groups
    // blocked to its end: each message is handed out only after ferry settles the one before, and
    // a long poll begun before that would sit out its whole wait.
    let queue = (1..=30)
        .map(|v| {
            let body = crate::source::sqs::message::inline_body("T", &record_of("a", v, &format!("{v:05}")));
            Msg::new(&format!("m{v}"), "g", body)
        })
        .collect();
    let broker = Arc::new(Mutex::new(Broker {
        queue,
        fixed_groups: true,
        ..Default::default()
    }));
    let dest = Dest {
        write_delay: Duration::from_millis(100),
        ..Default::default()
    };
    let r = run_until(broker, dest, 30, 1, |b| b.queue.is_empty()).await;
    let b = r.broker.lock().unwrap();
    assert_eq!(b.deleted.len(), 30);
    assert_eq!(b.blind_polls, 0, "long polls begun while ferry held the group");
    let puts = r.dest.puts.lock().unwrap().clone();
    assert_eq!(puts, (1..=30).map(|v| ("a".to_string(), v)).collect::<Vec<_>>());
}
