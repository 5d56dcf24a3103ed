//! Leases in the state table, live on DynamoDB Local: two workers racing for a free lease never
//! both win; a worker takes another's lease only after its counter stood still for a lease
//! duration on the taker's own clock; and the worker that lost it (a zombie back from a stall)
//! can neither renew it nor move a checkpoint under it.

use std::time::Duration;

use ferry::checkpoint::dynamo::DynamoStore;
use ferry::checkpoint::lease::Leases;
use ferry::checkpoint::lease::watch::Observed;
use ferry::checkpoint::{ShardRow, StateStore};
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

#[tokio::test]
async fn a_lease_has_one_holder_and_a_zombie_can_neither_renew_nor_checkpoint() {
    let client = DynamoLocal::shared().client(&Account::fresh("leases"));
    let store = DynamoStore::open(client.clone(), TABLE).await.unwrap();
    let (w1, w2) = (
        Leases::new(client.clone(), TABLE, "w1"),
        Leases::new(client, TABLE, "w2"),
    );
    w1.create("Orders/shardId-1").await.unwrap();
    w2.create("Orders/shardId-1").await.unwrap();

    // Both read the free lease and race to take it: exactly one wins.
    let free = w1.list().await.unwrap().remove(0);
    assert_eq!((free.owner.as_deref(), free.counter), (None, 0));
    let (a, b) = tokio::join!(w1.take(&free), w2.take(&free));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() != b.is_some(), "one winner: {a:?} {b:?}");
    let (winner, loser, fence) = match a {
        Some(f) => (&w1, &w2, f),
        None => (&w2, &w1, b.unwrap()),
    };
    assert!(
        store
            .put_shards_fenced("Orders", &[position("100")], &fence)
            .await
            .unwrap()
    );
    let fence = winner.renew(&fence).await.unwrap().expect("the holder renews");

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
    assert!(
        store
            .put_shards_fenced("Orders", &[position("200")], &taken)
            .await
            .unwrap()
    );

    // The zombie wakes up: its renewal and its checkpoint are refused, and nothing moved.
    assert_eq!(winner.renew(&fence).await.unwrap(), None, "a lost lease is not renewed");
    let stale = store
        .put_shards_fenced("Orders", &[position("150")], &fence)
        .await
        .unwrap();
    assert!(!stale, "a checkpoint under a lost lease is refused");
    let saved = store.shards("Orders").await.unwrap();
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
