//! `ferry cutover --plan` against moto: the Lambda event source mappings `ferry sync --plan`
//! created on the destination stay disabled through a dry run, and the cutover enables them at
//! LATEST on the remapped functions once verify finds the destination equal to the source.
//!
//! moto quirk: a mapping on a moto stream makes moto clear that stream's records for every reader
//! (see /work/shared/docs/local-rig.md), so ferry's replication off such a source sees nothing.
//! Orders has a real source mapping (discovered, then remapped) and gets no write after its
//! snapshot; Users has no source mapping (its mapping is a row a person adds to lambda-map.csv)
//! and takes the writes ferry must stream before the cutover may pass.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, KeyType, ScalarAttributeType, StreamViewType};
use aws_sdk_lambda::types::EventSourcePosition;
use ferry::config::Clients;
use ferry::discover::settings;
use ferry::plan::lambda_map::function_name;
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::plan::{attr, create_function, edit, ferry_dir, key, stream, stream_arn};
use ferry_rig::process::{FerryDir, terminate};
use ferry_rig::wait::{wait_caught_up, wait_equal};

const SRC_REGION: &str = "us-east-1";
const DST_REGION: &str = "eu-west-1";

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

/// Orders (a mapping to fn-orders) and Users (no mapping), each with a few items.
async fn make_sources(moto: &Moto, role: &str) {
    let ddb = moto.dynamodb_in(SRC_REGION);
    for (table, view) in [
        ("Orders", StreamViewType::NewAndOldImages),
        ("Users", StreamViewType::NewImage),
    ] {
        ddb.create_table()
            .table_name(table)
            .attribute_definitions(attr("pk", ScalarAttributeType::S))
            .key_schema(key("pk", KeyType::Hash))
            .billing_mode(BillingMode::PayPerRequest)
            .stream_specification(stream(view))
            .send()
            .await
            .unwrap();
        for i in 0..5 {
            ddb.put_item()
                .table_name(table)
                .item("pk", s(&format!("{table}-{i}")))
                .item("n", AttributeValue::N(i.to_string()))
                .send()
                .await
                .unwrap();
        }
    }
    let lam = moto.lambda_in(SRC_REGION);
    create_function(&lam, "fn-orders", role).await;
    lam.create_event_source_mapping()
        .event_source_arn(stream_arn(&ddb, "Orders").await)
        .function_name("fn-orders")
        .starting_position(EventSourcePosition::TrimHorizon)
        .batch_size(20)
        .send()
        .await
        .unwrap();
}

/// The destination's one mapping on `table`'s stream, which must point at `function`: its state
/// and starting position.
async fn mapping(dst: &Clients, table: &str, function: &str) -> (String, String) {
    let arn = stream_arn(&dst.dynamodb, table).await;
    let maps = settings::mappings(dst, &arn).await.unwrap();
    assert_eq!(maps.len(), 1, "mappings on {table}: {maps:?}");
    let m = &maps[0];
    let name = function_name(m.function_arn.as_deref().unwrap());
    assert_eq!(name, function, "{m:?}");
    (
        m.state.clone().unwrap_or_default(),
        m.starting_position
            .as_ref()
            .map_or(String::new(), |p| p.as_str().to_string()),
    )
}

async fn assert_disabled(dst: &Clients, when: &str) {
    for (table, function) in [("Orders", "fn-orders-v2"), ("Users", "fn-audit")] {
        let (state, position) = mapping(dst, table, function).await;
        assert_eq!(state, "Disabled", "{table} mapping {when}");
        assert_eq!(position, "LATEST", "{table} mapping {when}");
    }
}

/// The report's `settings` entry for the mapping to `function` on `table`.
fn mapping_action(report: &serde_json::Value, table: &str, function: &str) -> String {
    let setting = format!("Lambda mapping to {function}");
    let found = report["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["table"] == table && s["setting"] == setting.as_str())
        .unwrap_or_else(|| panic!("report lacks {setting:?} on {table}: {report}"));
    found["action"].as_str().unwrap().to_string()
}

/// Runs `ferry cutover --plan plan` (bounded waits) and returns its JSON report.
fn cutover(f: &FerryDir, reports: &str) -> serde_json::Value {
    let out = f.run(&[
        "cutover",
        "-c",
        "ferry.toml",
        "--plan",
        "plan",
        "--max-lag",
        "2s",
        "--quiet-for",
        "1s",
        "--timeout",
        "60s",
        "--report-dir",
        reports,
    ]);
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        f.logs()
    );
    let path = f.dir.join(reports).join("cutover-report.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutover_enables_the_plans_lambda_mappings_after_verify() {
    let moto = Moto::shared();
    let role = moto.create_role("ferry-cutover-plan-test").unwrap();
    make_sources(moto, &role).await;
    for name in ["fn-orders-v2", "fn-audit"] {
        create_function(&moto.lambda_in(DST_REGION), name, &role).await;
    }
    let work = tempfile::tempdir().unwrap();
    let f = ferry_dir(&ferry_bin!(), work.path(), SRC_REGION, DST_REGION);

    let out = f.run(&["discover", "-c", "ferry.toml", "--out", "plan"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let map_path = f.dir.join("plan/lambda-map.csv");
    edit(&map_path, ",fn-orders,fn-orders,", ",fn-orders,fn-orders-v2,");
    // A trigger the source does not have yet: a person adds the row (every column after
    // starting_position left empty).
    let mut map = std::fs::read_to_string(&map_path).unwrap();
    let row = ["Users", "", "fn-audit", "fn-audit", "create", "yes", "25", "", "LATEST"];
    map.push_str(&format!("{}{}\n", row.join(","), ",".repeat(8)));
    std::fs::write(&map_path, map).unwrap();
    let out = f.run(&["plan", "-c", "ferry.toml", "--plan", "plan"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("2 table(s) to move, 0 skipped, 2 Lambda mapping(s) to recreate (1 remapped)"),
        "{text}"
    );

    let src = moto.dynamodb_in(SRC_REGION);
    let dst = moto.clients("destination", DST_REGION);
    let mut sync = f.spawn_sync(&["--plan", "plan", "--no-progress"]);
    for table in ["Orders", "Users"] {
        wait_caught_up(&f, table, Duration::from_secs(60)).await;
    }
    assert_disabled(&dst, "after sync").await;

    // Writes after the snapshot, streamed by ferry (Users only: see the module docs).
    for i in 5..9 {
        src.put_item()
            .table_name("Users")
            .item("pk", s(&format!("Users-{i}")))
            .item("n", AttributeValue::N(i.to_string()))
            .send()
            .await
            .unwrap();
    }
    src.update_item()
        .table_name("Users")
        .key("pk", s("Users-1"))
        .update_expression("SET n = :n")
        .expression_attribute_values(":n", AttributeValue::N("100".into()))
        .send()
        .await
        .unwrap();
    src.delete_item()
        .table_name("Users")
        .key("pk", s("Users-2"))
        .send()
        .await
        .unwrap();
    wait_equal(&src, "Users", &dst.dynamodb, "Users", Duration::from_secs(30), || {
        f.logs()
    })
    .await;

    let dry = f.run(&[
        "cutover",
        "-c",
        "ferry.toml",
        "--plan",
        "plan",
        "--dry-run",
        "--report-dir",
        "reports",
    ]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{text}\n{}", String::from_utf8_lossy(&dry.stderr));
    assert_eq!(text.matches("would enable at LATEST").count(), 2, "{text}");
    assert_disabled(&dst, "after a dry run").await;
    assert!(!f.dir.join("reports").exists(), "a dry run writes no report");

    let report = cutover(&f, "reports");
    assert_eq!(report["outcome"], "complete", "{report}");
    for t in report["tables"].as_array().unwrap() {
        assert_eq!(t["verify"]["equal"], true, "{report}");
        assert_eq!(t["verify"]["source_digest"], t["verify"]["destination_digest"]);
    }
    assert_eq!(report["tables"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(mapping_action(&report, "Orders", "fn-orders-v2"), "enabled at LATEST");
    assert_eq!(mapping_action(&report, "Users", "fn-audit"), "enabled at LATEST");
    for (table, function) in [("Orders", "fn-orders-v2"), ("Users", "fn-audit")] {
        let (state, position) = mapping(&dst, table, function).await;
        assert!(matches!(state.as_str(), "Enabled" | "Enabling"), "{table}: {state}");
        assert_eq!(position, "LATEST", "{table}");
    }

    // A second cutover finds them on and changes nothing.
    let again = cutover(&f, "reports-2");
    assert_eq!(again["outcome"], "complete", "{again}");
    assert_eq!(mapping_action(&again, "Orders", "fn-orders-v2"), "already enabled");
    assert_eq!(mapping_action(&again, "Users", "fn-audit"), "already enabled");

    assert!(sync.try_wait().unwrap().is_none(), "ferry sync must keep running");
    terminate(&sync);
    assert!(sync.wait().unwrap().success(), "{}", f.logs());
}
