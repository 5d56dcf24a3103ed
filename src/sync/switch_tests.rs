//! Switching a pair's direction in the daemon ([`crate::sync::switch`]), through the fakes of
//! the table run's tests: only a drained direction switches, only while the asking command
//! waits, and the new direction starts from the switch point on the other stream.

use std::sync::atomic::Ordering::Relaxed;

use super::*;
use crate::checkpoint::{DaemonLock, Phase, ShardRow, SwitchRequest};
use crate::clock::now_ms;
use crate::sync::table::RunEnd;

fn ask(store: &Store, to: Direction) -> i64 {
    let asked_ms = now_ms();
    assert!(store.request_switch("src", SwitchRequest { to, asked_ms }).unwrap());
    asked_ms
}

fn shard(id: &str) -> ShardRow {
    ShardRow {
        shard_id: id.into(),
        parent_id: None,
        position: Some("0001".into()),
        last_record_ms: None,
        done: false,
        records: 1,
        captured: true,
    }
}

#[tokio::test(start_paused = true)]
async fn a_switch_waits_for_the_drain_and_its_command_then_the_other_way_starts_at_its_point() {
    let (dir, store, script) = setup();
    run(&store, &script, Load::Complete, true).await.unwrap();
    store.put_shards("src", &[shard("forward-1")]).unwrap();
    let fake = Fake {
        script: script.clone(),
        load: Load::Complete,
    };

    // Asked, but the forward direction has not applied up to the request: no switch (the fake
    // source stops the run a minute in).
    let lock = DaemonLock::acquire_switch(&dir.path().join("ferry.db")).unwrap();
    let asked_ms = ask(&store, Direction::Reverse);
    let forward = table_run(&store, "arn:stream/1", false);
    forward.stats.applied_as_of_ms.store(asked_ms - 1, Relaxed);
    assert_eq!(forward.run_with(&fake).await.unwrap(), RunEnd::Stopped);
    assert_eq!(store.table("src").unwrap().unwrap().direction, Direction::Forward);

    // Drained: the pair switches, S after the request, the direction flipped with the state.
    forward.stats.applied_as_of_ms.store(asked_ms, Relaxed);
    assert_eq!(forward.run_with(&fake).await.unwrap(), RunEnd::Switched);
    let row = store.table("src").unwrap().unwrap();
    assert_eq!((row.direction, row.phase), (Direction::Reverse, Phase::Switching));
    let s = row.switches.last().unwrap().at_ms;
    assert_eq!(row.switches.len(), 1);
    assert!(s >= asked_ms, "S ({s}) comes after the request ({asked_ms})");
    assert_eq!(
        forward.stats.applied_as_of_ms.load(Relaxed),
        0,
        "the watermark was forward's"
    );
    // A forward run now is refused: the row says reverse.
    let err = forward.run_with(&fake).await.unwrap_err().to_string();
    assert!(err.contains("replicates reverse, not forward"), "{err}");

    // The reverse run captures the destination's stream and replays it from S less the overlap.
    *script.stream.lock().unwrap() = "arn:dst-stream".into();
    script.take_calls();
    let mut reverse = table_run(&store, "arn:dst-stream", false);
    reverse.direction = Direction::Reverse;
    assert_eq!(reverse.run_with(&fake).await.unwrap(), RunEnd::Stopped);
    let calls = script.take_calls();
    assert_eq!(
        calls[..3],
        ["current_stream", "clock_skew", "capture_shards"],
        "{calls:?}"
    );
    assert_eq!(calls.last(), Some(&"stream"));
    assert!(
        store.shards("src").unwrap().is_empty(),
        "the forward stream's positions are gone"
    );
    let capture = stored(&store).capture().cloned().unwrap();
    assert_eq!(
        (capture.stream_arn.as_str(), capture.t0_ms, capture.replay_from_ms),
        ("arn:dst-stream", s, s - 300_000)
    );

    // A request whose command has gone (killed, timed out) is never carried out.
    drop(lock);
    ask(&store, Direction::Forward);
    reverse.stats.applied_as_of_ms.store(now_ms() + 60_000, Relaxed);
    assert_eq!(reverse.run_with(&fake).await.unwrap(), RunEnd::Stopped);
    let row = store.table("src").unwrap().unwrap();
    assert_eq!((row.direction, row.switches.len()), (Direction::Reverse, 1));
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_the_flip_and_the_capture_resumes_the_capture() {
    let (_dir, store, script) = setup();
    run(&store, &script, Load::Complete, true).await.unwrap();
    let mut life = Lifecycle::resume(store.clone(), "src", "dst").await.unwrap();
    life.transition(TableState::Streaming {
        capture: stored(&store).capture().cloned().unwrap(),
    })
    .await
    .unwrap();
    life.switch(Direction::Reverse, 5_000_000, 4_700_000).await.unwrap();
    drop(life); // the daemon dies here: state `switching`, no shard tree yet
    let mut reverse = table_run(&store, "arn:stream/1", false);
    reverse.direction = Direction::Reverse;
    let fake = Fake {
        script: script.clone(),
        load: Load::Complete,
    };
    script.take_calls();
    reverse.run_with(&fake).await.unwrap();
    assert!(script.take_calls().contains(&"capture_shards"));
    let capture = stored(&store).capture().cloned().unwrap();
    assert_eq!((capture.t0_ms, capture.replay_from_ms), (5_000_000, 4_700_000));
}
