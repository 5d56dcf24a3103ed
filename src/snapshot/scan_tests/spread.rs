//! Snapshot segments leased to several workers: the coordinator offers every segment not yet
//! copied and reads nothing; two simulated workers copy the offered segments (each with its own
//! scan of one segment and its own apply path); the scan is complete only once every segment's
//! lease is done, and a failed segment fails it.

use super::*;
use crate::checkpoint::lease::units::fake::Board;
use crate::checkpoint::lease::units::{Done, UnitLease};

/// Two workers copy every offered segment, alternately; each finished segment's lease ends done
/// with its row's item count. Returns the segments each worker copied.
async fn workers(rig: &Rig, board: &Board) -> [Vec<i64>; 2] {
    let mut copied: [Vec<i64>; 2] = [vec![], vec![]];
    let mut next = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while copied[0].len() + copied[1].len() < rig.table.segments {
        assert!(std::time::Instant::now() < deadline, "segments not all offered");
        let free: Vec<String> = board
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (o, _))| o.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in free {
            let i: i64 = id.parse().unwrap();
            board.0.lock().unwrap().get_mut(&id).unwrap().0 = Some(next);
            let (mut task, applier) = rig.scan(0, 2);
            task.only = Some(i);
            assert!(task.run(applier).await.unwrap(), "segment {i} copied");
            let row = rig
                .store
                .segments(TABLE)
                .unwrap()
                .into_iter()
                .find(|r| r.segment == i)
                .unwrap();
            assert!(row.done, "its row says done before its lease does");
            let done = Done {
                records: row.items,
                ..Done::default()
            };
            *board.0.lock().unwrap().get_mut(&id).unwrap() = (
                None,
                UnitLease {
                    done: Some(done),
                    ..UnitLease::default()
                },
            );
            copied[next].push(i);
            next = 1 - next;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    copied
}

#[tokio::test]
async fn segments_leased_to_two_workers_copy_every_item_and_the_scan_waits_for_all() {
    let (dest, _) = Dest::new(None);
    let rig = Rig::new(FakeTable::new(6, 50, 100), dest);
    let board = Arc::new(Board::default());
    let (mut coordinator, unused) = rig.scan(0, 1);
    coordinator.leasing = Some(board.clone());
    let coordinating = tokio::spawn(coordinator.run(unused));
    let copied = workers(&rig, &board).await;
    let complete = tokio::time::timeout(Duration::from_secs(10), coordinating)
        .await
        .expect("completes")
        .unwrap();
    assert!(complete.unwrap(), "the scan completes once every segment is done");
    assert!(
        !copied[0].is_empty() && !copied[1].is_empty(),
        "the segments spread: {copied:?}"
    );
    assert_eq!(rig.dest.written.lock().unwrap().len(), 300, "every item copied");
    assert_eq!(rig.assert_positions_durable(), 300);
    assert_eq!(rig.stats.snapshot_items.load(Relaxed), 300);
    assert!(
        board.0.lock().unwrap().is_empty(),
        "the finished segments' leases are removed"
    );
}

#[tokio::test(start_paused = true)]
async fn the_scan_is_not_complete_while_a_segment_is_not_done_and_a_failed_one_fails_it() {
    let (dest, _) = Dest::new(None);
    let rig = Rig::new(FakeTable::new(3, 10, 100), dest);
    let board = Arc::new(Board::default());
    let (mut coordinator, unused) = rig.scan(0, 1);
    coordinator.leasing = Some(board.clone());
    let coordinating = tokio::spawn(coordinator.run(unused));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while board.0.lock().unwrap().len() < 3 {
        assert!(std::time::Instant::now() < deadline, "segments offered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for id in ["0", "1"] {
        board.0.lock().unwrap().get_mut(id).unwrap().1.done = Some(Done::default());
    }
    // Several of the coordinator's looks at the leases (one a second).
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!coordinating.is_finished(), "segment 2 is not done yet");
    board.0.lock().unwrap().get_mut("2").unwrap().1.failed = Some("ValidationException: item too large".into());
    let err = tokio::time::timeout(Duration::from_secs(10), coordinating)
        .await
        .expect("stops")
        .unwrap()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("snapshot segment 2 failed: ValidationException"),
        "{err}"
    );
}
