//! A live sync through fault-injecting proxies (`ferry_rig::faults`) on both sides: throttles,
//! 500s with unknown codes, empty 503s, connection resets, slow answers and partial BatchWriteItem
//! results during the snapshot and while streaming, then a 3-minute outage of the destination.
//! ferry must never exit, must show the table as `retrying` in `ferry status --json` and
//! `/metrics` while the outage lasts, and must end with equal tables. SIGTERM during an outage
//! (of either side, in either phase) must end it cleanly within 10 s.

use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::StreamViewType;
use ferry_rig::bench::{free_port, http_get, metric};
use ferry_rig::data::{create_table, enable_stream, load, rich_item};
use ferry_rig::faults::proxy::FaultProxy;
use ferry_rig::faults::{Fault, Rule};
use ferry_rig::ferry_bin;
use ferry_rig::process::{FerryDir, Running, terminate};
use ferry_rig::wait::{wait_caught_up, wait_equal, wait_for};
use ferry_rig::workload::{Counts, Workload};
use ferry_rig::{Account, DynamoLocal};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The length of the destination outage the acceptance asks for.
const OUTAGE: Duration = Duration::from_secs(180);

struct Rig {
    src: aws_sdk_dynamodb::Client,
    dst: aws_sdk_dynamodb::Client,
    src_proxy: FaultProxy,
    dst_proxy: FaultProxy,
    ferry: FerryDir,
    _dir: tempfile::TempDir,
}

/// A source table "Orders" of `items` rich items with a stream, two proxies in front of DynamoDB
/// Local (one per side) and a ferry folder whose endpoints are the proxies.
async fn setup(items: i64, table_toml: &str) -> Rig {
    let ddb = DynamoLocal::shared();
    let (sa, da) = (Account::fresh("src"), Account::fresh("dst"));
    let src = ddb.client(&sa);
    let dst = ddb.client(&da);
    create_table(&src, "Orders", None).await;
    let mut rng = StdRng::seed_from_u64(5);
    load(
        &src,
        "Orders",
        (0..items)
            .map(|i| rich_item(&format!("seed-{}", i % 97), i, &mut rng))
            .collect(),
    )
    .await;
    enable_stream(&src, "Orders", StreamViewType::NewAndOldImages).await;
    let src_proxy = FaultProxy::start(&ddb.endpoint).await;
    let dst_proxy = FaultProxy::start(&ddb.endpoint).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[source]\nprofile = \"src\"\nendpoint_url = \"{}\"\n\n[destination]\nprofile = \"dst\"\nendpoint_url = \"{}\"\n\n\
         [state]\npath = \"state/ferry.db\"\n\n{table_toml}\n",
        src_proxy.endpoint, dst_proxy.endpoint
    );
    let ferry = FerryDir::custom(&ferry_bin!(), dir.path(), &sa, &da, &config);
    Rig {
        src,
        dst,
        src_proxy,
        dst_proxy,
        ferry,
        _dir: dir,
    }
}

impl Rig {
    /// The sync logs and what each proxy injected, for failure messages.
    fn context(&self) -> String {
        format!(
            "source proxy: {}\ndestination proxy: {}\n{}",
            self.src_proxy.report(),
            self.dst_proxy.report(),
            self.ferry.logs()
        )
    }

    /// The table's status; panics if ferry exited or the table stopped (neither may happen here).
    fn status_alive(&self, child: &Mutex<Running>, doing: &str) -> Value {
        if let Some(s) = child.lock().unwrap().try_wait().expect("try_wait") {
            panic!("ferry sync exited ({s}) while {doing}\n{}", self.context());
        }
        let t = self.ferry.table_status("Orders").unwrap_or(Value::Null);
        if t["phase"] == "stopped" {
            panic!("the table stopped while {doing}: {}\n{}", t["error"], self.context());
        }
        t
    }
}

/// Every kind of request fault, once each (in this order) on the next requests for `op`, plus a
/// slow answer; `Next` rules make each one certain to happen.
fn each_fault_once(proxy: &FaultProxy, op: &str) {
    for f in [Fault::Throttle, Fault::Unknown500, Fault::Empty503, Fault::Reset] {
        proxy.add(Rule::new(f).on(op).next(1));
    }
    proxy.add(Rule::delay(Duration::from_millis(1_500)).on(op).next(1));
}

fn assert_each_fault_once(proxy: &FaultProxy, op: &str, side: &str, context: impl Fn() -> String) {
    for f in [
        Fault::Throttle,
        Fault::Unknown500,
        Fault::Empty503,
        Fault::Reset,
        Fault::Delay,
    ] {
        assert!(
            proxy.injected_on(f, op) >= 1,
            "{side}: no {f:?} injected on {op}\n{}",
            context()
        );
    }
}

/// SIGTERM, then the exit status, which must come within 10 s.
async fn terminate_within_10s(rig: &Rig, child: &Mutex<Running>, when: &str) -> ExitStatus {
    terminate(&child.lock().unwrap());
    wait_for(
        Duration::from_secs(10),
        &format!("ferry sync to exit after SIGTERM {when}"),
        || rig.context(),
        || async { child.lock().unwrap().try_wait().expect("try_wait") },
    )
    .await
}

async fn metrics(addr: &str) -> String {
    http_get(addr, "/metrics").await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_on_both_sides_and_a_3_minute_destination_outage_never_stop_the_sync() {
    let rig = setup(
        3_000,
        "[[table]]\nsource = \"Orders\"\nscan_segments = 16\nwrite_concurrency = 4\n",
    )
    .await;
    let ctx = || rig.context();

    // Snapshot: every fault on the source's Scan and the destination's BatchWriteItem, and a
    // quarter of the destination's batches only partly written. (ferry's start-up never scans
    // the source nor batch-writes, so these land in the snapshot.)
    each_fault_once(&rig.src_proxy, "Scan");
    each_fault_once(&rig.dst_proxy, "BatchWriteItem");
    rig.dst_proxy.add(Rule::new(Fault::PartialBatch).probability(0.25));
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Mutex::new(rig.ferry.spawn_sync(&["--metrics", &addr]));
    wait_for(Duration::from_secs(180), "streaming phase", ctx, || async {
        (rig.status_alive(&child, "snapshotting under faults")["phase"] == "streaming").then_some(())
    })
    .await;
    assert_each_fault_once(&rig.src_proxy, "Scan", "source", ctx);
    assert_each_fault_once(&rig.dst_proxy, "BatchWriteItem", "destination", ctx);
    assert!(rig.dst_proxy.injected(Fault::PartialBatch) >= 1, "{}", ctx());
    let t = rig.status_alive(&child, "starting to stream");
    assert_eq!(t["snapshot"]["done"], true, "{t}");

    // Streaming: writes on the source; every fault again on GetRecords and BatchWriteItem.
    let stop = CancellationToken::new();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    (wl.writers, wl.pause) = (2, Duration::from_millis(50));
    let counts = Arc::new(Counts::default());
    let writes = tokio::spawn({
        let (stop, counts) = (stop.clone(), counts.clone());
        async move { wl.run_counting(stop, None, counts).await }
    });
    each_fault_once(&rig.src_proxy, "GetRecords");
    each_fault_once(&rig.dst_proxy, "BatchWriteItem");
    let applied = |t: &Value| t["records_applied"].as_i64().unwrap_or(0);
    let applied_before = applied(&t);
    wait_for(
        Duration::from_secs(120),
        "stream faults injected and 300 records applied",
        ctx,
        || async {
            let t = rig.status_alive(&child, "streaming under faults");
            let faults_done = [
                Fault::Throttle,
                Fault::Unknown500,
                Fault::Empty503,
                Fault::Reset,
                Fault::Delay,
            ]
            .iter()
            .all(|f| {
                rig.src_proxy.injected_on(*f, "GetRecords") >= 1 && rig.dst_proxy.injected_on(*f, "BatchWriteItem") >= 2
            });
            (faults_done && applied(&t) >= applied_before + 300).then_some(())
        },
    )
    .await;

    // The destination goes away for 3 minutes while the source keeps changing.
    rig.dst_proxy.clear();
    rig.dst_proxy.outage_for(OUTAGE);
    let t = wait_for(
        Duration::from_secs(60),
        "status --json to show retrying",
        ctx,
        || async {
            let t = rig.status_alive(&child, "the destination is down");
            (t["retrying"] == true).then_some(t)
        },
    )
    .await;
    let mut last_secs = t["retrying_seconds"].as_f64().unwrap_or(-1.0);
    let first_secs = last_secs;
    let mut checks = 0;
    // Checked until shortly before the end, so a check never races the recovery.
    while rig.dst_proxy.outage_left() > Duration::from_secs(5) {
        let t = rig.status_alive(&child, "the destination is down");
        assert_eq!(t["retrying"], true, "status during the outage: {t}\n{}", ctx());
        let secs = t["retrying_seconds"]
            .as_f64()
            .unwrap_or_else(|| panic!("retrying_seconds: {t}"));
        assert!(
            secs >= last_secs,
            "retrying_seconds went back from {last_secs} to {secs}: {t}"
        );
        last_secs = secs;
        let err = t["last_error"].as_str().unwrap_or_default();
        assert!(!err.is_empty(), "no last_error while retrying: {t}");
        let text = rig.ferry.run(&["status", "-c", "ferry.toml"]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("retrying for "), "text status during the outage: {text}");
        let body = metrics(&addr).await;
        assert_eq!(metric(&body, "ferry_retrying", "Orders"), Some(1.0), "{body}");
        assert!(
            metric(&body, "ferry_retrying_seconds", "Orders").is_some_and(|s| s > 0.0),
            "{body}"
        );
        checks += 1;
        // Pacing of the checks over the outage's fixed length (not a wait for a state).
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert!(
        last_secs > first_secs,
        "retrying_seconds never grew ({first_secs} -> {last_secs})"
    );
    assert!(checks >= 10, "only {checks} checks during the outage");
    assert!(rig.dst_proxy.injected(Fault::Outage) >= 10, "{}", ctx());

    // Back: the table recovers by itself, and the status and metrics say so.
    wait_for(
        Duration::from_secs(120),
        "retrying to clear after the outage",
        ctx,
        || async {
            let t = rig.status_alive(&child, "recovering from the outage");
            (t["retrying"] == false).then_some(())
        },
    )
    .await;
    let t = rig.status_alive(&child, "recovered");
    assert!(t["retrying_seconds"].is_null(), "{t}");
    stop.cancel();
    writes.await.unwrap().expect("workload");
    wait_caught_up(&rig.ferry, "Orders", Duration::from_secs(180)).await;
    let body = metrics(&addr).await;
    assert_eq!(metric(&body, "ferry_retrying", "Orders"), Some(0.0), "{body}");
    let diff = wait_equal(&rig.src, "Orders", &rig.dst, "Orders", Duration::from_secs(90), ctx).await;
    assert!(diff.source_items > 3_000, "{diff}");
    eprintln!(
        "faults injected: source {}; destination {}",
        rig.src_proxy.report(),
        rig.dst_proxy.report()
    );

    let status = terminate_within_10s(&rig, &child, "after the run").await;
    assert!(status.success(), "ferry sync exited with {status}\n{}", ctx());
}

/// Starts `ferry sync` and waits until this run reads the stream (the phase in the state store may
/// be a previous run's, and start-up calls are not what these outages are about).
async fn spawn_streaming(rig: &Rig) -> Mutex<Running> {
    let before = rig.src_proxy.forwarded("GetRecords");
    let child = Mutex::new(rig.ferry.spawn_sync(&[]));
    wait_for(
        Duration::from_secs(120),
        "this run to read the stream",
        || rig.context(),
        || async {
            rig.status_alive(&child, "starting to stream");
            (rig.src_proxy.forwarded("GetRecords") >= before + 2).then_some(())
        },
    )
    .await;
    child
}

/// Takes `proxy`'s side down, waits until ferry has run into it, sends SIGTERM and expects a
/// clean exit within 10 s; the side comes back afterwards.
async fn sigterm_during_outage(rig: &Rig, child: Mutex<Running>, proxy: &FaultProxy, when: &str) {
    let before = proxy.injected(Fault::Outage);
    proxy.outage_for(Duration::from_secs(600));
    wait_for(
        Duration::from_secs(60),
        &format!("requests to hit the outage {when}"),
        || rig.context(),
        || async {
            rig.status_alive(&child, &format!("down {when}"));
            (proxy.injected(Fault::Outage) >= before + 5).then_some(())
        },
    )
    .await;
    let status = terminate_within_10s(rig, &child, &format!("during an outage {when}")).await;
    assert!(
        status.success(),
        "exit status {status} after SIGTERM {when}\n{}",
        rig.context()
    );
    proxy.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_an_outage_of_either_side_exits_cleanly_within_10_s() {
    // A write budget stretches the snapshot so the first outage lands in it.
    let rig = setup(
        3_000,
        "[[table]]\nsource = \"Orders\"\nscan_segments = 4\nwrite_concurrency = 4\nmax_write_units_per_second = 300\n",
    )
    .await;
    let ctx = || rig.context();
    let phase = |child: &Mutex<Running>| rig.status_alive(child, "starting")["phase"].clone();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    (wl.writers, wl.pause) = (1, Duration::from_millis(20));

    // 1. The destination goes down during the snapshot.
    let child = Mutex::new(rig.ferry.spawn_sync(&[]));
    wait_for(Duration::from_secs(60), "snapshot phase", ctx, || async {
        (phase(&child) == "snapshot").then_some(())
    })
    .await;
    sigterm_during_outage(&rig, child, &rig.dst_proxy, "of the destination in the snapshot").await;
    let t = rig.ferry.table_status("Orders").unwrap();
    assert_ne!(t["snapshot"]["done"], true, "the snapshot ended before the outage: {t}");

    // 2. The source goes down while streaming.
    let child = spawn_streaming(&rig).await;
    wl.run(CancellationToken::new(), Some(200)).await.expect("workload");
    sigterm_during_outage(&rig, child, &rig.src_proxy, "of the source while streaming").await;

    // 3. The destination goes down while streaming, with changes to apply.
    let child = spawn_streaming(&rig).await;
    wl.seed = 8;
    let writes = tokio::spawn({
        let wl = wl.clone();
        async move { wl.run(CancellationToken::new(), Some(200)).await }
    });
    sigterm_during_outage(&rig, child, &rig.dst_proxy, "of the destination while streaming").await;
    writes.await.unwrap().expect("workload");

    // 4. Nothing was lost: a clean run catches up to an equal table.
    let child = Mutex::new(rig.ferry.spawn_sync(&[]));
    wait_caught_up(&rig.ferry, "Orders", Duration::from_secs(120)).await;
    wait_equal(&rig.src, "Orders", &rig.dst, "Orders", Duration::from_secs(60), ctx).await;
    let status = terminate_within_10s(&rig, &child, "after the run").await;
    assert!(status.success(), "exit status {status}\n{}", ctx());
}
