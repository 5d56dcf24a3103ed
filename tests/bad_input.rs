//! Bad input never half-runs: each case exits non-zero with one clear message, and nothing is
//! written to the destination (no table created, no item written).

use std::process::Output;

use ferry_rig::data::{create_other_schema_table, create_table, load, rich_item};
use ferry_rig::scenario::Scenario;
use ferry_rig::{DynamoLocal, ferry_bin};
use rand::SeedableRng;

type Case = Scenario;

/// Source account with an "Orders" table (stream on) holding a few items.
async fn case(tables: &str) -> Case {
    Scenario::setup(ferry_bin!())
        .accounts("bsrc", "bdst")
        .items(20, 1)
        .tables(tables)
        .build()
        .await
}

/// Non-zero exit, exactly one error message containing every `needles`, no panic.
fn assert_refused(out: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "expected failure, got success\n{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "one message expected:\n{err}"
    );
    assert!(!err.contains(" WARN "), "no noise around the message:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "missing {n:?} in:\n{err}");
    }
    err
}

async fn destination_tables(c: &aws_sdk_dynamodb::Client) -> Vec<String> {
    c.list_tables().send().await.unwrap().table_names.unwrap_or_default()
}

fn sync(c: &Case) -> Output {
    c.ferry.run(&["sync", "-c", "ferry.toml", "--no-progress"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_configs_name_file_and_line() {
    let c = case("[[table]]\nsource = \"Orders\"\n").await;
    let toml = c.ferry.config.clone();
    let good = std::fs::read_to_string(&toml).unwrap();

    std::fs::write(&toml, good.replace("[state]", "[state")).unwrap();
    assert_refused(&sync(&c), &["ferry.toml:", "TOML syntax error"]);

    std::fs::write(
        &toml,
        good.replace("profile = \"src\"", "profile = \"src\"\nregoin = \"x\""),
    )
    .unwrap();
    assert_refused(&sync(&c), &["ferry.toml:3:1", "unknown key \"regoin\" in [source]"]);

    std::fs::write(&toml, good.replace("[[table]]\nsource = \"Orders\"\n", "")).unwrap();
    assert_refused(&sync(&c), &["no [[table]] entries"]);

    assert!(destination_tables(&c.dst).await.is_empty());
    assert!(
        !c.ferry.dir.join("state/ferry.db").exists(),
        "no state written for a bad config"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_is_named() {
    let c = case("[[table]]\nsource = \"Orders\"\n").await;
    let text = std::fs::read_to_string(&c.ferry.config).unwrap();
    let bad = text.replacen(&DynamoLocal::shared().endpoint, "http://127.0.0.1:9", 1);
    std::fs::write(&c.ferry.config, bad).unwrap();
    let out = sync(&c);
    assert_refused(
        &out,
        &["source table Orders at http://127.0.0.1:9", "connection failed"],
    );
    assert!(destination_tables(&c.dst).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_source_table_is_named() {
    let c = case("[[table]]\nsource = \"Nope\"\n").await;
    assert_refused(&sync(&c), &["table Nope", "source table \"Nope\" not found"]);
    assert!(destination_tables(&c.dst).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_equal_to_destination_is_refused() {
    let c = case("[[table]]\nsource = \"Orders\"\n").await;
    let text = std::fs::read_to_string(&c.ferry.config).unwrap();
    std::fs::write(&c.ferry.config, text.replace("profile = \"dst\"", "profile = \"src\"")).unwrap();
    let before = ferry_rig::compare::scan_all(&c.src, "Orders").await.unwrap();
    assert_refused(
        &sync(&c),
        &[
            "source and destination are the same table",
            "never writes to a source table",
        ],
    );
    assert_eq!(ferry_rig::compare::scan_all(&c.src, "Orders").await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_with_another_key_schema_is_refused() {
    let c = case("[[table]]\nsource = \"Orders\"\n").await;
    create_other_schema_table(&c.dst, "Orders").await;
    assert_refused(
        &sync(&c),
        &["another key schema", "pk (S, HASH), sk (N, RANGE)", "id (S, HASH)"],
    );
    let n = c.dst.scan().table_name("Orders").send().await.unwrap().count;
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_empty_destination_and_missing_stream_are_refused_before_anything_is_written() {
    // Two tables: one fine, one without a stream. Nothing may happen to either destination.
    let c = case("[[table]]\nsource = \"Orders\"\n\n[[table]]\nsource = \"Plain\"\n").await;
    create_other_schema_table(&c.src, "Plain").await;
    let out = sync(&c);
    assert_refused(&out, &["table Plain", "has no stream enabled", "--enable-streams"]);
    assert!(
        destination_tables(&c.dst).await.is_empty(),
        "Orders was not started either"
    );

    // A destination that already holds items.
    let c = case("[[table]]\nsource = \"Orders\"\n").await;
    create_table(&c.dst, "Orders", None).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    load(&c.dst, "Orders", vec![rich_item("other", 1, &mut rng)]).await;
    assert_refused(&sync(&c), &["already holds items", "--allow-nonempty"]);
    assert_eq!(c.dst.scan().table_name("Orders").send().await.unwrap().count, 1);
}
