//! The lifecycle's edges, its stored form, and the migration of state files written by older ferry
//! versions (`fixtures/state-v0.sqlite`).

use super::*;
use crate::checkpoint::Store;
use crate::checkpoint::schema::VERSION;

fn cap(t0: i64) -> Capture {
    Capture {
        stream_arn: "arn:s".into(),
        t0_ms: t0,
        replay_from_ms: t0 - 300_000,
    }
}

/// One state of each shape, as the walk below needs them.
fn samples() -> Vec<TableState> {
    use TableState::*;
    let c = cap(1_000_000);
    let running = vec![
        Creating,
        Captured {
            capture: c.clone(),
            segments: Some(4),
        },
        Captured {
            capture: c.clone(),
            segments: None,
        },
        BulkLoading {
            capture: c.clone(),
            segments: 4,
        },
        RestoringSettings { capture: c.clone() },
        Streaming { capture: c.clone() },
        Switching {
            at_ms: 2_000_000,
            replay_from_ms: 1_700_000,
        },
    ];
    let mut all = running.clone();
    for s in &running {
        if matches!(s, Creating | Captured { segments: Some(_), .. } | BulkLoading { .. }) {
            all.push(Queued {
                next: Box::new(s.clone()),
            });
        }
        all.push(Failed {
            reason: "boom".into(),
            at: Box::new(s.clone()),
        });
        all.push(Stopped {
            at: Box::new(s.clone()),
        });
    }
    all
}

/// The diagram in the module doc, edge by edge.
fn drawn(from: &TableState, to: &TableState) -> bool {
    use TableState::*;
    let halt_at = |at: &TableState| match from {
        Queued { next } => **next == *at,
        _ => *from == *at,
    };
    match (from, to) {
        (Failed { at, .. } | Stopped { at }, _) => *to == at.resume_point(),
        (_, Failed { at, .. } | Stopped { at }) => halt_at(at),
        (Queued { next }, _) => **next == *to,
        (Creating, Queued { next }) => **next == Creating,
        (Creating, Captured { .. }) => true,
        (Captured { segments: Some(_), .. }, Queued { next }) | (BulkLoading { .. }, Queued { next }) => {
            **next == *from
        }
        (Captured { segments: Some(_), .. }, BulkLoading { .. }) => true,
        (Captured { segments: None, .. }, RestoringSettings { .. }) => true,
        (BulkLoading { .. }, BulkLoading { .. } | RestoringSettings { .. }) => true,
        (RestoringSettings { .. }, Streaming { .. }) => true,
        (Streaming { .. }, Switching { .. }) | (Switching { .. }, Streaming { .. }) => true,
        _ => false,
    }
}

#[test]
fn every_drawn_transition_is_allowed_and_no_other() {
    let all = samples();
    let mut allowed = 0;
    for from in &all {
        for to in &all {
            assert_eq!(from.allows(to), drawn(from, to), "{from:?} -> {to:?}");
            allowed += from.allows(to) as usize;
        }
    }
    assert!(allowed > 20, "the walk covers the edges ({allowed})");
}

/// Where a state leads on the next run, with the steps a stored row cannot tell apart (a captured
/// table and its bulk load; settings and streaming) folded together: they resume alike.
fn next_run(s: &TableState) -> TableState {
    match s.resume_point() {
        TableState::Captured {
            capture,
            segments: Some(segments),
        } => TableState::BulkLoading { capture, segments },
        TableState::Captured {
            capture,
            segments: None,
        } => TableState::RestoringSettings { capture },
        s => s,
    }
}

#[test]
fn every_state_reads_back_as_written() {
    for s in samples() {
        let mut row = TableRow::new("T", "T");
        s.write(&mut row);
        let back = TableState::read(&row).unwrap();
        assert_eq!(next_run(&back), next_run(&s), "{s:?}");
        assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&s), "{s:?}");
        if !matches!(
            s,
            TableState::Queued { .. } | TableState::Failed { .. } | TableState::Stopped { .. }
        ) {
            assert_eq!(back, s);
        }
    }
}

#[tokio::test]
async fn a_lifecycle_persists_each_move_and_refuses_a_skipped_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
    let mut life = Lifecycle::resume(store.clone(), "T", "D").await.unwrap();
    assert_eq!(*life.state(), TableState::Creating);
    let err = life
        .transition(TableState::Streaming { capture: cap(5) })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("from creating to streaming"), "{err}");
    assert_eq!(
        store.table("T").unwrap().unwrap().phase,
        Phase::Creating,
        "listed from the start"
    );
    life.transition(TableState::Captured {
        capture: cap(5),
        segments: Some(8),
    })
    .await
    .unwrap();
    assert_eq!(store.table("T").unwrap().unwrap().capture_ms, Some(5));
    life.transition(TableState::BulkLoading {
        capture: cap(5),
        segments: 8,
    })
    .await
    .unwrap();
    life.stop().await.unwrap();
    let row = store.table("T").unwrap().unwrap();
    assert_eq!(
        (row.phase, row.stopped_cleanly),
        (Phase::Snapshot, true),
        "status still says snapshot"
    );
    let mut again = Lifecycle::resume(store.clone(), "T", "D").await.unwrap();
    assert_eq!(
        *again.state(),
        TableState::BulkLoading {
            capture: cap(5),
            segments: 8
        }
    );
    assert!(!store.table("T").unwrap().unwrap().stopped_cleanly);
    again.fail("disk full").await.unwrap();
    let row = store.table("T").unwrap().unwrap();
    assert_eq!(
        (row.phase.as_str(), row.error.as_deref()),
        ("stopped", Some("disk full"))
    );
}

#[tokio::test]
async fn a_switch_flips_the_direction_in_the_same_write_and_keeps_a_pending_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
    let mut life = Lifecycle::resume(store.clone(), "T", "D").await.unwrap();
    let err = life.switch(Direction::Reverse, 9, 8).await.unwrap_err().to_string();
    assert!(err.contains("from creating to switching"), "{err}");
    let row = store.table("T").unwrap().unwrap();
    assert_eq!(
        (row.direction, row.switches.len()),
        (Direction::Forward, 0),
        "nothing changed"
    );
    for to in [
        TableState::Captured {
            capture: cap(5),
            segments: None,
        },
        TableState::RestoringSettings { capture: cap(5) },
        TableState::Streaming { capture: cap(5) },
    ] {
        life.transition(to).await.unwrap();
    }
    let asked = crate::checkpoint::SwitchRequest {
        to: Direction::Reverse,
        asked_ms: 7,
    };
    store.request_switch("T", asked).unwrap();
    life.switch(Direction::Reverse, 9, 8).await.unwrap();
    let row = store.table("T").unwrap().unwrap();
    assert_eq!(row.direction, Direction::Reverse);
    assert_eq!(
        row.switches,
        vec![SwitchPoint {
            direction: Direction::Reverse,
            at_ms: 9
        }]
    );
    assert_eq!(row.switch_request, Some(asked), "a whole-row write keeps the request");
    let err = life.switch(Direction::Reverse, 10, 9).await.unwrap_err().to_string();
    assert!(err.contains("already replicates reverse"), "{err}");
    // A restart resumes the switch where it was: the other stream not yet captured.
    let again = Lifecycle::resume(store.clone(), "T", "D").await.unwrap();
    assert_eq!(
        *again.state(),
        TableState::Switching {
            at_ms: 9,
            replay_from_ms: 8
        }
    );
    assert_eq!(again.row().direction, Direction::Reverse);
}

fn fixture_copy(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("state-v0.sqlite");
    std::fs::write(&path, include_bytes!("fixtures/state-v0.sqlite")).unwrap();
    path
}

#[tokio::test]
async fn a_state_file_from_todays_ferry_migrates_and_every_table_resumes_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(&dir);
    let store = Arc::new(Store::open(&path).unwrap());
    let version = store.with(|c| c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0)));
    assert_eq!(version.unwrap(), VERSION);
    let at = async |name: &str| {
        Lifecycle::resume(store.clone(), name, name)
            .await
            .unwrap()
            .state()
            .clone()
    };
    let c = |t: &str, replay: i64| Capture {
        stream_arn: format!("arn:aws:dynamodb:us-east-1:111111111111:table/{t}/stream/2026-01-01T00:00:00.000"),
        t0_ms: 1_767_225_600_000,
        replay_from_ms: replay,
    };
    assert_eq!(
        at("Scanning").await,
        TableState::BulkLoading {
            capture: c("Scanning", 1_767_225_300_000),
            segments: 4
        }
    );
    let segs = store.segments("Scanning").unwrap();
    assert_eq!(segs[1].last_key.as_deref(), Some(r#"{"pk":{"S":"k-77"}}"#));
    assert_eq!(
        at("Streaming").await,
        TableState::RestoringSettings {
            capture: c("Streaming", 1_767_225_300_000)
        }
    );
    let shards = store.shards("Streaming").unwrap();
    assert_eq!(shards[1].position.as_deref(), Some("000250"));
    assert!(shards[0].done && shards[1].parent_id.as_deref() == Some("shardId-0001"));
    assert_eq!(store.table("Streaming").unwrap().unwrap().records_applied, 1234);
    assert_eq!(
        at("Exporting").await,
        TableState::BulkLoading {
            capture: c("Exporting", 1_767_225_480_000),
            segments: 3
        }
    );
    assert_eq!(store.export("Exporting").unwrap().unwrap().items_total, Some(3000));
    // The failed table resumes streaming; the failure is cleared by the resume.
    let broken = store.table("Broken").unwrap().unwrap();
    assert_eq!(
        TableState::read(&broken).unwrap(),
        TableState::Failed {
            reason: "table Broken: the dead-letter queue holds 2 messages".into(),
            at: Box::new(TableState::Streaming {
                capture: c("Broken", 1_767_225_300_000)
            })
        }
    );
    assert_eq!(store.queue("Broken").unwrap().unwrap().dead_letter_depth, Some(2));
    assert!(matches!(at("Broken").await, TableState::RestoringSettings { .. }));
    assert_eq!(store.table("Broken").unwrap().unwrap().error, None);
    assert_eq!(at("Waiting").await, TableState::Creating);
    assert_eq!(store.health("Streaming").unwrap().unwrap().for_ms, 4200);
    drop(store);
    // Idempotent: opening again changes nothing.
    let again = Store::open(&path).unwrap();
    assert_eq!(again.tables().unwrap().len(), 5);
    assert_eq!(again.segments("Scanning").unwrap(), segs);
}

#[test]
fn a_state_file_from_a_newer_ferry_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(&dir);
    Store::open(&path).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", VERSION + 1)
        .unwrap();
    for err in [
        Store::open(&path).err().unwrap().to_string(),
        Store::open_existing(&path).err().unwrap().to_string(),
    ] {
        assert!(
            err.contains(&path.display().to_string()) && err.contains("newer ferry"),
            "{err}"
        );
    }
}

#[test]
fn an_unknown_stored_state_names_the_file_and_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(&dir);
    let store = Store::open(&path).unwrap();
    store
        .with(|c| c.execute("UPDATE tables SET phase = 'paused' WHERE name = 'Scanning'", []))
        .unwrap();
    let err = store.table("Scanning").err().unwrap().to_string();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("table Scanning") && err.contains("\"paused\""),
        "{err}"
    );
}
