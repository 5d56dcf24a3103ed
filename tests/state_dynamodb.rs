//! The DynamoDB state backend, live on DynamoDB Local (the state table in an account of its own):
//! it keeps the same contract as the SQLite file, a second worker opening it finds the table ferry
//! created, and a table of another shape is refused with the reason.

use ferry::checkpoint::StateStore;
use ferry::checkpoint::dynamo::DynamoStore;
use ferry::checkpoint::lease::Leases;
use ferry_rig::data::create_table;
use ferry_rig::{Account, DynamoLocal, state_contract};

#[tokio::test]
async fn the_state_table_keeps_the_contract_and_is_shared_by_every_worker() {
    let client = DynamoLocal::shared().client(&Account::fresh("state"));
    let first = DynamoStore::open(client.clone(), "ferry-state", &Default::default())
        .await
        .unwrap();
    state_contract::check(&first).await;
    // A second worker opens the table the first created, and reads what it wrote.
    let second = DynamoStore::open(client, "ferry-state", &Default::default())
        .await
        .unwrap();
    let names: Vec<String> = second.tables().await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["A", "B"]);
    assert_eq!(second.shards("A").await.unwrap(), first.shards("A").await.unwrap());
}

/// Under a held lease every write is a transaction with the lease's check: the contract holds
/// all the same.
#[tokio::test]
async fn the_contract_holds_for_writes_under_a_lease() {
    let client = DynamoLocal::shared().client(&Account::fresh("state"));
    let store = DynamoStore::open(client.clone(), "ferry-state", &Default::default())
        .await
        .unwrap();
    let leases = Leases::new(client, "ferry-state", "w1", &Default::default());
    leases.create("migration").await.unwrap();
    let free = leases.list().await.unwrap().remove(0);
    store.hold(leases.take(&free).await.unwrap());
    state_contract::check(&store).await;
}

#[tokio::test]
async fn a_state_table_of_another_shape_is_refused() {
    let client = DynamoLocal::shared().client(&Account::fresh("state"));
    create_table(&client, "Orders", None).await;
    let err = DynamoStore::open(client, "Orders", &Default::default())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("state table Orders") && err.contains("another key schema"),
        "{err}"
    );
}
