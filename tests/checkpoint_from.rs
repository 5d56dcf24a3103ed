//! `ferry sync --from`: a fresh start replays the stream from the given time instead of the
//! capture point; a table that has started already is refused (its position is moved with
//! `ferry checkpoint set`).

use ferry_rig::ferry_bin;
use ferry_rig::process::terminate;
use ferry_rig::scenario::Scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn from_sets_the_replay_point_of_a_fresh_start_only() {
    // 50 items in the stream, and within the default replay overlap of a start without --from.
    let s = Scenario::setup(ferry_bin!())
        .items(50, 9)
        .tables("[[table]]\nsource = \"Orders\"\nsnapshot = \"none\"\n")
        .build()
        .await;
    let (dst, f) = (&s.dst, &s.ferry);
    // Everything in the stream is older than --from: nothing is applied.
    let mut child = s.sync_caught_up(&["--from", "2099-01-01T00:00:00Z"]).await;
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
