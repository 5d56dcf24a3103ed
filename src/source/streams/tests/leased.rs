//! Shards leased to several workers: the coordinator offers each shard once its parents are
//! finished, two simulated workers read the offered shards (each shard with its own apply path,
//! into one destination), and the coordinator learns from the leases which shards finished, which
//! failed, and how far the table is applied. The scripted stream itself asserts that no child is
//! opened before its parent's records are applied.

use super::super::gap::Listed;
use super::super::leased::ShardRun;
use super::*;
use crate::checkpoint::lease::keeper::Marks;
use crate::checkpoint::lease::units::fake::Board;
use crate::checkpoint::lease::units::{Done, UnitLease};

type Reads = tokio::task::JoinSet<(String, Result<Option<Done>>)>;

/// Two workers: every 10 ms each free lease goes to the worker holding fewer, each held shard's
/// mark is copied into its lease (a renewal), and a finished shard's lease ends done. Returns
/// which worker read each shard.
async fn workers(
    board: Arc<Board>,
    api: Arc<Scripted>,
    io: RecordingIo,
    store: Arc<Store>,
    stop: CancellationToken,
) -> HashMap<String, usize> {
    let mut reads = Reads::new();
    let mut held: HashMap<String, (usize, Marks)> = HashMap::new();
    let mut readers = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(joined) = reads.join_next() => {
                let (id, done) = joined.unwrap();
                let Some(done) = done.unwrap() else {
                    assert!(stop.is_cancelled(), "shard {id} stopped before its end");
                    continue;
                };
                held.remove(&id);
                let mut b = board.0.lock().unwrap();
                let lease = b.get_mut(&id).unwrap();
                *lease = (None, UnitLease { done: Some(done), ..lease.1.clone() });
            }
            _ = tick.tick() => {
                let mut b = board.0.lock().unwrap();
                for (id, (owner, lease)) in b.iter_mut() {
                    if let Some((_, marks)) = held.get(id) {
                        lease.mark = *marks.lock().unwrap();
                    }
                    if owner.is_some() || lease.done.is_some() {
                        continue;
                    }
                    let w = (0..2).min_by_key(|w| held.values().filter(|(h, _)| h == w).count()).unwrap();
                    *owner = Some(w);
                    let marks = Marks::default();
                    held.insert(id.clone(), (w, marks.clone()));
                    readers.insert(id.clone(), w);
                    let run = ShardRun {
                        task: reader(&api, &store, &stop),
                        shard: id.clone(),
                        facts: Listed { born_after_ms: lease.born_after_ms, first_seq: lease.first_seq.clone() },
                        marks,
                    };
                    let stats = Arc::new(TableStats::default());
                    let applier = Applier::start(Arc::new(io.clone()), 2, Arc::new(Limiter::new(0)), stats);
                    let id = id.clone();
                    reads.spawn(async move { (id, run.run(applier).await) });
                }
            }
        }
    }
    while let Some(joined) = reads.join_next().await {
        let (_, stopped) = joined.unwrap();
        assert_eq!(stopped.unwrap(), None, "an open shard ends stopped");
    }
    readers
}

/// A worker's view of the table's stream, for one shard.
fn reader(api: &Arc<Scripted>, store: &Arc<Store>, stop: &CancellationToken) -> StreamTask<Scripted> {
    let stats = Arc::new(TableStats::default());
    StreamTask {
        api: api.clone(),
        ctx: TableContext::for_test("T", &["pk"], store.clone(), stats, stop.child_token()),
        stream_arn: "arn".into(),
        view: View::NewImage,
        replay_from_ms: crate::clock::now_ms() - 3_600_000,
        list_every: Duration::MAX,
        clock: Clock::default(),
        leasing: None,
    }
}

/// The coordinator of the scripted tree, running over a lease board, and what it writes to.
struct Coordinated {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    io: RecordingIo,
    /// Every key's last value in the tree.
    expected: HashMap<String, Option<i64>>,
    stats: Arc<TableStats>,
    stop: CancellationToken,
    board: Arc<Board>,
    api: Arc<Scripted>,
    run: tokio::task::JoinHandle<Result<()>>,
}

fn coordinate() -> Coordinated {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
    let io = RecordingIo::default();
    let (script, expected) = tree(io.clone());
    let (stats, stop) = (Arc::new(TableStats::default()), CancellationToken::new());
    let board = Arc::new(Board::default());
    let replay_from = crate::clock::now_ms() - 3_600_000;
    let mut coordinator = task(script, "arn", replay_from, store.clone(), stats.clone(), stop.clone());
    coordinator.leasing = Some(board.clone());
    let api = coordinator.api.clone();
    let unused = Applier::start(Arc::new(io.clone()), 1, Arc::new(Limiter::new(0)), stats.clone());
    Coordinated {
        run: tokio::spawn(coordinator.run(unused)),
        _dir: dir,
        store,
        io,
        expected,
        stats,
        stop,
        board,
        api,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_leased_to_two_workers_apply_every_record_in_order_and_parents_first() {
    let Coordinated {
        _dir,
        store,
        io,
        expected,
        stats,
        stop,
        board,
        api,
        run: coordinating,
    } = coordinate();
    let pool = tokio::spawn(workers(board.clone(), api, io.clone(), store.clone(), stop.clone()));

    // Wait on state: the four closed shards finished, every key at its last value, and the table
    // caught up (both open shards idle at their tips, as their holders reported).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let current = io.0.lock().unwrap().current.clone();
        let open: Vec<String> = board.0.lock().unwrap().keys().cloned().collect();
        if current == expected && open == ["a2", "b1"] && stats.caught_up.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not converged: leases {open:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let as_of = stats.applied_as_of_ms.load(std::sync::atomic::Ordering::Relaxed);
    assert!(as_of > 0, "applied-as-of from the holders' marks");
    stop.cancel();
    coordinating.await.unwrap().unwrap();
    let readers = pool.await.unwrap();

    let d = io.0.lock().unwrap();
    for (k, h) in &d.history {
        assert!(
            h.windows(2).all(|w| w[0] < w[1]),
            "key {k} saw values out of order or twice: {h:?}"
        );
    }
    assert_eq!(readers.len(), 6, "every shard was read: {readers:?}");
    assert!(
        readers.values().any(|w| *w == 0) && readers.values().any(|w| *w == 1),
        "the shards spread: {readers:?}"
    );
    let records: i64 = store.shards("T").unwrap().iter().map(|s| s.records).sum();
    assert_eq!(
        records,
        40 + 30 + 30 + 20 + 20 + 25,
        "every record acknowledged exactly once"
    );
    assert_eq!(
        stats.records_applied.load(std::sync::atomic::Ordering::Relaxed),
        165,
        "the table's counter sums its shards'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_failed_on_its_worker_fails_the_table_with_its_reason() {
    let Coordinated {
        _dir,
        board,
        run: coordinating,
        ..
    } = coordinate();
    // The root is offered; its holder then reports it failed.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !board.0.lock().unwrap().contains_key("root") {
        assert!(std::time::Instant::now() < deadline, "root offered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    board.0.lock().unwrap().get_mut("root").unwrap().1.failed = Some("trimmed position 42".into());
    let err = tokio::time::timeout(Duration::from_secs(10), coordinating)
        .await
        .expect("stops by itself")
        .unwrap()
        .unwrap_err();
    assert!(err.is_fatal());
    assert!(
        err.to_string().contains("shard root failed: trimmed position 42"),
        "{err}"
    );
    assert_eq!(board.0.lock().unwrap().len(), 1, "no child offered");
}
