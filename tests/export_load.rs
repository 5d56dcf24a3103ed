//! `snapshot = "export"` with ferry's loader, on the rig: the source table and its stream in
//! DynamoDB Local, a real-format export (manifests, MD5s, several gzip'd files) in moto's S3 reused
//! through `export_s3`, the destination in another DynamoDB Local account.

use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
use ferry::item::Item;
use ferry_rig::data::{create_table, rich_item, send_batch, sized_item};
use ferry_rig::ferry_bin;
use ferry_rig::moto::{ExportSpec, Moto, WrittenExport, default_credentials, write_export};
use ferry_rig::process::FerryDir;
use ferry_rig::wait::{wait_caught_up, wait_equal, wait_for};
use ferry_rig::workload::Workload;
use ferry_rig::{Account, DynamoLocal};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

/// Item `i` of the test data: every attribute type on every 50th item, ~300-byte items otherwise.
fn item(i: u64) -> Item {
    let pk = format!("exp-{}", i % 1_000);
    if i.is_multiple_of(50) {
        rich_item(&pk, i as i64, &mut StdRng::seed_from_u64(i))
    } else {
        sized_item(&pk, i as i64, 300)
    }
}

/// Items 0..n into the source, 16 BatchWriteItem calls in flight.
async fn load_concurrently(c: &aws_sdk_dynamodb::Client, n: u64) {
    use futures::StreamExt;
    let batches = (0..n.div_ceil(25)).map(|b| {
        let reqs: Vec<WriteRequest> = (b * 25..((b + 1) * 25).min(n))
            .map(|i| {
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item(i))).build().unwrap())
                    .build()
            })
            .collect();
        async move { send_batch(c, "Orders", reqs).await }
    });
    let mut s = futures::stream::iter(batches).buffer_unordered(16);
    while let Some(r) = s.next().await {
        r.expect("load source");
    }
}

struct Rig {
    src: aws_sdk_dynamodb::Client,
    dst: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    export: WrittenExport,
    ferry: FerryDir,
    _dir: tempfile::TempDir,
}

/// Source "Orders" holding items 0..n (its stream enabled afterwards, as on a long-lived table),
/// and the same items as a real-format export in `files` files.
async fn setup(n: u64, files: u64, bucket: &str, table_extra: &str) -> Rig {
    let ddb = DynamoLocal::shared();
    let moto = Moto::shared();
    let (sa, da) = (Account::fresh("xsrc"), Account::fresh("xdst"));
    let src = ddb.client(&sa);
    let dst = ddb.client(&da);
    create_table(&src, "Orders", None).await;
    load_concurrently(&src, n).await;
    src.update_table()
        .table_name("Orders")
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("enable stream");
    let s3 = moto.s3(default_credentials());
    let spec = ExportSpec {
        bucket,
        prefix: "exports/orders",
        export_id: "01700000000000-abcdef12",
        export_time_ms: ferry::clock::now_ms(),
        n,
        files,
    };
    let export = write_export(&s3, &spec, item).await.expect("write export");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[source]\nprofile = \"src\"\nendpoint_url = \"{d}\"\n[source.endpoints]\ns3 = \"{m}\"\n\n\
         [destination]\nprofile = \"dst\"\nendpoint_url = \"{d}\"\n[destination.endpoints]\ns3 = \"{m}\"\n\n\
         [state]\npath = \"state/ferry.db\"\n\n[[table]]\nsource = \"Orders\"\nsnapshot = \"export\"\n\
         export_s3 = \"{url}\"\nexport_overlap_seconds = 120\n{table_extra}\n",
        d = ddb.endpoint,
        m = moto.endpoint,
        url = export.s3_url(),
    );
    let ferry = FerryDir::custom(&ferry_bin!(), dir.path(), &sa, &da, &config);
    Rig {
        src,
        dst,
        s3,
        export,
        ferry,
        _dir: dir,
    }
}

fn snapshot(f: &FerryDir) -> Option<serde_json::Value> {
    f.table_status("Orders").map(|t| t["snapshot"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loads_an_export_survives_kill_9_and_replays_changes_made_during_and_after() {
    // A write budget stretches the load so the kill lands in it.
    let rig = setup(
        100_000,
        8,
        "ferry-exports-kill",
        "max_write_units_per_second = 12000\nwrite_concurrency = 8\n",
    )
    .await;
    // Changes after the export time, before ferry even starts: only the stream has them.
    let stop = CancellationToken::new();
    let mut wl = Workload::new(rig.src.clone(), "Orders");
    wl.pause = Duration::from_millis(5);
    let writes = wl.spawn(stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut child = rig.ferry.spawn_sync(&[]);
    let before_kill = wait_for(
        Duration::from_secs(120),
        "some export files loaded",
        || rig.ferry.logs(),
        || async {
            let s = snapshot(&rig.ferry)?;
            let done = s["segments_done"].as_u64()?;
            (2..8).contains(&done).then_some(done)
        },
    )
    .await;
    child.kill().expect("kill -9");
    child.wait().unwrap();
    let after_kill = snapshot(&rig.ferry).unwrap();
    assert!(
        after_kill["segments_done"].as_u64().unwrap() >= before_kill,
        "{after_kill}"
    );
    assert_eq!(after_kill["segments_total"], 8);
    assert_eq!(after_kill["done"], false);

    let mut child = rig.ferry.spawn_sync(&[]);
    wait_for(
        Duration::from_secs(180),
        "streaming phase",
        || rig.ferry.logs(),
        || async { (rig.ferry.table_status("Orders")?["phase"] == "streaming").then_some(()) },
    )
    .await;
    let logs = std::fs::read_to_string(rig.ferry.dir.join("sync-2.log")).unwrap();
    assert!(logs.contains("finished files are skipped"), "{logs}");
    stop.cancel();
    let counts = writes.await.unwrap().expect("workload");
    assert!(counts.total() > 100, "the workload made {} writes", counts.total());
    // And changes after the load, while streaming.
    let after = Workload::new(rig.src.clone(), "Orders");
    after
        .run(CancellationToken::new(), Some(300))
        .await
        .expect("workload after");
    wait_caught_up(&rig.ferry, "Orders", Duration::from_secs(180)).await;
    let diff = wait_equal(&rig.src, "Orders", &rig.dst, "Orders", Duration::from_secs(120), || {
        rig.ferry.logs()
    })
    .await;
    assert!(diff.source_items >= 100_000, "{diff}");
    let s = snapshot(&rig.ferry).unwrap();
    assert_eq!(s["segments_done"], 8, "{s}");
    assert_eq!(s["items_copied"], 100_000, "{s}");
    child.kill().ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_data_file_stops_the_table_naming_it() {
    let rig = setup(2_000, 3, "ferry-exports-bad", "").await;
    let gone = rig.export.files[1].clone();
    rig.s3
        .delete_object()
        .bucket(&rig.export.bucket)
        .key(&gone)
        .send()
        .await
        .expect("delete data file");
    let out = rig.ferry.run(&["sync", "-c", "ferry.toml", "--no-progress"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let want = format!(
        "s3://{}/{gone}: data file listed by the export is missing",
        rig.export.bucket
    );
    assert!(stderr.contains(&want), "{stderr}");
    let t = rig.ferry.table_status("Orders").unwrap();
    assert_eq!(t["phase"], "stopped");
    assert!(t["error"].as_str().unwrap().contains(&want), "{t}");
    assert_eq!(t["snapshot"]["done"], false);
    let _ = &rig.dst;
}
