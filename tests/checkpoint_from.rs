//! `ferry sync --from`: a fresh start replays the stream from the given time instead of the
//! capture point; a table that has started already is refused (its position is moved with
//! `ferry checkpoint set`).

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::types::StreamViewType;
use common::{ferry_bin, wait_caught_up};
use ferry::rig::data::{create_table, load, rich_item};
use ferry::rig::process::{FerryDir, terminate};
use ferry::rig::{Account, DynamoLocal};
use rand::SeedableRng;
use rand::rngs::StdRng;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn from_sets_the_replay_point_of_a_fresh_start_only() {
    let ddb = DynamoLocal::shared();
    let (sa, da) = (Account::fresh("src"), Account::fresh("dst"));
    let (src, dst) = (ddb.client(&sa), ddb.client(&da));
    create_table(&src, "Orders", Some(StreamViewType::NewAndOldImages)).await;
    let mut rng = StdRng::seed_from_u64(9);
    // In the stream, and within the default replay overlap of a start without --from.
    load(&src, "Orders", (0..50).map(|i| rich_item("p", i, &mut rng)).collect()).await;
    let dir = tempfile::tempdir().unwrap();
    let f = FerryDir::new(
        &ferry_bin(),
        dir.path(),
        ddb,
        &sa,
        &da,
        "[[table]]\nsource = \"Orders\"\nsnapshot = \"none\"\n",
    );
    // Everything in the stream is older than --from: nothing is applied.
    let mut child = f.spawn_sync(&["--from", "2099-01-01T00:00:00Z"]);
    wait_caught_up(&f, "Orders", Duration::from_secs(120)).await;
    let n = dst
        .scan()
        .table_name("Orders")
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(n.count, 0, "{}", f.logs());
    let list: serde_json::Value =
        serde_json::from_slice(&f.run(&["checkpoint", "list", "-c", "ferry.toml", "--json"]).stdout).unwrap();
    assert_eq!(list[0]["replay_from"], "2099-01-01T00:00:00.000Z", "{list}");
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", f.logs());

    let again = f.run(&["sync", "-c", "ferry.toml", "--from", "2026-01-01T00:00:00Z"]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("fresh start only") && err.contains("checkpoint set"),
        "{err}"
    );
    let bad = f.run(&["sync", "-c", "ferry.toml", "--from", "yesterday"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not an RFC 3339 time"),
        "{bad:?}"
    );
}
