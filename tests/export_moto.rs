//! `snapshot = "export"` end to end against moto: the source table in moto's DynamoDB (PITR,
//! ExportTableToPointInTime), the export written into a bucket owned by another account
//! (`bucket_owner`), loaded into that account by ferry's loader or by ImportTable, then the
//! source's stream replayed on top.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use ferry_rig::Account;
use ferry_rig::data::{load, rich_item};
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::process::FerryDir;
use ferry_rig::wait::{wait_equal, wait_for};
use ferry_rig::workload::Workload;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

const DST_ACCOUNT: &str = "111111111111";

/// Runs one migration from moto's default account into DST_ACCOUNT with `loader`, by `workers`
/// workers (several: the state in a DynamoDB table in DST_ACCOUNT, the export's files leased).
async fn migrate(table: &str, loader: &str, workers: usize) {
    let moto = Moto::shared();
    let bucket = format!("ferry-dst-{}", table.to_lowercase());
    let (src, dst) = moto.cross_account(DST_ACCOUNT, table, &bucket).await;
    let mut rng = StdRng::seed_from_u64(7);
    load(
        &src,
        table,
        (0..300)
            .map(|i| rich_item(&format!("m-{}", i % 13), i, &mut rng))
            .collect(),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let (sa, da) = (Account::fresh("msrc"), Account::fresh("mdst"));
    let config = format!(
        "[source]\nprofile = \"src\"\nendpoint_url = \"{m}\"\n\n\
         [destination]\nprofile = \"dst\"\nendpoint_url = \"{m}\"\nrole_arn = \"arn:aws:iam::{DST_ACCOUNT}:role/ferry-dst\"\n\n\
         {state}\n\n[export]\nbucket = \"{bucket}\"\nprefix = \"exports\"\nbucket_owner = \"{DST_ACCOUNT}\"\n\
         sse = \"AES256\"\n\n[[table]]\nsource = \"{table}\"\nsnapshot = \"export\"\nloader = \"{loader}\"\n",
        m = moto.endpoint,
        state = match workers {
            1 => "[state]\npath = \"state/ferry.db\"",
            _ => "[state]\nbackend = \"dynamodb\"\nfailover_seconds = 3",
        },
    );
    let ferry = FerryDir::custom(&ferry_bin!(), dir.path(), &sa, &da, &config);

    let _children: Vec<_> = match workers {
        1 => {
            refused_without_pitr(&ferry, &dst, table).await;
            vec![ferry.spawn_sync(&["--enable-pitr"])]
        }
        n => (0..n).map(|_| ferry.spawn_sync(&["--enable-pitr"])).collect(),
    };
    // Changes while the export is made and loaded: only the stream carries them.
    let during = Workload::new(src.clone(), table);
    let during = tokio::spawn(async move { during.run(CancellationToken::new(), Some(200)).await });
    wait_for(
        Duration::from_secs(120),
        "streaming phase",
        || ferry.logs(),
        || async { (ferry.table_status(table)?["phase"] == "streaming").then_some(()) },
    )
    .await;
    let counts = during.await.unwrap().expect("workload during the load");
    assert!(counts.total() >= 200);
    wait_equal(&src, table, &dst, table, Duration::from_secs(60), || ferry.logs()).await;

    // Changes after the load come through the stream.
    src.put_item()
        .table_name(table)
        .set_item(Some(rich_item("after", 1, &mut rng)))
        .send()
        .await
        .unwrap();
    src.delete_item()
        .table_name(table)
        .key("pk", AttributeValue::S("m-0".into()))
        .key("sk", AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    let diff = wait_equal(&src, table, &dst, table, Duration::from_secs(60), || ferry.logs()).await;
    assert!(diff.source_items >= 300, "{diff}");
    let logs = ferry.all_logs();
    assert!(logs.contains("export started"), "{}", ferry.logs());
    assert_eq!(
        logs.contains("ImportTable started"),
        loader == "import",
        "{}",
        ferry.logs()
    );
    if loader == "import" {
        // ImportTable built the table like its source, GSI included.
        let d = dst
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        assert_eq!(d.global_secondary_indexes()[0].index_name(), Some("by_group"));
    } else {
        assert_eq!(
            logs.contains(&format!("holding export file 0 of table {table}")),
            workers > 1,
            "{}",
            ferry.logs()
        );
        // A file's row is written once all its items are durable, so the status may trail the
        // data the comparison above already saw: wait on it.
        wait_for(
            Duration::from_secs(30),
            "the status to count every loaded item",
            || ferry.logs(),
            || async {
                let s = ferry.table_status(table)?;
                (s["snapshot"]["items_copied"].as_i64()? >= 300).then_some(())
            },
        )
        .await;
    }
}

/// PITR is off: a clear refusal, and nothing written anywhere.
async fn refused_without_pitr(ferry: &FerryDir, dst: &aws_sdk_dynamodb::Client, table: &str) {
    let out = ferry.run(&["sync", "-c", "ferry.toml", "--no-progress"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("point-in-time recovery off") && stderr.contains("--enable-pitr"),
        "{stderr}"
    );
    let tables = dst.list_tables().send().await.unwrap();
    assert!(!tables.table_names().contains(&table.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_and_ferry_loader_into_another_account_then_stream() {
    migrate("OrdersF", "ferry", 1).await;
}

/// Two workers: the export's data files are leases of their own, loaded by whichever holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_load_an_exports_files_under_their_own_leases_then_stream() {
    migrate("OrdersW", "ferry", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_and_import_table_into_another_account_then_stream() {
    migrate("OrdersI", "import", 1).await;
}
