//! What a user trying ferry on the local rig runs into, live on DynamoDB Local: empty maps in
//! stream images (DynamoDB Local writes them `{}`, without their "M"), and `ferry status` right
//! after the daemon was killed.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue as Av, StreamViewType};
use ferry::item::Item;
use ferry_rig::data::{create_table, key_of, load};
use ferry_rig::ferry_bin;
use ferry_rig::process::FerryDir;
use ferry_rig::wait::{wait_equal, wait_for};
use ferry_rig::{Account, DynamoLocal};

struct Rig {
    src: aws_sdk_dynamodb::Client,
    dst: aws_sdk_dynamodb::Client,
    ferry: FerryDir,
    _dir: tempfile::TempDir,
}

/// A source table `name` with a NEW_AND_OLD_IMAGES stream and `items`, and a ferry folder for it.
async fn setup(name: &str, items: Vec<Item>) -> Rig {
    let ddb = DynamoLocal::shared();
    let (sa, da) = (Account::fresh("qsrc"), Account::fresh("qdst"));
    let src = ddb.client(&sa);
    create_table(&src, name, Some(StreamViewType::NewAndOldImages)).await;
    load(&src, name, items).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let table = format!("[[table]]\nsource = \"{name}\"\nscan_segments = 2\n");
    let ferry = FerryDir::new(&ferry_bin!(), dir.path(), ddb, &sa, &da, &table);
    Rig {
        src,
        dst: ddb.client(&da),
        ferry,
        _dir: dir,
    }
}

fn empty() -> Av {
    Av::M(Item::new())
}

/// An item with an empty map at the top level, in a list and in a map.
fn with_empty_maps(pk: &str, sk: i64, v: i64) -> Item {
    let mut item = key_of(pk, sk);
    item.insert("top".into(), empty());
    item.insert(
        "in_list".into(),
        Av::L(vec![empty(), Av::N(v.to_string()), Av::L(vec![empty()])]),
    );
    item.insert(
        "in_map".into(),
        Av::M(Item::from([
            ("inner".to_string(), empty()),
            ("deeper".to_string(), Av::M(Item::from([("e".to_string(), empty())]))),
            ("v".to_string(), Av::N(v.to_string())),
        ])),
    );
    item
}

async fn table_field(f: &FerryDir, table: &str, field: &str) -> Option<serde_json::Value> {
    f.table_status(table).map(|t| t[field].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_maps_replicate_by_snapshot_and_by_stream() {
    let rig = setup("Maps", (0..30).map(|i| with_empty_maps("snap", i, i)).collect()).await;
    let _sync = rig.ferry.spawn_sync(&["--no-progress"]);
    wait_for(
        Duration::from_secs(120),
        "streaming phase",
        || rig.ferry.logs(),
        || async { (table_field(&rig.ferry, "Maps", "phase").await? == "streaming").then_some(()) },
    )
    .await;
    // Through the stream: new items, and overwrites of snapshot items (MODIFY images).
    let mut changes: Vec<Item> = (0..20).map(|i| with_empty_maps("live", i, i)).collect();
    changes.extend((0..10).map(|i| with_empty_maps("snap", i, 1000 + i)));
    load(&rig.src, "Maps", changes).await;
    wait_equal(&rig.src, "Maps", &rig.dst, "Maps", Duration::from_secs(120), || {
        rig.ferry.logs()
    })
    .await;
    let t = rig.ferry.table_status("Maps").expect("status");
    assert_eq!(
        (&t["phase"], &t["error"]),
        (&"streaming".into(), &serde_json::Value::Null),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_right_after_a_kill_9_says_the_daemon_is_not_running() {
    let rig = setup("Killed", (0..10).map(|i| key_of("k", i)).collect()).await;
    let mut sync = rig.ferry.spawn_sync(&["--no-progress"]);
    wait_for(
        Duration::from_secs(120),
        "a running daemon in streaming phase",
        || rig.ferry.logs(),
        || async {
            let t = rig.ferry.table_status("Killed")?;
            (t["phase"] == "streaming" && t["daemon_running"] == true).then_some(())
        },
    )
    .await;
    sync.kill().expect("kill -9");
    sync.wait().expect("reaped");
    let t = rig.ferry.table_status("Killed").expect("status still readable");
    assert_eq!(t["daemon_running"], false, "{t}");
    let out = rig.ferry.run(&["status", "-c", "ferry.toml"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("daemon: not running"), "{text}");
}
