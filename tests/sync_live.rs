//! Live migrations on the local rig: two accounts in one DynamoDB Local, `ferry sync` as a child
//! process, a concurrent random workload, and a full-content comparison at the end.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::StreamViewType;
use ferry_rig::DynamoLocal;
use ferry_rig::ferry_bin;
use ferry_rig::process::{FerryDir, terminate};
use ferry_rig::scenario::{Scenario, Stream};
use ferry_rig::wait::{wait_caught_up, wait_equal, wait_for};
use ferry_rig::workload::{Counts, Workload};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

/// A source table "Orders" with `items` rich items plus one ~390 KB item, and a ferry folder. The
/// stream is turned on after the load, so only the snapshot can copy those items.
async fn setup(items: i64, table_toml: &str) -> Scenario {
    Scenario::setup(ferry_bin!())
        .stream(Stream::AfterLoad(StreamViewType::NewAndOldImages))
        .items(items, 42)
        .keys("seed-", 97)
        .big_item()
        .tables(table_toml)
        .build()
        .await
}

fn phase(f: &FerryDir) -> Option<String> {
    f.table_status("Orders")
        .and_then(|t| t["phase"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_sync_copies_every_type_and_indexes_under_concurrent_writes() {
    let rig = setup(3_000, "[[table]]\nsource = \"Orders\"\nscan_segments = 4\n").await;
    let stop = CancellationToken::new();
    let wl = Workload::new(rig.src.clone(), "Orders");
    let counts = Arc::new(Counts::default());
    let writes = tokio::spawn({
        let (stop, counts) = (stop.clone(), counts.clone());
        async move { wl.run_counting(stop, None, counts).await }
    });
    // Writes run during the scan and after it.
    wait_for(
        Duration::from_secs(60),
        "first workload writes",
        String::new,
        || async { (counts.total() >= 100).then_some(()) },
    )
    .await;
    let mut child = rig.ferry.spawn_sync(&[]);
    wait_for(
        Duration::from_secs(120),
        "streaming phase",
        || rig.ferry.logs(),
        || async { (phase(&rig.ferry).as_deref() == Some("streaming")).then_some(()) },
    )
    .await;
    let streaming_at = counts.total();
    wait_for(
        Duration::from_secs(120),
        "1,000 writes while streaming",
        String::new,
        || async { (counts.total() >= streaming_at + 1_000).then_some(()) },
    )
    .await;
    stop.cancel();
    writes.await.unwrap().expect("workload");
    wait_caught_up(&rig.ferry, "Orders", Duration::from_secs(120)).await;
    let diff = wait_equal(&rig.src, "Orders", &rig.dst, "Orders", Duration::from_secs(60), || {
        rig.ferry.logs()
    })
    .await;
    assert!(diff.source_items > 1_000);

    // The destination was created with the source's indexes.
    let d = rig
        .dst
        .describe_table()
        .table_name("Orders")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let gsi = &d.global_secondary_indexes()[0];
    assert_eq!(gsi.index_name(), Some("by_group"));
    assert_eq!(gsi.key_schema().len(), 2);
    let lsi = &d.local_secondary_indexes()[0];
    assert_eq!(lsi.index_name(), Some("by_label"));
    assert_eq!(
        lsi.projection().unwrap().non_key_attributes(),
        ["n_precise".to_string()]
    );

    // SIGTERM: drain, flush, exit 0; the status keeps what was done.
    terminate(&child);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "ferry sync exited with {status}\n{}",
        rig.ferry.logs()
    );
    let t = rig.ferry.table_status("Orders").unwrap();
    assert_eq!(t["snapshot"]["done"], true);
    assert!(t["records_applied"].as_i64().unwrap() > 0, "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_points_loses_nothing_and_progress_carries_over() {
    // A rate limit stretches the scan so kills land in it. Between kills the operator also edits
    // scan_segments: a resumed snapshot must keep splitting the table as it started, or the
    // saved positions would skip items.
    let rig = setup(
        12_000,
        "[[table]]\nsource = \"Orders\"\nscan_segments = 4\nmax_write_units_per_second = 4000\nwrite_concurrency = 4\n",
    )
    .await;
    let stop = CancellationToken::new();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    wl.pause = Duration::from_millis(5);
    let writes = wl.spawn(stop.clone());
    let mut rng = StdRng::seed_from_u64(std::process::id() as u64);
    let mut last_items = 0i64;
    let mut last_applied = 0i64;
    let mut kills_in = std::collections::BTreeMap::<String, u32>::new();
    for round in 0..6 {
        let config = std::fs::read_to_string(&rig.ferry.config).unwrap();
        let (from, to) = if round % 2 == 0 {
            ("= 4\n", "= 7\n")
        } else {
            ("= 7\n", "= 4\n")
        };
        std::fs::write(
            &rig.ferry.config,
            config.replacen(&format!("scan_segments {from}"), &format!("scan_segments {to}"), 1),
        )
        .unwrap();
        let mut child = rig.ferry.spawn_sync(&[]);
        // Kill only after this run saved progress of its own (or reached streaming), then at a
        // random moment.
        wait_for(
            Duration::from_secs(60),
            "snapshot progress",
            || rig.ferry.logs(),
            || async {
                let t = rig.ferry.table_status("Orders")?;
                let items = t["snapshot"]["items_copied"].as_i64().unwrap_or(0);
                (items > last_items || t["phase"] == "streaming").then_some(())
            },
        )
        .await;
        let wait_ms = rand::Rng::random_range(&mut rng, 0..400);
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        child.kill().expect("kill -9");
        child.wait().unwrap();
        let Some(t) = rig.ferry.table_status("Orders") else {
            continue;
        };
        let items = t["snapshot"]["items_copied"].as_i64().unwrap_or(0);
        let applied = t["records_applied"].as_i64().unwrap_or(0);
        assert!(
            items >= last_items,
            "round {round}: snapshot progress went back from {last_items} to {items}"
        );
        assert!(
            applied >= last_applied,
            "round {round}: applied went back from {last_applied} to {applied}"
        );
        (last_items, last_applied) = (items, applied);
        *kills_in
            .entry(t["phase"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    let mut child = rig.ferry.spawn_sync(&[]);
    wait_for(
        Duration::from_secs(180),
        "streaming phase",
        || rig.ferry.logs(),
        || async { (phase(&rig.ferry).as_deref() == Some("streaming")).then_some(()) },
    )
    .await;
    // Two more kills while streaming.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        *kills_in.entry("streaming".into()).or_default() += 1;
        child = rig.ferry.spawn_sync(&[]);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    writes.await.unwrap().expect("workload");
    wait_caught_up(&rig.ferry, "Orders", Duration::from_secs(120)).await;
    wait_equal(&rig.src, "Orders", &rig.dst, "Orders", Duration::from_secs(90), || {
        rig.ferry.logs()
    })
    .await;
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", rig.ferry.logs());
    assert!(
        kills_in.get("streaming").copied().unwrap_or(0) >= 2,
        "kills by phase: {kills_in:?}"
    );
    eprintln!("kills by phase: {kills_in:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forced_shard_rollovers_during_writes_are_followed_in_lineage_order() {
    let rig = setup(1_000, "[[table]]\nsource = \"Orders\"\nscan_segments = 2\n").await;
    let ddb = DynamoLocal::shared();
    let stop = CancellationToken::new();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    wl.pause = Duration::from_millis(2);
    let writes = wl.spawn(stop.clone());
    ddb.rollover().expect("rollover before the sync");
    let mut child = rig.ferry.spawn_sync(&[]);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        ddb.rollover().expect("rollover");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    writes.await.unwrap().expect("workload");
    wait_caught_up(&rig.ferry, "Orders", Duration::from_secs(120)).await;
    wait_equal(&rig.src, "Orders", &rig.dst, "Orders", Duration::from_secs(60), || {
        rig.ferry.logs()
    })
    .await;
    let t = rig.ferry.table_status("Orders").unwrap();
    assert!(
        t["shards_done"].as_u64().unwrap() >= 6,
        "closed shards were read to their end: {t}"
    );
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", rig.ferry.logs());
}
