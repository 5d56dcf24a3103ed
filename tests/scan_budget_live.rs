//! Live on DynamoDB Local: a snapshot under `max_read_units_per_second` copies the whole table,
//! and the log states the budget, the expected time and the read units the scan used (the
//! endpoint's ConsumedCapacity, as ferry counted it). The rate itself is asserted with a scripted
//! source under paused time (src/snapshot/scan_tests.rs); here it is printed, as a measurement.
//!
//! `FERRY_SCAN_ITEMS` (default 2,000 items of ~1 KB) makes the table larger for a longer run.

use std::time::Duration;

use aws_sdk_dynamodb::types::StreamViewType;
use ferry_rig::data::{create_table, load, sized_item};
use ferry_rig::ferry_bin;
use ferry_rig::process::FerryDir;
use ferry_rig::process::terminate;
use ferry_rig::wait::{wait_equal, wait_for};
use ferry_rig::{Account, DynamoLocal};

const BUDGET: u32 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_under_a_read_budget_copies_everything_and_reports_its_reads() {
    let items: i64 = std::env::var("FERRY_SCAN_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let ddb = DynamoLocal::shared();
    let (sa, da) = (Account::fresh("budgetsrc"), Account::fresh("budgetdst"));
    let (src, dst) = (ddb.client(&sa), ddb.client(&da));
    create_table(&src, "Orders", Some(StreamViewType::NewAndOldImages)).await;
    load(
        &src,
        "Orders",
        (0..items)
            .map(|i| sized_item(&format!("c{}", i % 97), i, 1_000))
            .collect(),
    )
    .await;

    let work = tempfile::tempdir().unwrap();
    let f = FerryDir::new(
        &ferry_bin!(),
        work.path(),
        ddb,
        &sa,
        &da,
        &format!("[[table]]\nsource = \"Orders\"\nscan_segments = 8\nmax_read_units_per_second = {BUDGET}\n"),
    );
    let child = f.spawn_sync(&["--no-progress"]);
    let log = f.dir.join("sync-1.log");
    let read = |what: &str| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().find(|l| l.contains(what)).map(str::to_string)
    };
    let done = wait_for(
        Duration::from_secs(600),
        "the snapshot to finish",
        || f.logs(),
        || async { read("snapshot scan read ") },
    )
    .await;
    wait_equal(&src, "Orders", &dst, "Orders", Duration::from_secs(60), || f.logs()).await;
    terminate(&child.0);

    let plan = read("snapshot scan: read budget").unwrap_or_default();
    assert!(
        plan.contains(&format!("read budget {BUDGET} units/s (max_read_units_per_second)"))
            && plan.contains("expected ~"),
        "{plan}"
    );
    let field = |name: &str| -> f64 {
        let v = done
            .split(&format!("{name}="))
            .nth(1)
            .and_then(|r| r.split_whitespace().next());
        v.and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {done:?}"))
    };
    let (units, secs) = (field("read_units"), field("seconds"));
    assert!(units > 0.0, "the scan counted no reads: {done}");
    eprintln!(
        "{items} items: {units} read units in {secs} s = {:.1} units/s at a budget of {BUDGET}\n{plan}\n{done}",
        units / secs.max(1.0)
    );
}
