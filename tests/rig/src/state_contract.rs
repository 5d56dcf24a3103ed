//! The contract every state backend keeps ([`ferry::checkpoint::StateStore`]), as one suite: each
//! backend's test opens an empty store and hands it to [`check`]. A failure names the rule broken.

use ferry::checkpoint::{
    Direction, ExportRow, Phase, Progress, QueueRow, Retrying, SegmentRow, ShardRow, StateStore, SwitchPoint,
    SwitchRequest, TableRow,
};

/// Runs every rule against `store`, which must be empty.
pub async fn check(store: &dyn StateStore) {
    empty(store).await;
    tables(store).await;
    counters_and_state_never_roll_each_other_back(store).await;
    failure_and_replay_point(store).await;
    direction_and_switch_request(store).await;
    positions(store).await;
    buffer_export_and_health(store).await;
}

/// A table row as written, ignoring the store's own update time.
fn same(a: &TableRow, b: &TableRow) -> bool {
    let mut b = b.clone();
    b.updated_ms = a.updated_ms;
    format!("{a:?}") == format!("{b:?}")
}

async fn empty(s: &dyn StateStore) {
    assert!(s.table("A").await.unwrap().is_none(), "an empty store has no table");
    assert!(s.tables().await.unwrap().is_empty());
    assert!(s.segments("A").await.unwrap().is_empty());
    assert!(s.shards("A").await.unwrap().is_empty());
    assert!(s.queue("A").await.unwrap().is_none());
    assert!(s.export("A").await.unwrap().is_none());
    assert!(s.health("A").await.unwrap().is_none());
}

async fn tables(s: &dyn StateStore) {
    let mut b = TableRow::new("B", "B2");
    b.phase = Phase::Snapshot;
    b.stream_arn = Some("arn:aws:dynamodb:us-east-1:1:table/B/stream/x".into());
    b.capture_ms = Some(1_000);
    b.replay_from_ms = Some(700);
    b.snapshot_segments = 8;
    s.put_table(&b).await.unwrap();
    s.put_table(&TableRow::new("A", "A2")).await.unwrap();
    let names: Vec<String> = s.tables().await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["A", "B"], "tables are listed by name");
    assert!(
        same(&b, &s.table("B").await.unwrap().unwrap()),
        "a table row reads back as written"
    );
    // Whole rows: a second put replaces every field it carries.
    b.phase = Phase::Streaming;
    b.snapshot_done = true;
    b.stopped_cleanly = true;
    b.replay_from_ms = None;
    s.put_table(&b).await.unwrap();
    assert!(
        same(&b, &s.table("B").await.unwrap().unwrap()),
        "a put replaces the row"
    );
}

async fn counters_and_state_never_roll_each_other_back(s: &dyn StateStore) {
    let progress = Progress {
        records_applied: 42,
        newest_applied_ms: Some(9_000),
        caught_up: true,
        applied_as_of_ms: Some(9_500),
    };
    s.put_progress("B", progress).await.unwrap();
    let row = s.table("B").await.unwrap().unwrap();
    assert_eq!(row.phase, Phase::Streaming, "counters never move the state");
    let seen = (
        row.records_applied,
        row.newest_applied_ms,
        row.caught_up,
        row.applied_as_of_ms,
    );
    assert_eq!(seen, (42, Some(9_000), true, Some(9_500)));
    // A put of the state (carrying stale counters) keeps the published ones.
    let stale = TableRow {
        phase: Phase::Settings,
        records_applied: 0,
        newest_applied_ms: None,
        caught_up: false,
        ..row.clone()
    };
    s.put_table(&stale).await.unwrap();
    let row = s.table("B").await.unwrap().unwrap();
    assert_eq!(
        (row.phase, row.records_applied),
        (Phase::Settings, 42),
        "the state never rolls counters back"
    );
    // An unknown newest time keeps the last known one.
    let later = Progress {
        records_applied: 43,
        newest_applied_ms: None,
        caught_up: false,
        applied_as_of_ms: None,
    };
    s.put_progress("B", later).await.unwrap();
    let row = s.table("B").await.unwrap().unwrap();
    assert_eq!(
        (row.records_applied, row.newest_applied_ms, row.caught_up),
        (43, Some(9_000), false)
    );
}

async fn failure_and_replay_point(s: &dyn StateStore) {
    s.put_error("B", "disk full").await.unwrap();
    let row = s.table("B").await.unwrap().unwrap();
    assert_eq!(
        (row.phase, row.error.as_deref(), row.stopped_cleanly),
        (Phase::Failed, Some("disk full"), false)
    );
    assert_eq!(row.capture_ms, Some(1_000), "a failure keeps the table's capture point");
    assert!(
        !s.set_replay_from("Nope", 5).await.unwrap(),
        "no replay point for a table with no row"
    );
    s.put_progress("Nope", Progress::default()).await.unwrap();
    s.put_error("Nope", "disk full").await.unwrap();
    let created = s.table("Nope").await.unwrap();
    assert!(created.is_none(), "counters and failures never create a table row");
    assert!(s.set_replay_from("A", 5).await.unwrap());
    assert_eq!(s.table("A").await.unwrap().unwrap().replay_from_ms, Some(5));
}

async fn direction_and_switch_request(s: &dyn StateStore) {
    let mut a = s.table("A").await.unwrap().unwrap();
    assert_eq!(
        (a.direction, a.switches.len()),
        (Direction::Forward, 0),
        "a pair starts forward"
    );
    let asked = SwitchRequest {
        to: Direction::Reverse,
        asked_ms: 70,
    };
    assert!(
        !s.request_switch("Nope", asked).await.unwrap(),
        "no request for a table with no row"
    );
    assert!(s.table("Nope").await.unwrap().is_none());
    assert!(s.request_switch("A", asked).await.unwrap());
    a.direction = Direction::Reverse;
    a.switches = vec![SwitchPoint {
        direction: Direction::Reverse,
        at_ms: 80,
    }];
    a.switch_request = None;
    s.put_table(&a).await.unwrap();
    let row = s.table("A").await.unwrap().unwrap();
    assert_eq!((row.direction, row.switches.clone()), (a.direction, a.switches));
    assert_eq!(row.switch_request, Some(asked), "a whole-row write keeps the request");
}

async fn positions(s: &dyn StateStore) {
    for n in [2, 0, 1] {
        let seg = SegmentRow {
            segment: n,
            done: false,
            last_key: Some(format!("{{\"pk\":{n}}}")),
            items: n * 10,
        };
        s.put_segment("A", &seg).await.unwrap();
    }
    let done = SegmentRow {
        segment: 1,
        done: true,
        last_key: None,
        items: 99,
    };
    s.put_segment("A", &done).await.unwrap();
    let segs = s.segments("A").await.unwrap();
    assert_eq!(
        segs.iter().map(|r| r.segment).collect::<Vec<_>>(),
        [0, 1, 2],
        "segments by number"
    );
    assert_eq!(segs[1], done, "a segment put replaces the row");
    assert!(
        s.segments("B").await.unwrap().is_empty(),
        "positions belong to their table"
    );

    let shard = |id: &str, parent: Option<&str>| ShardRow {
        shard_id: id.into(),
        parent_id: parent.map(str::to_string),
        position: None,
        last_record_ms: None,
        done: false,
        records: 0,
        captured: true,
    };
    let (p, c) = (shard("shardId-2", None), shard("shardId-1", Some("shardId-2")));
    s.put_shards("A", &[p.clone(), c.clone()]).await.unwrap();
    let moved = ShardRow {
        position: Some("000123".into()),
        last_record_ms: Some(77),
        records: 5,
        ..p.clone()
    };
    let ended = ShardRow {
        done: true,
        ..moved.clone()
    };
    s.put_shards("A", &[moved]).await.unwrap();
    s.put_shards("A", std::slice::from_ref(&ended)).await.unwrap();
    assert_eq!(
        s.shards("A").await.unwrap(),
        [c, ended],
        "shards by id; a put replaces the row"
    );
}

async fn buffer_export_and_health(s: &dyn StateStore) {
    let q = QueueRow {
        queue_url: "https://sqs.us-east-1.amazonaws.com/1/q.fifo".into(),
        depth: Some(3),
        in_flight: None,
        dropped: 2,
        dead_letter_url: None,
        dead_letter_depth: Some(0),
    };
    s.put_queue("A", &q).await.unwrap();
    assert_eq!(s.queue("A").await.unwrap(), Some(q));
    let e = ExportRow {
        export_arn: Some("arn:export".into()),
        items_total: Some(20_000),
        ..Default::default()
    };
    s.put_export("A", &e).await.unwrap();
    let e = ExportRow {
        bucket: Some("b".into()),
        folder: Some("f/".into()),
        ..e
    };
    s.put_export("A", &e).await.unwrap();
    assert_eq!(s.export("A").await.unwrap(), Some(e), "an export put replaces the row");
    let r = Retrying {
        for_ms: 4_200,
        last_error: "BatchWriteItem: connection refused".into(),
    };
    s.put_health("A", Some(&r)).await.unwrap();
    assert_eq!(s.health("A").await.unwrap(), Some(r));
    s.put_health("A", None).await.unwrap();
    assert_eq!(s.health("A").await.unwrap(), None, "health clears");
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_sqlite_file_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = ferry::checkpoint::Store::open(&dir.path().join("state.db")).unwrap();
        super::check(&store).await;
    }
}
