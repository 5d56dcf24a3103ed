//! `ferry checkpoint list/set` on the local rig: a destination damaged by hand is brought back by
//! rewinding the stream position to before the damage and restarting `ferry sync`.
//!
//! DynamoDB Local cuts ApproximateCreationDateTime to the minute, so the rewind goes a minute
//! further back than the changes it must replay (it replays more, which converges all the same).

use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use ferry_rig::compare::compare;
use ferry_rig::data::{key_of, load, rich_item};
use ferry_rig::ferry_bin;
use ferry_rig::process::{FerryDir, terminate};
use ferry_rig::scenario::Scenario;
use ferry_rig::wait::{wait_caught_up, wait_equal, wait_for};

/// Starts `ferry sync` again and waits until this run streams and is caught up (the caught-up flag
/// in the store is the last run's until this one publishes, hence the wait on its log first).
async fn restart(f: &FerryDir) -> ferry_rig::process::Running {
    let child = f.spawn_sync(&[]);
    let log = f
        .dir
        .join(format!("sync-{}.log", f.logs().matches("--- sync-").count()));
    wait_for(
        Duration::from_secs(60),
        "the restarted sync to stream",
        || f.logs(),
        || async {
            std::fs::read_to_string(&log)
                .ok()?
                .contains("streaming changes")
                .then_some(())
        },
    )
    .await;
    wait_caught_up(f, "Orders", Duration::from_secs(120)).await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rewinding_before_damage_makes_the_destination_equal_again() {
    rewind(false).await;
}

/// The same with the state in DynamoDB: the move takes the table's lease, so it is refused while
/// a worker renews it, and the worker takes the table back from the moved position.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rewinding_works_the_same_with_the_state_in_dynamodb() {
    rewind(true).await;
}

async fn rewind(state_in_dynamodb: bool) {
    let s = Scenario::setup(ferry_bin!()).items(400, 3).keys("p", 13).build().await;
    if state_in_dynamodb {
        s.ferry.state_in_dynamodb(&ferry_rig::Account::fresh("state"), 3);
    }
    let mut rng = s.rng.clone();
    let (src, dst, f) = (&s.src, &s.dst, &s.ferry);
    let mut child = s.sync_caught_up(&[]).await;

    // Changes that go through the stream, then damage at the destination.
    let before_changes = SystemTime::now() - Duration::from_secs(60);
    let changed: Vec<_> = (0..40)
        .map(|i| rich_item(&format!("p{}", i % 13), i, &mut rng))
        .collect();
    load(src, "Orders", changed).await;
    wait_caught_up(f, "Orders", Duration::from_secs(60)).await;
    wait_equal(src, "Orders", dst, "Orders", Duration::from_secs(60), || f.logs()).await;

    let out = f.run(&[
        "checkpoint",
        "set",
        "-c",
        "ferry.toml",
        "--table",
        "Orders",
        "--trim-horizon",
        "--yes",
    ]);
    assert!(
        !out.status.success(),
        "a checkpoint may not move under a running daemon"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stop `ferry sync`"),
        "{out:?}"
    );
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", f.logs());

    for i in 0..5 {
        let k = key_of(&format!("p{}", i % 13), i);
        dst.delete_item()
            .table_name("Orders")
            .set_key(Some(k))
            .send()
            .await
            .unwrap();
    }
    for i in 5..8 {
        let mut k = key_of(&format!("p{}", i % 13), i);
        k.insert("s".into(), AttributeValue::S("damaged".into()));
        dst.put_item()
            .table_name("Orders")
            .set_item(Some(k))
            .send()
            .await
            .unwrap();
    }
    let damaged = compare(src, "Orders", dst, "Orders").await.unwrap();
    assert!(!damaged.is_equal());

    // A restart alone repairs nothing: the checkpoint is past those changes.
    let mut child = restart(f).await;
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", f.logs());
    assert!(!compare(src, "Orders", dst, "Orders").await.unwrap().is_equal());

    let listed = f.run(&["checkpoint", "list", "-c", "ferry.toml", "--json"]);
    assert!(listed.status.success(), "{listed:?}");
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let shards = list[0]["shards"].as_array().unwrap();
    assert!(shards.iter().any(|s| s["position"].is_string()), "{list}");
    assert!(shards.iter().any(|s| s["last_record_time"].is_string()), "{list}");

    let at = humantime::format_rfc3339_seconds(before_changes).to_string();
    let declined = f.run(&[
        "checkpoint",
        "set",
        "-c",
        "ferry.toml",
        "--table",
        "Orders",
        "--at",
        &at,
    ]);
    assert!(
        !declined.status.success(),
        "without --yes and no answer, nothing changes"
    );
    let after_decline: serde_json::Value =
        serde_json::from_slice(&f.run(&["checkpoint", "list", "-c", "ferry.toml", "--json"]).stdout).unwrap();
    assert_eq!(after_decline, list);

    let set = f.run(&[
        "checkpoint",
        "set",
        "-c",
        "ferry.toml",
        "--table",
        "Orders",
        "--at",
        &at,
        "--yes",
    ]);
    assert!(
        set.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&set.stdout),
        String::from_utf8_lossy(&set.stderr)
    );
    let mut child = restart(f).await;
    wait_equal(src, "Orders", dst, "Orders", Duration::from_secs(60), || f.logs()).await;
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", f.logs());
}
