//! Bad plans: `ferry plan` and `ferry sync --plan` name the file and line, exit non-zero, and
//! nothing is created or written.

use aws_sdk_dynamodb::types::{BillingMode, KeyType, ScalarAttributeType, StreamViewType};
use ferry::discover::settings;
use ferry_rig::ferry_bin;
use ferry_rig::moto::Moto;
use ferry_rig::plan::{attr, edit, ferry_dir, key, stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plans_are_refused_with_file_and_line_and_nothing_is_created() {
    let (src_region, dst_region) = ("ap-south-1", "ap-southeast-2");
    let moto = Moto::shared();
    let ddb = moto.dynamodb_in(src_region);
    for name in ["Alpha", "Beta"] {
        ddb.create_table()
            .table_name(name)
            .attribute_definitions(attr("pk", ScalarAttributeType::S))
            .key_schema(key("pk", KeyType::Hash))
            .billing_mode(BillingMode::PayPerRequest)
            .stream_specification(stream(StreamViewType::NewAndOldImages))
            .send()
            .await
            .unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let f = ferry_dir(&ferry_bin!(), work.path(), src_region, dst_region);
    let out = f.run(&["discover", "-c", "ferry.toml", "--out", "plan"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = f.run(&["discover", "-c", "ferry.toml", "--out", "plan"]);
    assert!(!again.status.success(), "discover overwrote a plan without --force");

    let plan = f.dir.join("plan");
    let pristine: Vec<(std::path::PathBuf, String)> = [
        "tables.csv",
        "lambda-map.csv",
        "schemas/Alpha.json",
        "schemas/Beta.json",
    ]
    .iter()
    .map(|p| (plan.join(p), std::fs::read_to_string(plan.join(p)).unwrap()))
    .collect();
    let restore = || {
        for (p, text) in &pristine {
            std::fs::write(p, text).unwrap();
        }
    };
    // The index is written on the line of "GlobalSecondaryIndexes"; its name sits at column 44.
    let gsi_line = pristine[2]
        .1
        .lines()
        .position(|l| l.contains("GlobalSecondaryIndexes"))
        .unwrap()
        + 1;
    let undefined = format!(
        "plan/schemas/Alpha.json:{gsi_line}:44: index \"byX\": key attribute \"x\" is not in AttributeDefinitions"
    );
    type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "unknown column",
            Box::new(|| edit(&plan.join("tables.csv"), "lsi_count", "lsi_count,owner")),
            "plan/tables.csv:1:16: unknown column \"owner\"",
        ),
        (
            "bad quoting",
            Box::new(|| edit(&plan.join("tables.csv"), "Beta,yes,Beta,", "\"Beta,yes,Beta,")),
            "plan/tables.csv:3: row has",
        ),
        (
            "destination clash",
            Box::new(|| edit(&plan.join("tables.csv"), "Beta,yes,Beta,", "Beta,yes,Alpha,")),
            "plan/tables.csv:3: destination \"Alpha\" of \"Beta\" clashes with \"Alpha\" on line 2",
        ),
        (
            "index on an undefined attribute",
            Box::new(|| {
                edit(
                    &plan.join("schemas/Alpha.json"),
                    "\"GlobalSecondaryIndexes\": [],",
                    "\"GlobalSecondaryIndexes\": [{\"IndexName\": \"byX\", \"KeySchema\": [{\"AttributeName\": \"x\", \
                     \"KeyType\": \"HASH\"}], \"Projection\": {\"ProjectionType\": \"ALL\"}}],",
                )
            }),
            &undefined,
        ),
        (
            "invalid JSON",
            Box::new(|| {
                edit(
                    &plan.join("schemas/Beta.json"),
                    "\"BillingMode\"",
                    "\"BillingMode\" oops",
                )
            }),
            "plan/schemas/Beta.json:",
        ),
    ];
    for (what, break_it, want) in cases {
        restore();
        break_it();
        for args in [
            vec!["plan", "-c", "ferry.toml", "--plan", "plan"],
            vec!["sync", "-c", "ferry.toml", "--plan", "plan", "--no-progress"],
        ] {
            let out = f.run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}: `ferry {}` accepted the plan", args[0]);
            assert!(err.contains(want), "{what}: `ferry {}` said:\n{err}", args[0]);
        }
    }
    let dst = moto.clients("destination", dst_region);
    assert!(
        settings::list_tables(&dst).await.unwrap().is_empty(),
        "a bad plan created tables"
    );
    assert!(!f.dir.join("state/ferry.db").exists(), "a bad plan wrote state");

    // Keys that differ from the source's: every replicated write would fail. (Alpha is left out
    // so that sync, with its only table stopped, exits.)
    restore();
    edit(&plan.join("tables.csv"), "Alpha,yes,Alpha,", "Alpha,no,Alpha,");
    edit(
        &plan.join("schemas/Beta.json"),
        "\"AttributeType\": \"S\"",
        "\"AttributeType\": \"N\"",
    );
    let out = f.run(&["plan", "-c", "ferry.toml", "--plan", "plan"]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("FAIL  schemas/Beta.json has keys [pk (N, HASH)], the source has [pk (S, HASH)]"),
        "{report}"
    );
    let out = f.run(&["sync", "-c", "ferry.toml", "--plan", "plan", "--no-progress"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("the plan's schema of Beta has keys [pk (N, HASH)]"),
        "{err}"
    );
    assert!(
        settings::list_tables(&dst).await.unwrap().iter().all(|t| t != "Beta"),
        "Beta was created"
    );
}
