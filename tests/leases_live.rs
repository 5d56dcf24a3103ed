//! Leases in the state table, live on DynamoDB Local: two workers racing for a free lease never
//! both win; a worker takes another's lease only after its counter stood still for a lease
//! duration on the taker's own clock; and the worker that lost it (a zombie back from a stall)
//! can neither renew it nor move a checkpoint under it.

use std::time::Duration;

use ferry::checkpoint::dynamo::DynamoStore;
use ferry::checkpoint::lease::Leases;
use ferry::checkpoint::lease::watch::Observed;
use ferry::checkpoint::{ShardRow, StateStore, TableRow};
use ferry_rig::{Account, DynamoLocal};
use tokio::time::Instant;

const TABLE: &str = "ferry-state";
const DURATION: Duration = Duration::from_secs(10);

fn position(seq: &str) -> ShardRow {
    ShardRow {
        shard_id: "shardId-1".into(),
        parent_id: None,
        position: Some(seq.into()),
        last_record_ms: Some(1),
        done: false,
        records: 1,
        captured: true,
    }
}

/// Two workers' views of the state table in a fresh account (the table created).
async fn two_workers(account: &str) -> (Leases, Leases) {
    let client = DynamoLocal::shared().client(&Account::fresh(account));
    DynamoStore::open(client.clone(), TABLE, &Default::default())
        .await
        .unwrap();
    (
        Leases::new(client.clone(), TABLE, "w1", &Default::default()),
        Leases::new(client, TABLE, "w2", &Default::default()),
    )
}

#[tokio::test]
async fn a_lease_has_one_holder_and_a_zombie_can_neither_renew_nor_checkpoint() {
    let client = DynamoLocal::shared().client(&Account::fresh("leases"));
    // Each worker has its own view of the state table, holding its own leases.
    let store1 = DynamoStore::open(client.clone(), TABLE, &Default::default())
        .await
        .unwrap();
    let store2 = DynamoStore::open(client.clone(), TABLE, &Default::default())
        .await
        .unwrap();
    let (w1, w2) = (
        Leases::new(client.clone(), TABLE, "w1", &Default::default()),
        Leases::new(client, TABLE, "w2", &Default::default()),
    );
    w1.create("Orders/shardId-1").await.unwrap();
    w2.create("Orders/shardId-1").await.unwrap();

    // Both read the free lease and race to take it: exactly one wins.
    let free = w1.list().await.unwrap().remove(0);
    assert_eq!((free.owner.as_deref(), free.counter), (None, 0));
    let (a, b) = tokio::join!(w1.take(&free), w2.take(&free));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() != b.is_some(), "one winner: {a:?} {b:?}");
    let ((winner, wstore), (loser, lstore), fence) = match a {
        Some(f) => ((&w1, &store1), (&w2, &store2), f),
        None => ((&w2, &store2), (&w1, &store1), b.unwrap()),
    };
    wstore.hold(Some(fence.clone()));
    wstore.put_shards("Orders", &[position("100")]).await.unwrap();
    let fence = winner.renew(&fence).await.unwrap().expect("the holder renews").fence;
    wstore.hold(Some(fence.clone()));
    wstore.put_shards("Orders", &[position("120")]).await.unwrap();

    // The holder stalls. The other worker takes the lease only once its counter stood still for a
    // whole lease duration on its own clock.
    let mut seen = Observed::default();
    let t0 = Instant::now();
    let held = loser.list().await.unwrap().remove(0);
    assert_eq!(held.owner.as_deref(), Some(winner.worker()));
    assert!(!seen.expired(&held.key, held.counter, t0, DURATION));
    assert!(
        !seen.expired(&held.key, held.counter, t0 + DURATION / 2, DURATION),
        "not yet"
    );
    assert!(seen.expired(&held.key, held.counter, t0 + DURATION, DURATION));
    let taken = loser.take(&held).await.unwrap().expect("an expired lease is taken");
    lstore.hold(Some(taken.clone()));
    lstore.put_shards("Orders", &[position("200")]).await.unwrap();

    // The zombie wakes up: its renewal and its checkpoint are refused, and nothing moved.
    assert_eq!(winner.renew(&fence).await.unwrap(), None, "a lost lease is not renewed");
    let stale = wstore
        .put_shards("Orders", &[position("150")])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        stale.contains("no longer this worker's"),
        "a checkpoint under a lost lease is refused: {stale}"
    );
    let row = wstore.put_table(&TableRow::new("Orders", "Orders")).await.unwrap_err();
    assert!(row.is_fatal(), "so is any other state write: {row}");
    let saved = lstore.shards("Orders").await.unwrap();
    assert_eq!(
        saved[0].position.as_deref(),
        Some("200"),
        "the new holder's checkpoint stands"
    );
    assert!(
        !winner.release(&fence).await.unwrap(),
        "nor can it release what it lost"
    );

    // A graceful hand-off frees the lease for anyone.
    assert!(loser.release(&taken).await.unwrap());
    let free = winner.list().await.unwrap().remove(0);
    assert_eq!(free.owner, None);
    assert!(winner.take(&free).await.unwrap().is_some());
}

#[tokio::test]
async fn a_claimed_lease_is_renewed_as_claimed_until_its_holder_hands_it_over() {
    let (w1, w2) = two_workers("claims").await;
    w1.create("table#Orders").await.unwrap();
    let fence = w1.take(&w1.list().await.unwrap()[0]).await.unwrap().unwrap();
    let renewed = w1.renew(&fence).await.unwrap().unwrap();
    assert!(!renewed.claimed);

    // w2 asks for it: the counter does not move, so the holder keeps renewing while it drains.
    let held = w2.list().await.unwrap().remove(0);
    assert!(w2.claim(&held).await.unwrap());
    let seen = w2.list().await.unwrap().remove(0);
    assert_eq!((seen.claim.as_deref(), seen.counter), (Some("w2"), held.counter));
    let renewed = w1.renew(&renewed.fence).await.unwrap().unwrap();
    assert!(renewed.claimed, "the holder learns of the claim at its next renewal");

    // Released, the lease is free and unclaimed; taken, it is w2's.
    assert!(w1.release(&renewed.fence).await.unwrap());
    let free = w2.list().await.unwrap().remove(0);
    assert_eq!((free.owner.as_deref(), free.claim.as_deref()), (None, None));
    assert!(!w2.claim(&free).await.unwrap(), "a free lease is taken, not claimed");
    let taken = w2.take(&free).await.unwrap().expect("taken");
    assert_eq!(taken.owner, "w2");

    // The registry: a beat registers, beats count up, leaving removes.
    w1.beat().await.unwrap();
    w1.beat().await.unwrap();
    w2.beat().await.unwrap();
    let beats: Vec<(String, i64)> = w1
        .workers()
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.worker, b.beats))
        .collect();
    assert_eq!(beats, [("w1".to_string(), 2), ("w2".to_string(), 1)]);
    w1.leave().await.unwrap();
    assert_eq!(w2.workers().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_state_write_that_races_its_own_renewal_lands_under_the_new_counter() {
    let client = DynamoLocal::shared().client(&Account::fresh("race"));
    let store = DynamoStore::open(client.clone(), TABLE, &Default::default())
        .await
        .unwrap();
    let leases = Leases::new(client, TABLE, "w1", &Default::default());
    leases.create("table#Orders").await.unwrap();
    let fence = leases.take(&leases.list().await.unwrap()[0]).await.unwrap().unwrap();
    let store = std::sync::Arc::new(store.fenced(fence.clone()).0);
    // The renewal has landed; its answer reaches the keeper (and the fence) only 300 ms later.
    let renewed = leases.renew(&fence).await.unwrap().unwrap();
    let late = tokio::spawn({
        let store = store.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            store.hold(Some(renewed.fence));
        }
    });
    store
        .put_shards("Orders", &[position("100")])
        .await
        .expect("not a lost lease");
    late.await.unwrap();
    assert_eq!(
        store.shards("Orders").await.unwrap()[0].position.as_deref(),
        Some("100")
    );
}

/// A stop abandons a renewal in flight, which may still land after the keeper handed back the
/// lease as it last knew it: the end (here "done", as for a finished snapshot segment) is then
/// written under the counter read back, not silently dropped (which left the lease with its
/// holder and the table's scan waiting for it forever).
#[tokio::test]
async fn a_lease_ends_even_when_a_renewal_abandoned_at_the_stop_landed_first() {
    use ferry::checkpoint::lease::keeping::{End, Keeping};
    use ferry::checkpoint::lease::units::Done;
    use std::sync::Arc;
    let client = DynamoLocal::shared().client(&Account::fresh("leases"));
    let store = DynamoStore::open(client.clone(), TABLE, &Default::default())
        .await
        .unwrap();
    let leases = Arc::new(Leases::new(client, TABLE, "w1", &Default::default()));
    leases.create("segment#Orders#3").await.unwrap();
    let free = leases.list().await.unwrap().remove(0);
    let fence = leases.take(&free).await.unwrap().unwrap();
    let keeping = Keeping::start(
        leases.clone(),
        &store,
        (fence.clone(), Instant::now()),
        DURATION,
        |_| {},
        None,
    );
    // The renewal that was on the wire when the keeper stopped lands: the counter moves on.
    leases.renew(&fence).await.unwrap().expect("still held");
    let done = Done {
        records: 7,
        ..Done::default()
    };
    keeping.finish(End::Done(done)).await;
    let lease = leases.read("segment#Orders#3").await.unwrap().unwrap();
    assert_eq!(lease.owner, None, "{lease:?}");
    assert_eq!(lease.unit.done.map(|d| d.records), Some(7), "ended done");
}

/// A write whose answer was lost (an attempt timeout on a loaded endpoint) may have landed; its
/// retry is then refused by its own condition. A take, renewal or release read back as landed is
/// this worker's, not a lost lease (a keeper that took its own renewal for a loss stopped
/// renewing, and its unit's state writes waited forever for a counter that never came).
#[tokio::test]
async fn a_lease_write_retried_after_it_landed_is_not_taken_for_a_loss() {
    let (w1, w2) = two_workers("leases").await;
    w1.create("shard#Orders#s1").await.unwrap();
    let free = w1.list().await.unwrap().remove(0);
    let fence = w1.take(&free).await.unwrap().expect("taken");
    assert_eq!(w1.take(&free).await.unwrap(), Some(fence.clone()), "the take landed");
    assert_eq!(w2.take(&free).await.unwrap(), None, "another worker's take still loses");
    let renewed = w1.renew(&fence).await.unwrap().expect("renewed").fence;
    let again = w1.renew(&fence).await.unwrap().expect("the renewal landed: still held");
    assert_eq!(again.fence, renewed);
    assert!(w1.release(&renewed).await.unwrap());
    assert!(w1.release(&renewed).await.unwrap(), "the release landed");
    let lease = w1.read("shard#Orders#s1").await.unwrap().unwrap();
    assert_eq!((lease.owner, lease.counter), (None, renewed.counter + 1));
}
