//! Many tables under `--parallel-tables 1`: one bulk load at a time, and a table whose settings
//! cannot be restored stops alone, named in `ferry status`, while the others stream.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, KeyType, ScalarAttributeType, StreamViewType};
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::plan::{attr, create_function, ferry_dir, key, stream, stream_arn};
use ferry_rig::wait::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_table_does_not_stop_the_others_and_loads_run_one_at_a_time() {
    let (src_region, dst_region) = ("us-west-1", "ca-central-1");
    let moto = Moto::shared();
    let ddb = moto.dynamodb_in(src_region);
    let names = ["Alpha", "Beta", "Gamma"];
    for name in names {
        ddb.create_table()
            .table_name(name)
            .attribute_definitions(attr("pk", ScalarAttributeType::S))
            .key_schema(key("pk", KeyType::Hash))
            .billing_mode(BillingMode::PayPerRequest)
            .stream_specification(stream(StreamViewType::NewAndOldImages))
            .send()
            .await
            .unwrap();
        for i in 0..3 {
            ddb.put_item()
                .table_name(name)
                .item("pk", AttributeValue::S(format!("{name}{i}")))
                .send()
                .await
                .unwrap();
        }
    }
    // Alpha's trigger names a function the destination account does not have.
    let role = moto.create_role("ferry-many-test").unwrap();
    let lam = moto.lambda_in(src_region);
    create_function(&lam, "fn-alpha", &role).await;
    lam.create_event_source_mapping()
        .event_source_arn(stream_arn(&ddb, "Alpha").await)
        .function_name("fn-alpha")
        .starting_position(aws_sdk_lambda::types::EventSourcePosition::Latest)
        .send()
        .await
        .unwrap();

    let work = tempfile::tempdir().unwrap();
    let f = ferry_dir(&ferry_bin!(), work.path(), src_region, dst_region);
    let out = f.run(&["discover", "-c", "ferry.toml", "--out", "plan"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = f.run(&["plan", "-c", "ferry.toml", "--plan", "plan"]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "ferry plan missed the absent function:\n{report}"
    );
    assert!(
        report.contains("FAIL  Lambda mapping fn-alpha: destination function \"fn-alpha\" does not exist"),
        "{report}"
    );

    let mut sync = f.spawn_sync(&["--plan", "plan", "--parallel-tables", "1", "--no-progress"]);
    wait_for(
        Duration::from_secs(120),
        "Beta and Gamma streaming, Alpha stopped",
        || f.logs(),
        || async {
            let s = |t: &str| f.table_status(t).unwrap_or_default();
            let alpha = s("Alpha");
            let failed = alpha["phase"] == "stopped" && alpha["error"].as_str().is_some_and(|e| e.contains("fn-alpha"));
            (failed && s("Beta")["phase"] == "streaming" && s("Gamma")["phase"] == "streaming").then_some(())
        },
    )
    .await;
    ferry_rig::process::terminate(&sync);
    assert!(
        !sync.wait().unwrap().success(),
        "a failed table must make sync exit non-zero"
    );

    // One slot: no two bulk loads overlap (each table's load starts after the previous one's
    // finished).
    let log = std::fs::read_to_string(f.dir.join("sync-1.log")).unwrap();
    let events: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            if l.contains("creating destination table") {
                Some("start")
            } else if l.contains("snapshot finished") {
                Some("done")
            } else {
                None
            }
        })
        .collect();
    assert_eq!(events, ["start", "done", "start", "done", "start", "done"], "{log}");
    let dst = moto.dynamodb_in(dst_region);
    for name in ["Beta", "Gamma"] {
        assert_eq!(dst.scan().table_name(name).send().await.unwrap().count, 3);
    }
}
