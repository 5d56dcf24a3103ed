//! `ferry discover` → edit → `ferry plan` → `ferry sync --plan` against moto (tags, PITR, TTL,
//! deletion protection, Lambda event source mappings). One moto for the file; the source is one
//! Region and the destination another (moto keeps Regions apart).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, GlobalSecondaryIndex, KeyType, LocalSecondaryIndex, PointInTimeRecoverySpecification,
    Projection, ProjectionType, ScalarAttributeType, StreamViewType, Tag, TimeToLiveSpecification,
};
use ferry::config::Clients;
use ferry::discover::settings;
use ferry::plan::schema::TableSchema;
use ferry::plan::{Plan, lambda, lambda_map::function_name};
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::plan::{attr, create_function, described, edit, ferry_dir, key, stream, stream_arn, tp};
use ferry_rig::process::FerryDir;
use ferry_rig::wait::wait_for;

/// Orders (GSI + LSI, on-demand, TTL, PITR, tags, deletion protection, one mapping), Users
/// (provisioned GSI, TTL, tags, one mapping) and Logs (plain), each with a few items.
async fn make_sources(moto: &Moto, region: &str, role: &str) {
    use ScalarAttributeType::{N, S};
    let ddb = moto.dynamodb_in(region);
    ddb.create_table()
        .table_name("Orders")
        .attribute_definitions(attr("pk", S))
        .attribute_definitions(attr("sk", S))
        .attribute_definitions(attr("status", S))
        .attribute_definitions(attr("created", N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("byStatus")
                .key_schema(key("status", KeyType::Hash))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("total")
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("byCreated")
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("created", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .unwrap(),
        )
        .stream_specification(stream(StreamViewType::NewAndOldImages))
        .deletion_protection_enabled(true)
        .tags(Tag::builder().key("team").value("shop").build().unwrap())
        .tags(Tag::builder().key("env").value("test").build().unwrap())
        .send()
        .await
        .unwrap();
    ddb.create_table()
        .table_name("Users")
        .attribute_definitions(attr("id", S))
        .attribute_definitions(attr("email", S))
        .key_schema(key("id", KeyType::Hash))
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(tp(5, 4))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("byEmail")
                .key_schema(key("email", KeyType::Hash))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .provisioned_throughput(tp(2, 3))
                .build()
                .unwrap(),
        )
        .stream_specification(stream(StreamViewType::NewImage))
        .tags(Tag::builder().key("team").value("identity").build().unwrap())
        .send()
        .await
        .unwrap();
    ddb.create_table()
        .table_name("Logs")
        .attribute_definitions(attr("id", S))
        .key_schema(key("id", KeyType::Hash))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    for (table, ttl) in [("Orders", "expires"), ("Users", "ttl")] {
        ddb.update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ttl)
                    .enabled(true)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    ddb.update_continuous_backups()
        .table_name("Orders")
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let s = |v: &str| AttributeValue::S(v.to_string());
    for i in 0..5 {
        ddb.put_item()
            .table_name("Orders")
            .item("pk", s(&format!("c{i}")))
            .item("sk", s("o1"))
            .item("status", s("open"))
            .item("created", AttributeValue::N(i.to_string()))
            .send()
            .await
            .unwrap();
        ddb.put_item()
            .table_name("Users")
            .item("id", s(&format!("u{i}")))
            .item("email", s(&format!("u{i}@example.com")))
            .send()
            .await
            .unwrap();
    }
    // The source's Lambda triggers, and the functions the destination account will use.
    let lam = moto.lambda_in(region);
    for f in ["fn-orders", "fn-users"] {
        create_function(&lam, f, role).await;
    }
    let orders_stream = stream_arn(&ddb, "Orders").await;
    lam.create_event_source_mapping()
        .event_source_arn(&orders_stream)
        .function_name("fn-orders")
        .starting_position(aws_sdk_lambda::types::EventSourcePosition::TrimHorizon)
        .batch_size(50)
        .maximum_batching_window_in_seconds(3)
        .maximum_retry_attempts(4)
        .maximum_record_age_in_seconds(600)
        .bisect_batch_on_function_error(true)
        .parallelization_factor(2)
        .filter_criteria(
            aws_sdk_lambda::types::FilterCriteria::builder()
                .filters(
                    aws_sdk_lambda::types::Filter::builder()
                        .pattern(r#"{"eventName":["INSERT"]}"#)
                        .build(),
                )
                .build(),
        )
        .destination_config(
            aws_sdk_lambda::types::DestinationConfig::builder()
                .on_failure(
                    aws_sdk_lambda::types::OnFailure::builder()
                        .destination("arn:aws:sqs:us-east-1:123456789012:orders-dlq")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    lam.create_event_source_mapping()
        .event_source_arn(stream_arn(&ddb, "Users").await)
        .function_name("fn-users")
        .starting_position(aws_sdk_lambda::types::EventSourcePosition::Latest)
        .batch_size(10)
        .send()
        .await
        .unwrap();
}

/// Every destination matches its schema file field by field, and its mappings point at the
/// planned functions, disabled, at LATEST, with the source's settings.
async fn assert_matches_plan(dst: &Clients, plan: &Plan) {
    for t in &plan.tables {
        let mut got = described(dst, &t.destination).await;
        got.table_name = t.source.clone();
        assert_eq!(got, t.schema, "destination {} differs from its plan", t.destination);
        let stream = stream_arn(&dst.dynamodb, &t.destination).await;
        let maps = settings::mappings(dst, &stream).await.unwrap();
        assert_eq!(maps.len(), t.mappings.len(), "mappings on {}: {maps:?}", t.destination);
        for want in &t.mappings {
            let have = maps
                .iter()
                .find(|m| function_name(m.function_arn.as_deref().unwrap()) == want.destination_function)
                .unwrap_or_else(|| panic!("no mapping to {} on {}", want.destination_function, t.destination));
            assert_eq!(have.state.as_deref(), Some("Disabled"), "{have:?}");
            assert_eq!(have.starting_position.as_ref().map(|p| p.as_str()), Some("LATEST"));
            assert!(lambda::differences(want, have).is_empty(), "{want:?} vs {have:?}");
        }
    }
}

async fn item_count(ddb: &aws_sdk_dynamodb::Client, table: &str) -> i32 {
    ddb.scan().table_name(table).send().await.unwrap().count
}

/// Runs `ferry sync --plan` (run number `run` of this folder) until this run has every table
/// streaming, then stops it the operator's way.
async fn sync_until_streaming(f: &FerryDir, run: u32, tables: &[&str]) {
    let mut child = f.spawn_sync(&["--plan", "plan", "--parallel-tables", "1", "--no-progress"]);
    let log = f.dir.join(format!("sync-{run}.log"));
    wait_for(
        Duration::from_secs(120),
        "every table streaming",
        || f.logs(),
        || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let all = tables.iter().all(|t| {
                text.contains(&format!("streaming changes table={t} "))
                    && f.table_status(t)
                        .is_some_and(|s| s["phase"] == "streaming" && s["error"].is_null())
            });
            all.then_some(())
        },
    )
    .await;
    ferry_rig::process::terminate(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "sync did not stop cleanly\n{}", f.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_edit_plan_sync_and_converge_after_a_crash() {
    let (src_region, dst_region) = ("us-east-1", "eu-west-1");
    let moto = Moto::shared();
    let role = moto.create_role("ferry-plan-test").unwrap();
    make_sources(moto, src_region, &role).await;
    for f in ["fn-orders-v2", "fn-users"] {
        create_function(&moto.lambda_in(dst_region), f, &role).await;
    }
    let work = tempfile::tempdir().unwrap();
    let f = ferry_dir(&ferry_bin!(), work.path(), src_region, dst_region);

    let out = f.run(&["discover", "-c", "ferry.toml", "--out", "plan"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan_dir = f.dir.join("plan");
    let tables = std::fs::read_to_string(plan_dir.join("tables.csv")).unwrap();
    assert!(
        tables.contains("Orders,yes,Orders,") && tables.contains(",NEW_AND_OLD_IMAGES,yes,expires,yes,STANDARD,1,1"),
        "{tables}"
    );
    let orders: TableSchema =
        serde_json::from_str(&std::fs::read_to_string(plan_dir.join("schemas/Orders.json")).unwrap()).unwrap();
    assert_eq!(orders.tags.len(), 2);
    assert!(orders.pitr() && orders.deletion_protection_enabled);
    let map = std::fs::read_to_string(plan_dir.join("lambda-map.csv")).unwrap();
    assert_eq!(map.lines().count(), 3, "{map}");
    assert!(
        std::fs::read_to_string(plan_dir.join("ferry.toml"))
            .unwrap()
            .contains("source = \"Logs\"")
    );

    // A person's edits: rename Users, skip Logs, remap the Orders trigger.
    edit(&plan_dir.join("tables.csv"), "Users,yes,Users,", "Users,yes,UsersV2,");
    edit(&plan_dir.join("tables.csv"), "Logs,yes,Logs,", "Logs,no,Logs,");
    edit(
        &plan_dir.join("lambda-map.csv"),
        ",fn-orders,fn-orders,",
        ",fn-orders,fn-orders-v2,",
    );

    let out = f.run(&["plan", "-c", "ferry.toml", "--plan", "plan"]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "2 table(s) to move, 1 skipped, 2 Lambda mapping(s) to recreate (1 remapped)",
        "Users -> UsersV2 (renamed)",
        "Logs: skipped (move = no in tables.csv)",
        "Lambda mapping fn-orders -> fn-orders-v2 (remapped): created DISABLED at LATEST",
        "source stream NEW_IMAGE",
        "destination \"UsersV2\" does not exist: created from schemas/Users.json",
        "warn  source stream already has 1 Lambda consumer(s) (event source mappings): with ferry that is 2",
        "at 2 read units/s (50% of the table's provisioned read capacity (5))",
    ] {
        assert!(report.contains(want), "plan report lacks {want:?}:\n{report}");
    }
    let dst = moto.clients("destination", dst_region);
    assert!(
        settings::list_tables(&dst).await.unwrap().is_empty(),
        "ferry plan wrote"
    );

    sync_until_streaming(&f, 1, &["Orders", "Users"]).await;
    let plan = Plan::load(&plan_dir).unwrap();
    assert_matches_plan(&dst, &plan).await;
    assert_eq!(item_count(&dst.dynamodb, "Orders").await, 5);
    assert_eq!(item_count(&dst.dynamodb, "UsersV2").await, 5);
    assert!(settings::list_tables(&dst).await.unwrap().iter().all(|t| t != "Logs"));

    // A crash between steps leaves some settings done and others not: undo a few by hand.
    let ddb = &dst.dynamodb;
    let arn = ddb
        .describe_table()
        .table_name("Orders")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .table_arn
        .unwrap();
    ddb.untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    ddb.update_table()
        .table_name("Orders")
        .deletion_protection_enabled(false)
        .send()
        .await
        .unwrap();
    ddb.update_time_to_live()
        .table_name("UsersV2")
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("ttl")
                .enabled(false)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let users_stream = stream_arn(ddb, "UsersV2").await;
    for m in settings::mappings(&dst, &users_stream).await.unwrap() {
        dst.lambda
            .delete_event_source_mapping()
            .uuid(m.uuid.unwrap())
            .send()
            .await
            .unwrap();
    }
    let orders_stream = stream_arn(ddb, "Orders").await;
    let m = settings::mappings(&dst, &orders_stream).await.unwrap().remove(0);
    dst.lambda
        .update_event_source_mapping()
        .uuid(m.uuid.unwrap())
        .batch_size(7)
        .send()
        .await
        .unwrap();

    sync_until_streaming(&f, 2, &["Orders", "Users"]).await;
    assert_matches_plan(&dst, &plan).await;
    assert!(
        f.all_logs().contains("updated the mapping to fn-orders-v2: batch_size"),
        "{}",
        f.logs()
    );

    // Cutover's part: enabling is idempotent and leaves the mappings on the planned functions.
    for t in &plan.tables {
        let enabled = ferry::plan::enable_mappings(&dst, t).await.unwrap();
        assert_eq!(enabled.len(), t.mappings.len());
        assert!(ferry::plan::enable_mappings(&dst, t).await.unwrap().is_empty());
    }
}
