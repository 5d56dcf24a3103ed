//! Parsing `ferry.toml`: every key, its defaults, and every error with its place.

use super::*;

/// The error text names `want` (shown whole when it does not).
fn has(err: &str, want: &str) {
    assert!(err.contains(want), "{err}");
}

fn parse(text: &str) -> Result<Config> {
    Config::parse(Path::new("conf/ferry.toml"), text)
}

const GOOD: &str = r#"
[source]
region = "us-east-1"
profile = "src"
endpoint_url = "http://127.0.0.1:8000"
[source.endpoints]
streams = "http://127.0.0.1:8001"
[destination]
region = "eu-west-1"
role_arn = "arn:aws:iam::111111111111:role/ferry-destination"
[state]
path = "state/ferry.db"
[[table]]
source = "Orders"
scan_segments = 4
max_write_units_per_second = 1_000
max_read_units_per_second = 250
[[table]]
source = "Users"
destination = "UsersV2"
snapshot = "none"
"#;

#[test]
fn reads_a_full_config_with_defaults() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.source.profile.as_deref(), Some("src"));
    assert_eq!(c.source.endpoints.streams.as_deref(), Some("http://127.0.0.1:8001"));
    assert_eq!(
        c.destination.role_arn.as_deref(),
        Some("arn:aws:iam::111111111111:role/ferry-destination")
    );
    assert!(
        matches!(&c.state, StateConfig::Sqlite(p) if p == Path::new("conf/state/ferry.db")),
        "{:?}",
        c.state
    );
    assert_eq!(c.tables.len(), 2);
    assert_eq!(c.tables[0].destination, "Orders");
    assert_eq!(c.tables[0].scan_segments, Some(4));
    assert_eq!(c.tables[0].max_write_units_per_second, Some(1000));
    assert_eq!(
        c.tables[1].max_write_units_per_second, None,
        "a share of the destination's capacity"
    );
    assert_eq!(c.tables[0].max_read_units_per_second, Some(250));
    assert_eq!(
        c.tables[1].max_read_units_per_second, None,
        "half the table's read capacity"
    );
    assert_eq!(c.tables[1].destination, "UsersV2");
    assert_eq!(c.tables[1].snapshot, Snapshot::None);
    assert_eq!(c.tables[1].scan_segments, None, "sized from the table");
}

#[test]
fn reports_every_problem_at_once_with_lines() {
    let text = "[source]\nregoin = \"x\"\n[destination]\nregion = 5\n[[table]]\nsource = \"A\"\nsnapshot = \"export-ish\"\nscan_segments = -1\n";
    let err = parse(text).unwrap_err().to_string();
    assert!(err.contains("4 problems"), "{err}");
    has(&err, "conf/ferry.toml:2:1: unknown key \"regoin\" in [source]");
    has(
        &err,
        "conf/ferry.toml:4:10: region in [destination] must be a string, found integer",
    );
    has(
        &err,
        "conf/ferry.toml:7:12: snapshot in [[table]] #1 must be \"scan\", \"export\" or \"none\"",
    );
    has(
        &err,
        "conf/ferry.toml:8:17: scan_segments in [[table]] #1 must be a non-negative integer, found -1",
    );
}

#[test]
fn a_write_budget_of_zero_is_unlimited_and_a_bad_one_is_named_with_its_line() {
    let c = parse("[source]\n[destination]\n[[table]]\nsource = \"A\"\nmax_write_units_per_second = 0\n").unwrap();
    assert_eq!(c.tables[0].max_write_units_per_second, Some(0), "set: unlimited");
    for (value, want) in [
        (
            "-5",
            "conf/ferry.toml:5:30: max_write_units_per_second in [[table]] #1 must be a non-negative integer, found -5",
        ),
        (
            "\"fast\"",
            "conf/ferry.toml:5:30: max_write_units_per_second in [[table]] #1 must be a non-negative integer, found string",
        ),
        (
            "5_000_000_000",
            "conf/ferry.toml:5:30: max_write_units_per_second in [[table]] #1 must be at most 4294967295, found 5000000000",
        ),
    ] {
        let text =
            format!("[source]\n[destination]\n[[table]]\nsource = \"A\"\nmax_write_units_per_second = {value}\n");
        has(&parse(&text).unwrap_err().to_string(), want);
    }
}

#[test]
fn syntax_errors_and_missing_tables_are_named() {
    let err = parse("[source]\nregion = \"x\n").unwrap_err().to_string();
    assert!(
        err.contains("conf/ferry.toml:2:") && err.contains("TOML syntax error"),
        "{err}"
    );
    let err = parse("[source]\n[destination]\n").unwrap_err().to_string();
    assert!(err.contains("no [[table]] entries"), "{err}");
    let err = parse("[[table]]\nsource = \"A\"\n").unwrap_err().to_string();
    assert!(
        err.contains("missing [source] section") && err.contains("missing [destination] section"),
        "{err}"
    );
}

#[test]
fn overlaps_below_the_safe_minimum_are_refused() {
    let err = parse(
        "[source]\n[destination]\n[[table]]\nsource=\"A\"\nreplay_overlap_seconds = 0\n\
         [[table]]\nsource=\"B\"\nsnapshot = \"export\"\nexport_s3 = \"s3://b/p/AWSDynamoDB/01/\"\nexport_overlap_seconds = 5\n",
    )
    .unwrap_err()
    .to_string();
    has(
        &err,
        "replay_overlap_seconds in [[table]] #1 must be at least 60, found 0",
    );
    has(
        &err,
        "export_overlap_seconds in [[table]] #2 must be at least 60, found 5",
    );
    assert!(err.contains(":5:"), "names the line: {err}");
}

#[test]
fn replay_overlap_stays_below_stream_retention() {
    let err = parse("[source]\n[destination]\n[[table]]\nsource=\"A\"\nreplay_overlap_seconds = 86400\n")
        .unwrap_err()
        .to_string();
    has(&err, "replay_overlap_seconds in [[table]] #1 must be at most 82800");
}

#[test]
fn reads_export_settings_and_checks_them() {
    let c = parse(
        "[source]\n[destination]\n[export]\nbucket = \"dst-bucket\"\nprefix = \"/exports/\"\nbucket_owner = \"111111111111\"\n\
         sse = \"KMS\"\nkms_key_id = \"k1\"\n[[table]]\nsource = \"A\"\nsnapshot = \"export\"\nloader = \"import\"\n\
         [[table]]\nsource = \"B\"\nsnapshot = \"export\"\nexport_s3 = \"s3://b/p/AWSDynamoDB/01/\"\nexport_overlap_seconds = 60\n",
    )
    .unwrap();
    let a = c.tables[0].export().unwrap();
    assert_eq!(a.loader, Loader::Import);
    let t = a.target().unwrap();
    assert_eq!(t.prefix.as_deref(), Some("exports"));
    assert_eq!(t.sse, Some(Sse::Kms("k1".into())));
    assert_eq!(a.overlap_seconds, 300);
    let b = c.tables[1].export().unwrap();
    assert_eq!(b.target(), None);
    assert_eq!(
        b.source,
        ExportSource::Folder {
            bucket: "b".into(),
            folder: "p/AWSDynamoDB/01/".into()
        }
    );
    assert_eq!(b.overlap_seconds, 60);

    let err = parse(
        "[source]\n[destination]\n[[table]]\nsource = \"A\"\nsnapshot = \"export\"\nloader = \"fast\"\n\
         [[table]]\nsource = \"B\"\nexport_arn = \"arn:x\"\n[[table]]\nsource = \"C\"\nsnapshot = \"export\"\n\
         export_s3 = \"http://x\"\n[table.export]\nbucket = \"b\"\nsse = \"KMS\"\nformat = \"ION\"\n",
    )
    .unwrap_err()
    .to_string();
    for want in [
        "loader in [[table]] #1 must be \"ferry\" or \"import\", found \"fast\"",
        "[[table]] #1 has snapshot = \"export\" but no [export] bucket",
        "[[table]] #2 has export settings but snapshot is not \"export\"",
        "export_s3 in [[table]] #3 must look like \"s3://bucket/prefix/AWSDynamoDB/<export id>/\"",
        "needs kms_key_id",
        "must be \"DYNAMODB_JSON\"",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
}

#[test]
fn reads_an_sqs_change_source_and_reports_its_mistakes_at_once() {
    let c = parse(
        "[source]\n[destination]\n[[table]]\nsource=\"A\"\nchange_source = \"sqs\"\n\
         queue_url = \"https://sqs.us-east-1.amazonaws.com/1/a.fifo\"\nqueue_receivers = 2\n",
    )
    .unwrap();
    let ChangeSource::Sqs(q) = &c.tables[0].change_source else {
        panic!("{:?}", c.tables[0].change_source)
    };
    assert_eq!(q.url, "https://sqs.us-east-1.amazonaws.com/1/a.fifo");
    assert_eq!((q.receivers, q.visibility_timeout_seconds), (2, 120));
    assert!(!q.allow_dead_letter, "a redrive policy is refused unless opted in");
    let c = parse(
        "[source]\n[destination]\n[[table]]\nsource=\"A\"\nchange_source = \"sqs\"\n\
         queue_url = \"https://q/a.fifo\"\nqueue_allow_dead_letter = true\n",
    )
    .unwrap();
    let ChangeSource::Sqs(q) = &c.tables[0].change_source else {
        panic!()
    };
    assert!(q.allow_dead_letter);
    let err = parse(
        "[source]\n[destination]\n[[table]]\nsource=\"A\"\nchange_source = \"sqs\"\n\
         queue_url = \"https://q/a.fifo\"\nqueue_allow_dead_letter = \"yes\"\n",
    )
    .unwrap_err()
    .to_string();
    has(&err, "queue_allow_dead_letter in [[table]] #1 must be true or false");
    assert_eq!(
        parse("[source]\n[destination]\n[[table]]\nsource=\"A\"\n")
            .unwrap()
            .tables[0]
            .change_source,
        ChangeSource::Streams
    );
    let text = "[source]\n[destination]\n[[table]]\nsource=\"A\"\nchange_source = \"sqs\"\n\
                [[table]]\nsource=\"B\"\nqueue_url = \"https://q/b.fifo\"\n\
                [[table]]\nsource=\"C\"\nchange_source = \"sqs\"\nqueue_url = \"https://q/standard\"\n\
                [[table]]\nsource=\"D\"\nchange_source = \"kinesis\"\n";
    let err = parse(text).unwrap_err().to_string();
    assert!(err.contains("4 problems"), "{err}");
    has(
        &err,
        "conf/ferry.toml:5:17: change_source = \"sqs\" in [[table]] #1 needs queue_url",
    );
    has(
        &err,
        "conf/ferry.toml:8:13: queue_url in [[table]] #2 needs change_source = \"sqs\"",
    );
    has(
        &err,
        "conf/ferry.toml:12:13: queue_url in [[table]] #3 must be the http(s) URL of a FIFO queue",
    );
    has(
        &err,
        "conf/ferry.toml:15:17: change_source in [[table]] #4 must be \"streams\" or \"sqs\"",
    );
}

#[test]
fn rejects_two_entries_writing_one_destination() {
    let err = parse("[source]\n[destination]\n[[table]]\nsource=\"A\"\ndestination=\"X\"\n[[table]]\nsource=\"B\"\ndestination=\"X\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("destination table \"X\" is the target of two"), "{err}");
}

const SIDES: &str = "[source]\nregion = \"us-east-1\"\n[destination]\nregion = \"eu-west-1\"\nprofile = \"dst\"\n\
                     endpoint_url = \"http://127.0.0.1:8000\"\n[[table]]\nsource = \"A\"\n";

#[test]
fn the_dynamodb_state_backend_defaults_to_the_destinations_settings() {
    let c = parse(&format!("{SIDES}[state]\nbackend = \"dynamodb\"\n")).unwrap();
    let StateConfig::Dynamo(d) = &c.state else {
        panic!("{:?}", c.state)
    };
    assert_eq!(d.table, "ferry-state");
    assert_eq!(d.failover, std::time::Duration::from_secs(10));
    assert_eq!(d.side.region.as_deref(), Some("eu-west-1"));
    assert_eq!(d.side.profile.as_deref(), Some("dst"));
    assert_eq!(d.side.endpoint_url.as_deref(), Some("http://127.0.0.1:8000"));
    assert_eq!(c.home(), Path::new("conf"), "reports go beside the config file");
}

#[test]
fn the_dynamodb_state_backend_takes_its_own_account_and_table() {
    let text = format!(
        "{SIDES}[state]\nbackend = \"dynamodb\"\ntable = \"mig-state\"\nfailover_seconds = 30\n\
         profile = \"ops\"\n[state.endpoints]\ndynamodb = \"http://127.0.0.1:9000\"\n"
    );
    let c = parse(&text).unwrap();
    let StateConfig::Dynamo(d) = &c.state else {
        panic!("{:?}", c.state)
    };
    assert_eq!(d.table, "mig-state");
    assert_eq!(d.failover, std::time::Duration::from_secs(30));
    assert_eq!(d.side.profile.as_deref(), Some("ops"), "its own key wins");
    assert_eq!(
        d.side.region.as_deref(),
        Some("eu-west-1"),
        "the rest from the destination"
    );
    assert_eq!(d.side.endpoints.dynamodb.as_deref(), Some("http://127.0.0.1:9000"));
}

#[test]
fn a_state_that_names_its_own_endpoint_keeps_none_of_the_destinations_per_service_ones() {
    let text = "[source]\n[destination]\n[destination.endpoints]\ndynamodb = \"http://d:1\"\n[[table]]\nsource = \"A\"\n\
                [state]\nbackend = \"dynamodb\"\nendpoint_url = \"http://s:2\"\n";
    let StateConfig::Dynamo(d) = parse(text).unwrap().state else {
        panic!("not dynamodb")
    };
    assert_eq!(d.side.endpoint_url.as_deref(), Some("http://s:2"));
    assert_eq!(
        d.side.endpoints.dynamodb, None,
        "would win over the state's own endpoint"
    );
}

#[test]
fn rejects_state_keys_of_the_other_backend_and_bad_values_all_at_once() {
    let text = format!(
        "{SIDES}[state]\nbackend = \"dynamodb\"\npath = \"x.db\"\nfailover_seconds = 1\n\
         endpoint_url = \"127.0.0.1:9\"\n"
    );
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("3 problems"), "{err}");
    has(
        &err,
        "conf/ferry.toml:11:8: path in [state] applies to backend = \"sqlite\", and this one is \"dynamodb\"",
    );
    has(
        &err,
        "conf/ferry.toml:12:20: failover_seconds in [state] must be at least 3, found 1",
    );
    has(
        &err,
        "endpoint \"127.0.0.1:9\" in [state] must start with http:// or https://",
    );

    let text = format!("{SIDES}[state]\npath = \"x.db\"\ntable = \"t\"\nbackend = \"etcd\"\n");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("2 problems"), "{err}");
    has(
        &err,
        "conf/ferry.toml:11:9: table in [state] applies to backend = \"dynamodb\", and this one is \"sqlite\"",
    );
    has(
        &err,
        "conf/ferry.toml:12:11: backend in [state] must be \"sqlite\" or \"dynamodb\", found \"etcd\"",
    );
}

#[test]
fn the_reverse_pair_swaps_the_tables_and_refuses_a_transform() {
    let mut t = TableConfig::with_defaults("Orders", "OrdersNew");
    t.snapshot = Snapshot::Scan;
    let r = t.reversed().unwrap();
    assert_eq!((r.source.as_str(), r.destination.as_str()), ("OrdersNew", "Orders"));
    assert_eq!((r.snapshot, r.change_source), (Snapshot::None, ChangeSource::Streams));
    let path = std::path::Path::new("ferry.toml");
    let text = "[source]\nregion = \"us-east-1\"\n[destination]\nregion = \"us-east-1\"\n\
                [[table]]\nsource = \"Orders\"\n[table.transform]\ndrop = [\"secret\"]\n";
    let c = Config::parse(path, text).unwrap();
    let e = c.tables[0].reversed().unwrap_err().to_string();
    assert!(
        e.contains("table Orders: a table with a [table.transform] cannot replicate in reverse"),
        "{e}"
    );
}
