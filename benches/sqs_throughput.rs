//! A measurement, not a check: how fast the forwarder fills a moto FIFO queue and `ferry sync`
//! drains it into DynamoDB Local. moto (one Python process) sets the pace here; AWS figures differ.
//! Prints both rates.
//!
//!   cargo bench --bench sqs_throughput                              # N = 10,000 records
//!   FERRY_SQS_MEASURE_N=2000 cargo bench --bench sqs_throughput     # a quick run

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::StreamViewType;
use ferry::source::sqs::forwarder::{SdkSender, Target, forward};
use ferry_rig::data::create_table;
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::process::{FerryDir, terminate};
use ferry_rig::wait::wait_for;
use ferry_rig::{Account, DynamoLocal};

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let n: usize = std::env::var("FERRY_SQS_MEASURE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let ddb = DynamoLocal::shared();
    let moto = Moto::shared();
    let (sa, da) = (Account::fresh("src"), Account::fresh("dst"));
    let src = ddb.client(&sa);
    let desc = create_table(&src, "Orders", Some(StreamViewType::NewAndOldImages)).await;
    create_table(&ddb.client(&da), "Orders", None).await;
    let queue_url = moto.fifo_queue(&format!("measure{}", std::process::id()), 30).await;
    let sender = SdkSender {
        sqs: moto.sqs_client(),
        s3: moto.s3_client(),
    };
    let target = Target {
        queue_url: queue_url.clone(),
        offload_bucket: None,
        table: "Orders".into(),
    };
    // ~1 KB records over n/4 keys, forwarded in Lambda batches of 100.
    let now = ferry::clock::now_ms() as f64 / 1000.0;
    let started = Instant::now();
    for chunk in 0..n.div_ceil(100) {
        let records: Vec<serde_json::Value> = (chunk * 100..((chunk + 1) * 100).min(n))
            .map(|i| {
                let key = serde_json::json!({"pk": {"S": format!("k{}", i % (n / 4).max(1))}, "sk": {"N": "1"}});
                let mut image = key.clone();
                image["v"] = serde_json::json!({"N": i.to_string()});
                image["pad"] = serde_json::json!({"S": "x".repeat(1000)});
                serde_json::json!({"eventID": format!("ev-{i}"), "eventName": "MODIFY", "dynamodb": {
                    "ApproximateCreationDateTime": now, "Keys": key, "NewImage": image,
                    "SequenceNumber": format!("{:021}", i + 1), "StreamViewType": "NEW_AND_OLD_IMAGES"}})
            })
            .collect();
        let done = forward(&sender, &target, &serde_json::json!({ "Records": records }))
            .await
            .unwrap();
        assert!(done.failed_at.is_none());
    }
    let forward_s = started.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "[source.endpoints]\nsqs = \"{m}\"\n\n[[table]]\nsource = \"Orders\"\nchange_source = \"sqs\"\nqueue_url = \"{queue_url}\"\n",
        m = moto.endpoint
    );
    let ferry = FerryDir::new(&ferry_bin!(), dir.path(), ddb, &sa, &da, &tables);
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let store = ferry::checkpoint::Store::open(&dir.path().join("state/ferry.db")).unwrap();
    let mut row = ferry::checkpoint::TableRow::new("Orders", "Orders");
    row.capture_ms = Some(ferry::clock::now_ms());
    row.replay_from_ms = Some(0);
    row.stream_arn = desc.latest_stream_arn.clone();
    row.snapshot_done = true;
    store.put_table(&row).unwrap();
    drop(store);
    let started = Instant::now();
    let mut child = ferry.spawn_sync(&[]);
    wait_for(
        Duration::from_secs(1800),
        "the queue drained",
        || ferry.logs(),
        || async {
            let t = ferry.table_status("Orders")?;
            (t["records_applied"] == n && t["queue"]["depth"] == 0 && t["queue"]["in_flight"] == 0).then_some(())
        },
    )
    .await;
    let drain_s = started.elapsed().as_secs_f64();
    terminate(&child);
    child.wait().unwrap();
    eprintln!(
        "N = {n}: forwarder {:.0} records/s ({forward_s:.1} s), ferry drain {:.0} records/s ({drain_s:.1} s, from process start, 1 s status granularity)",
        n as f64 / forward_s,
        n as f64 / drain_s
    );
}
