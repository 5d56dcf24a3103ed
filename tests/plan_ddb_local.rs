//! `ferry sync --plan` on DynamoDB Local (tables, indexes, streams, TTL, deletion protection),
//! with a `kill -9` while the first run builds the destination: the rerun converges to the plan
//! and keeps replicating. Lambda calls go to moto (`[*.endpoints] lambda`), as DynamoDB Local has
//! no Lambda; it has no tags or PITR either, so the plan records none. With Lambda calls left on
//! DynamoDB Local itself, discover records no mappings and says why. On a provisioned destination,
//! `ferry plan` and `ferry sync` take 80% of its write capacity as the default write budget.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use ferry::config::Clients;
use ferry::discover::settings;
use ferry::plan::Plan;
use ferry::plan::schema::{Extras, TableSchema};
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::process::FerryDir;
use ferry_rig::wait::{wait_equal, wait_for};
use ferry_rig::{Account, DynamoLocal};

fn attr(name: &str, ty: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ty)
        .build()
        .unwrap()
}

fn key(name: &str, ty: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(ty)
        .build()
        .unwrap()
}

async fn make_source(ddb: &aws_sdk_dynamodb::Client) {
    use ScalarAttributeType::{N, S};
    ddb.create_table()
        .table_name("Events")
        .attribute_definitions(attr("pk", S))
        .attribute_definitions(attr("sk", N))
        .attribute_definitions(attr("kind", S))
        .attribute_definitions(attr("at", N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("byKind")
                .key_schema(key("kind", KeyType::Hash))
                .key_schema(key("at", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .unwrap(),
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("byAt")
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("at", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .unwrap(),
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .deletion_protection_enabled(true)
        .send()
        .await
        .unwrap();
    ddb.update_time_to_live()
        .table_name("Events")
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("gone_at")
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    for i in 0..200 {
        put(ddb, i).await;
    }
}

async fn put(ddb: &aws_sdk_dynamodb::Client, i: i64) {
    ddb.put_item()
        .table_name("Events")
        .item("pk", AttributeValue::S(format!("p{}", i % 7)))
        .item("sk", AttributeValue::N(i.to_string()))
        .item("kind", AttributeValue::S(["a", "b"][i as usize % 2].into()))
        .item("at", AttributeValue::N((1000 + i).to_string()))
        .send()
        .await
        .unwrap();
}

async fn described(c: &Clients, table: &str) -> TableSchema {
    let d = ferry::discover::describe(c, table, ferry::retry::Policy::STARTUP)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{table} missing"));
    let extras = Extras {
        ttl_attribute: settings::ttl(c, table).await.unwrap(),
        pitr: false, // DynamoDB Local has no PITR (and no tags)
        tags: Vec::new(),
    };
    TableSchema::from_description(&d, &extras)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_building_the_destination_converges_on_rerun() {
    let ddb = DynamoLocal::shared();
    let moto = Moto::shared();
    let (src, dst) = (Account::fresh("plsrc"), Account::fresh("pldst"));
    let src_ddb = ddb.client(&src);
    make_source(&src_ddb).await;
    let work = tempfile::tempdir().unwrap();
    let f = FerryDir::new(&ferry_bin!(), work.path(), ddb, &src, &dst, "");
    let mut conf = std::fs::read_to_string(&f.config).unwrap();
    for side in ["source", "destination"] {
        conf.push_str(&format!("\n[{side}.endpoints]\nlambda = \"{}\"\n", moto.endpoint));
    }
    std::fs::write(&f.config, conf).unwrap();

    let out = f.run(&["discover", "-c", "ferry.toml", "--out", "plan"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tables_csv = f.dir.join("plan/tables.csv");
    let text = std::fs::read_to_string(&tables_csv).unwrap();
    std::fs::write(
        &tables_csv,
        text.replace("Events,yes,Events,", "Events,yes,EventsCopy,"),
    )
    .unwrap();
    let out = f.run(&["plan", "-c", "ferry.toml", "--plan", "plan"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // First run: killed as soon as it starts building the destination.
    let mut first = f.spawn_sync(&["--plan", "plan", "--no-progress"]);
    wait_for(
        Duration::from_secs(60),
        "the destination being created",
        || f.logs(),
        || async {
            let log = std::fs::read_to_string(f.dir.join("sync-1.log")).unwrap_or_default();
            log.contains("creating destination table").then_some(())
        },
    )
    .await;
    first.kill().unwrap();
    first.wait().unwrap();

    // Rerun: converges, then replicates new writes.
    let _second = f.spawn_sync(&["--plan", "plan", "--no-progress"]);
    ferry_rig::wait::wait_caught_up(&f, "Events", Duration::from_secs(120)).await;
    for i in 200..220 {
        put(&src_ddb, i).await;
    }
    let dst_ddb = ddb.client(&dst);
    wait_equal(
        &src_ddb,
        "Events",
        &dst_ddb,
        "EventsCopy",
        Duration::from_secs(60),
        || f.logs(),
    )
    .await;

    let plan = Plan::load(&f.dir.join("plan")).unwrap();
    let want = &plan.table("Events").unwrap().schema;
    assert_eq!(want.ttl_attribute(), Some("gone_at"));
    assert!(want.deletion_protection_enabled);
    let dst_clients = Clients {
        label: "destination",
        dynamodb: dst_ddb.clone(),
        streams: ddb.streams_client(&dst),
        lambda: moto.lambda_in(ferry_rig::REGION),
        s3: moto.s3_in(ferry_rig::REGION),
        sqs: moto.sqs_in(ferry_rig::REGION),
        autoscaling: moto.autoscaling_in(ferry_rig::REGION),
        dynamodb_endpoint: ddb.endpoint.clone(),
    };
    let mut got = described(&dst_clients, "EventsCopy").await;
    got.table_name = "Events".into();
    assert_eq!(&got, want);
}

/// DynamoDB Local has no Lambda and answers Lambda calls with HTTP 500 InternalFailure. With every
/// service of the source on it (one `endpoint_url`), discover records no mappings, says why in a
/// warning, and succeeds. A table's transform is shown with the keys it makes and its problems,
/// kept in the plan's ferry.toml, and `ferry plan` fails on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_with_every_service_on_dynamodb_local_records_no_mappings() {
    let ddb = DynamoLocal::shared();
    let (src, dst) = (Account::fresh("dlsrc"), Account::fresh("dldst"));
    let src_ddb = ddb.client(&src);
    for t in ["Streamed", "AlsoStreamed"] {
        ferry_rig::data::create_table(&src_ddb, t, Some(StreamViewType::NewImage)).await;
    }
    let work = tempfile::tempdir().unwrap();
    let transform =
        "[[table]]\nsource = \"Streamed\"\n[table.transform]\nrename = { sk = \"sort\" }\ndrop = [\"label\"]\n";
    let f = FerryDir::new(&ferry_bin!(), work.path(), ddb, &src, &dst, transform);
    let out = f.run(&["discover", "-c", "ferry.toml", "--out", "plan"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "Streamed: rename sk → sort",
        "Streamed: drop label",
        "Streamed: PROBLEM ferry.toml:",
        "cannot drop label, it is a key of index by_label",
        "Streamed: the destination's keys will be [pk (S, HASH), sort (N, RANGE)]",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    let schema = std::fs::read_to_string(f.dir.join("plan/schemas/Streamed.json")).unwrap();
    assert!(
        schema.contains("\"AttributeName\": \"sort\""),
        "the schema file is the destination's:\n{schema}"
    );
    let out = f.run(&["plan", "-c", "plan/ferry.toml", "--plan", "plan"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a transform that breaks an index fails the plan:\n{stdout}"
    );
    for want in [
        "info  transform: rename sk → sort",
        "FAIL  plan/ferry.toml:",
        "destination after the transform: keys [pk (S, HASH), sort (N, RANGE)], indexes [by_group (group, sort); by_label (pk, label)]",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    assert!(
        stderr.contains(&format!(
            "the Lambda endpoint {} is also the DynamoDB endpoint",
            ddb.endpoint
        )),
        "{stderr}"
    );
    let map = std::fs::read_to_string(f.dir.join("plan/lambda-map.csv")).unwrap();
    assert_eq!(map.lines().count(), 1, "a header and no mappings:\n{map}");
    let tables = std::fs::read_to_string(f.dir.join("plan/tables.csv")).unwrap();
    assert!(
        tables.contains("\nStreamed,") && tables.contains("\nAlsoStreamed,"),
        "{tables}"
    );
}

/// A pk (S) + sk (N) table with a stream, provisioned with `wcu` write capacity units.
async fn provisioned(ddb: &aws_sdk_dynamodb::Client, name: &str, wcu: i64) {
    ddb.create_table()
        .table_name(name)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(ferry_rig::plan::tp(1_000, wcu))
        .stream_specification(ferry_rig::plan::stream(StreamViewType::NewAndOldImages))
        .send()
        .await
        .unwrap();
}

/// The default write budget is 80% of a provisioned destination's write capacity: `ferry plan`
/// prints it (DynamoDB Local has no Application Auto Scaling: the budget keeps the provisioned
/// figure and says the auto-scaling could not be read) and times the bulk load at it; a missing
/// destination is judged by the capacity ferry creates it with. `ferry sync` logs the budget of
/// the table it created from the capacity it created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_sync_budget_80_percent_of_a_provisioned_destination() {
    use ferry::apply::budget::{DEFAULT_WRITE_SHARE, expected_seconds};
    let ddb = DynamoLocal::shared();
    let (sa, da) = (Account::fresh("wbsrc"), Account::fresh("wbdst"));
    let (src, dst) = (ddb.client(&sa), ddb.client(&da));
    // Orders: on demand at the source, an empty provisioned destination of 50 WCU already there.
    ferry_rig::data::create_table(&src, "Orders", Some(StreamViewType::NewAndOldImages)).await;
    let items = (0..300).map(|i| ferry_rig::data::sized_item(&format!("c{}", i % 13), i, 1_500));
    ferry_rig::data::load(&src, "Orders", items.collect()).await;
    provisioned(&dst, "Orders", 50).await;
    // Users: provisioned with 20 WCU at the source; ferry creates the destination like it.
    provisioned(&src, "Users", 20).await;

    let work = tempfile::tempdir().unwrap();
    let f = FerryDir::new(&ferry_bin!(), work.path(), ddb, &sa, &da, "");
    let out = f.run(&["discover", "-c", "ferry.toml", "--out", "plan"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = f.run(&["plan", "-c", "ferry.toml", "--plan", "plan"]);
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{plan}");

    let share = |wcu: f64| (wcu * DEFAULT_WRITE_SHARE) as u32;
    let orders = src
        .describe_table()
        .table_name("Orders")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let (bytes, count) = (
        orders.table_size_bytes.unwrap() as u64,
        orders.item_count.unwrap() as u64,
    );
    let budget = share(50.0);
    let seconds = expected_seconds(bytes, count, budget).unwrap();
    for want in [
        format!(
            "info  write budget {budget} write units/s (80% of the destination's provisioned write capacity (50); \
             its auto-scaling could not be read: "
        ),
        format!(
            "time budget: bulk load ~{} at the write budget of {budget} write units/s",
            ferry::clock::human(seconds)
        ),
        format!(
            "info  write budget {} write units/s (80% of the destination's provisioned write capacity (20), as \
             ferry creates it)",
            share(20.0)
        ),
    ] {
        assert!(plan.contains(&want), "missing {want:?} in:\n{plan}");
    }

    // The sync creates Users and logs the budget of the table it created.
    let _sync = f.spawn_sync(&["--plan", "plan", "--no-progress"]);
    let created = format!(
        "write budget {} write units/s (80% of the destination's provisioned write capacity (20); its auto-scaling",
        share(20.0)
    );
    let reused =
        format!("write budget {budget} write units/s (80% of the destination's provisioned write capacity (50)");
    wait_for(
        Duration::from_secs(60),
        "both tables' write budgets in the log",
        || f.logs(),
        || async {
            let log = std::fs::read_to_string(f.dir.join("sync-1.log")).unwrap_or_default();
            (log.contains(&created) && log.contains(&reused)).then_some(())
        },
    )
    .await;
}
