//! The SQS change buffer on the local rig: DynamoDB Local holds the tables and their streams, moto
//! holds the FIFO queue and the offload bucket. The forwarder function is fed real stream batches
//! read from DynamoDB Local (GetRecords → Lambda event JSON, with Lambda's retry rule), and
//! `ferry sync` with `change_source = "sqs"` runs as a child process. (moto hands a message to two
//! concurrent receivers at times, and redelivers a group out of order after a visibility timeout:
//! ferry settles both cases by reading the source; see `source::sqs::inflight`.)

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue as Av, StreamViewType};
use ferry::source::sqs::forwarder::{Entry, SdkSender, Sender, Target, queue_message_max};
use ferry_rig::data::{big_item, create_table, load, rich_item};
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::process::{FerryDir, terminate};
use ferry_rig::pump::{Pumped, pump};
use ferry_rig::wait::{wait_caught_up, wait_equal, wait_for};
use ferry_rig::workload::Workload;
use ferry_rig::{Account, DynamoLocal};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

struct Rig {
    src: aws_sdk_dynamodb::Client,
    dst: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    sender: SdkSender,
    target: Target,
    ferry: FerryDir,
    _dir: tempfile::TempDir,
}

/// A source "Orders" (NEW_AND_OLD_IMAGES) with `items` rich items, a fresh FIFO queue and bucket in
/// moto, and a ferry folder whose table reads the queue.
async fn setup(name: &str, items: i64, receivers: u32, extra_toml: &str) -> Rig {
    setup_sized(name, items, receivers, extra_toml, None).await
}

/// [`setup`] with a queue whose messages take at most `max_message_bytes`.
async fn setup_sized(name: &str, items: i64, receivers: u32, extra_toml: &str, max_message_bytes: Option<u32>) -> Rig {
    let ddb = DynamoLocal::shared();
    let moto = Moto::shared();
    let (sa, da) = (Account::fresh("src"), Account::fresh("dst"));
    let src = ddb.client(&sa);
    let dst = ddb.client(&da);
    let desc = create_table(&src, "Orders", Some(StreamViewType::NewAndOldImages)).await;
    let mut rng = StdRng::seed_from_u64(42);
    let seed: Vec<_> = (0..items)
        .map(|i| rich_item(&format!("seed-{}", i % 97), i, &mut rng))
        .collect();
    load(&src, "Orders", seed).await;
    let queue_url = moto
        .fifo_queue_sized(&format!("{name}{}", std::process::id()), 3, max_message_bytes)
        .await;
    let bucket = format!("offload-{name}-{}", std::process::id()).to_lowercase();
    moto.bucket(&bucket).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tables = format!(
        "[source.endpoints]\nsqs = \"{m}\"\ns3 = \"{m}\"\n\n[[table]]\nsource = \"Orders\"\nchange_source = \"sqs\"\n\
         queue_url = \"{queue_url}\"\nqueue_visibility_timeout_seconds = 3\nqueue_receivers = {receivers}\n{extra_toml}\n",
        m = moto.endpoint
    );
    let ferry = FerryDir::new(&ferry_bin!(), dir.path(), ddb, &sa, &da, &tables);
    let sender = SdkSender {
        sqs: moto.sqs_client(),
        s3: moto.s3_client(),
    };
    // As the Lambda does at a cold start.
    let message_max = queue_message_max(&sender.sqs, &queue_url).await;
    Rig {
        src,
        dst,
        streams: ddb.streams_client(&sa),
        stream_arn: desc.latest_stream_arn.expect("stream"),
        sender,
        target: Target {
            queue_url,
            message_max,
            offload_bucket: Some(bucket),
            table: "Orders".into(),
            // One call at a time, so the failed sends come in a repeatable order; the calls'
            // overlap is tested against a fake queue (`source::sqs::forwarder::tests::overlap`).
            sends_in_flight: 1,
            groups: ferry::source::sqs::message::GROUPS,
        },
        ferry,
        _dir: dir,
    }
}

/// Delegates to the real moto clients, but fails every `every`-th entry it sees, once.
struct FlakySender {
    inner: SdkSender,
    every: u64,
    seen: AtomicU64,
    failed: Mutex<HashSet<String>>,
}

impl Sender for FlakySender {
    async fn send_batch(&self, queue_url: &str, entries: &[Entry]) -> ferry::Result<Vec<String>> {
        let mut pass = Vec::new();
        let mut failed_ids = Vec::new();
        for e in entries {
            let n = self.seen.fetch_add(1, Relaxed) + 1;
            if n.is_multiple_of(self.every) && self.failed.lock().unwrap().insert(e.dedup.clone()) {
                failed_ids.push(e.id.clone());
            } else {
                pass.push(e.clone());
            }
        }
        let mut failed = if pass.is_empty() {
            Vec::new()
        } else {
            self.inner.send_batch(queue_url, &pass).await?
        };
        failed.extend(failed_ids);
        Ok(failed)
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> ferry::Result<()> {
        self.inner.put_object(bucket, key, body).await
    }
}

fn start_pump<S: Sender + 'static>(rig: &Rig, sender: S, stop: CancellationToken) -> tokio::task::JoinHandle<Pumped> {
    let (streams, arn, target) = (rig.streams.clone(), rig.stream_arn.clone(), rig.target.clone());
    tokio::spawn(async move { pump(&streams, &arn, &sender, &target, 100, stop).await.expect("pump") })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqs_buffer_converges_under_a_random_workload_with_kill_9_restarts_and_failed_sends() {
    let rig = setup("kill", 1_000, 4, "scan_segments = 4\nwrite_concurrency = 8\n").await;
    // The forwarder is deployed before the snapshot starts.
    let pump_stop = CancellationToken::new();
    let flaky = FlakySender {
        inner: rig.sender.clone(),
        every: 97,
        seen: AtomicU64::new(0),
        failed: Mutex::new(HashSet::new()),
    };
    let pumping = start_pump(&rig, flaky, pump_stop.clone());
    let stop = CancellationToken::new();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    wl.pause = Duration::from_millis(3);
    let writes = wl.spawn(stop.clone());
    // Kills at random points of the snapshot, then while the queue is drained.
    let mut rng = StdRng::seed_from_u64(std::process::id() as u64);
    for _ in 0..2 {
        let mut child = rig.ferry.spawn_sync(&[]);
        tokio::time::sleep(Duration::from_millis(rand::Rng::random_range(&mut rng, 700..2_000))).await;
        child.kill().expect("kill -9");
        child.wait().unwrap();
    }
    let mut child = rig.ferry.spawn_sync(&[]);
    wait_for(
        Duration::from_secs(120),
        "draining the queue",
        || rig.ferry.logs(),
        || async { (rig.ferry.table_status("Orders")?["phase"] == "streaming").then_some(()) },
    )
    .await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(rand::Rng::random_range(&mut rng, 500..2_000))).await;
        child.kill().expect("kill -9");
        child.wait().unwrap();
        child = rig.ferry.spawn_sync(&[]);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    let counts = writes.await.unwrap().expect("workload");
    assert!(counts.total() > 100, "the workload made {} writes", counts.total());
    pump_stop.cancel();
    let pumped = pumping.await.unwrap();
    assert!(
        pumped.partial_failures > 0,
        "some sends failed and were retried: {pumped:?}"
    );
    assert!(pumped.records as u64 >= counts.total(), "{pumped:?} {}", counts.total());
    wait_for(
        Duration::from_secs(120),
        "the queue drained",
        || {
            let out = rig.ferry.run(&["status", "-c", "ferry.toml"]);
            format!(
                "{}\nstatus: {}{}",
                rig.ferry.logs(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        },
        || async {
            let t = rig.ferry.table_status("Orders")?;
            (t["caught_up"] == true && t["queue"]["depth"] == 0).then_some(())
        },
    )
    .await;
    wait_equal(&rig.src, "Orders", &rig.dst, "Orders", Duration::from_secs(60), || {
        rig.ferry.logs()
    })
    .await;
    let t = rig.ferry.table_status("Orders").unwrap();
    assert!(t["records_applied"].as_i64().unwrap() > 0, "{t}");
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", rig.ferry.logs());
}

#[tokio::test]
async fn the_forwarder_reads_the_queues_message_size() {
    let moto = Moto::shared();
    let sqs = moto.sqs_client();
    let id = std::process::id();
    let default = moto.fifo_queue(&format!("size{id}"), 30).await;
    let small = moto.fifo_queue_sized(&format!("small{id}"), 30, Some(64 * 1024)).await;
    assert_eq!(queue_message_max(&sqs, &default).await, 1024 * 1024);
    assert_eq!(queue_message_max(&sqs, &small).await, 64 * 1024);
    // Unreadable (here: no such queue): the 256 KiB every queue took before 2025.
    let gone = default.replace(&format!("size{id}"), &format!("gone{id}"));
    assert_eq!(queue_message_max(&sqs, &gone).await, 256 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversize_record_goes_through_s3_and_arrives_intact() {
    // A queue of 256 KiB messages (the default before 2025), read by the forwarder as its limit:
    // a ~390 KB item's records do not fit a message (on a 1 MiB queue they would).
    let rig = setup_sized("big", 50, 4, "snapshot = \"none\"\n", Some(256 * 1024)).await;
    assert_eq!(rig.target.message_max, 256 * 1024);
    let pump_stop = CancellationToken::new();
    let pumping = start_pump(&rig, rig.sender.clone(), pump_stop.clone());
    let mut child = rig.ferry.spawn_sync(&[]);
    let mut rng = StdRng::seed_from_u64(9);
    // Insert, then modify: the second record carries two ~390 KB images.
    load(&rig.src, "Orders", vec![big_item("big", 1, 390, &mut rng)]).await;
    let mut changed = big_item("big", 1, 390, &mut rng);
    changed.insert("version".into(), Av::N("2".into()));
    rig.src
        .put_item()
        .table_name("Orders")
        .set_item(Some(changed))
        .send()
        .await
        .unwrap();
    pump_stop.cancel();
    let pumped = pumping.await.unwrap();
    assert!(pumped.offloaded >= 2, "{pumped:?}");
    let objects = rig
        .sender
        .s3
        .list_objects_v2()
        .bucket(rig.target.offload_bucket.as_deref().unwrap())
        .prefix("ferry-offload/Orders/")
        .send()
        .await
        .unwrap();
    assert!(objects.key_count().unwrap_or(0) >= 2, "{objects:?}");
    wait_caught_up(&rig.ferry, "Orders", Duration::from_secs(60)).await;
    // snapshot = "none": everything in the destination went through the queue (the seed items'
    // stream records are forwarded too).
    wait_equal(&rig.src, "Orders", &rig.dst, "Orders", Duration::from_secs(60), || {
        rig.ferry.logs()
    })
    .await;
    let get = |c: aws_sdk_dynamodb::Client| async move {
        c.get_item()
            .table_name("Orders")
            .set_key(Some(ferry_rig::data::key_of("big", 1)))
            .send()
            .await
            .unwrap()
            .item
            .expect("the big item")
    };
    let (got, want) = (get(rig.dst.clone()).await, get(rig.src.clone()).await);
    // (Not assert_eq: a failure would print 390 KB.)
    assert!(got == want, "the big item differs");
    assert_eq!(got["version"], Av::N("2".into()));
    assert!(ferry::item::size_of(&got) > 380_000);
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", rig.ferry.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_point_in_the_middle_of_the_queue_drops_exactly_the_records_before_it() {
    // One receiver: moto's ReceiveMessage is not atomic, and two concurrent receivers can both get
    // one message (at-least-once, harmless for the data, but these counts are exact).
    let rig = setup("replay", 0, 1, "").await;
    create_table(&rig.dst, "Orders", None).await;
    // 40 changes of 40 keys, one minute apart, forwarded as the Lambda would.
    let t0 = 1_700_000_000.0f64;
    let records: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            let key = serde_json::json!({"pk": {"S": format!("k{i}")}, "sk": {"N": "1"}});
            let mut image = key.clone();
            image["v"] = serde_json::json!({"N": i.to_string()});
            serde_json::json!({"eventID": format!("ev-{i}"), "eventName": "INSERT", "dynamodb": {
                "ApproximateCreationDateTime": t0 + 60.0 * i as f64, "Keys": key, "NewImage": image,
                "SequenceNumber": format!("{:021}", i + 1), "SizeBytes": 40, "StreamViewType": "NEW_AND_OLD_IMAGES"}})
        })
        .collect();
    let done =
        ferry::source::sqs::forwarder::forward(&rig.sender, &rig.target, &serde_json::json!({ "Records": records }))
            .await
            .unwrap();
    assert_eq!((done.sent, done.failed_at), (40, None));
    // The replay point is record 25's time: as `ferry checkpoint set --at` leaves it.
    let replay_from = ((t0 + 60.0 * 25.0) * 1000.0) as i64;
    {
        std::fs::create_dir_all(rig.ferry.dir.join("state")).unwrap();
        let store = ferry::checkpoint::Store::open(&rig.ferry.dir.join("state/ferry.db")).unwrap();
        let mut row = ferry::checkpoint::TableRow::new("Orders", "Orders");
        row.capture_ms = Some(ferry::clock::now_ms());
        row.stream_arn = Some(rig.stream_arn.clone());
        row.snapshot_done = true;
        store.put_table(&row).unwrap();
        assert!(store.set_replay_from("Orders", replay_from).unwrap());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = rig.ferry.spawn_sync(&["--metrics", &addr]);
    wait_caught_up(&rig.ferry, "Orders", Duration::from_secs(60)).await;
    let t = wait_for(
        Duration::from_secs(30),
        "the queue drained",
        || rig.ferry.logs(),
        || async {
            let t = rig.ferry.table_status("Orders")?;
            let q = &t["queue"];
            (q["dropped"] == 25 && q["depth"] == 0 && q["in_flight"] == 0 && t["records_applied"] == 15).then_some(t)
        },
    )
    .await;
    assert_eq!(t["queue"]["url"], rig.target.queue_url.as_str(), "{t}");
    let items = rig
        .dst
        .scan()
        .table_name("Orders")
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let mut keys: Vec<i64> = items
        .iter()
        .map(|i| i["pk"].as_s().unwrap()[1..].parse().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, (25..40).collect::<Vec<_>>());
    // The same figures in /metrics.
    let metrics = wait_for(
        Duration::from_secs(10),
        "queue metrics",
        || rig.ferry.logs(),
        || async {
            let body = http_get(&addr, "/metrics");
            (body.contains("ferry_records_dropped_total{table=\"Orders\"} 25")
                && body.contains("ferry_queue_depth{table=\"Orders\"} 0"))
            .then_some(body)
        },
    )
    .await;
    assert!(
        metrics.contains("ferry_records_applied_total{table=\"Orders\"} 15"),
        "{metrics}"
    );
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", rig.ferry.logs());
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
