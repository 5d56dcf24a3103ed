//! The default write budget from what moto reports besides DynamoDB Local: Application Auto
//! Scaling's maximum for a provisioned destination (moto registers a DynamoDB scalable target
//! without checking the table), and the warm throughput of an on-demand one. The source is one
//! Region of the shared moto and the destination another.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_sdk_dynamodb::types::{BillingMode, KeyType, ScalarAttributeType, StreamViewType};
use ferry::apply::budget::DEFAULT_WRITE_SHARE;
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::plan::{attr, ferry_dir, key, stream, tp};

/// Creates `name` (pk S) in `ddb`: provisioned with `wcu` write units, or on demand.
async fn table(ddb: &aws_sdk_dynamodb::Client, name: &str, wcu: Option<i64>) {
    let req = ddb
        .create_table()
        .table_name(name)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .stream_specification(stream(StreamViewType::NewAndOldImages));
    let req = match wcu {
        Some(w) => req
            .billing_mode(BillingMode::Provisioned)
            .provisioned_throughput(tp(10, w)),
        None => req.billing_mode(BillingMode::PayPerRequest),
    };
    req.send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_budgets_the_auto_scaling_maximum_and_the_warm_throughput() {
    let (src_region, dst_region) = ("eu-north-1", "eu-south-1");
    let moto = Moto::shared();
    let (src, dst) = (moto.dynamodb_in(src_region), moto.dynamodb_in(dst_region));
    for name in ["Ledger", "Audit"] {
        table(&src, name, None).await;
    }
    // Ledger's destination: 5 WCU now, auto-scaled up to 400.
    table(&dst, "Ledger", Some(5)).await;
    moto.autoscaling_in(dst_region)
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Dynamodb)
        .resource_id("table/Ledger")
        .scalable_dimension(ScalableDimension::DynamoDbTableWriteCapacityUnits)
        .min_capacity(5)
        .max_capacity(400)
        .send()
        .await
        .unwrap();
    // Audit's destination: on demand, as warm as moto reports it.
    table(&dst, "Audit", None).await;
    let audit = dst
        .describe_table()
        .table_name("Audit")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let warm = audit
        .warm_throughput
        .and_then(|w| w.write_units_per_second)
        .expect("moto reports an on-demand table's warm throughput");

    let work = tempfile::tempdir().unwrap();
    let f = ferry_dir(&ferry_bin!(), work.path(), src_region, dst_region);
    let out = f.run(&["discover", "-c", "ferry.toml", "--out", "plan"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = f.run(&["plan", "-c", "ferry.toml", "--plan", "plan"]);
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{plan}");
    let share = |units: i64| (units as f64 * DEFAULT_WRITE_SHARE) as u32;
    for want in [
        format!(
            "write budget {} write units/s (80% of the destination's auto-scaling maximum write capacity (400; \
             provisioned now 5))",
            share(400)
        ),
        format!(
            "write budget {} write units/s (80% of the destination's warm write throughput ({warm}))",
            share(warm)
        ),
    ] {
        assert!(plan.contains(&want), "missing {want:?} in:\n{plan}");
    }
}
