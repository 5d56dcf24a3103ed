use super::*;
use aws_sdk_dynamodb::types::AttributeValue as Av;

const HORIZON: Duration = Duration::from_secs(15);

fn key(k: &str) -> KeyBytes {
    KeyBytes::of(
        &["pk".to_string()],
        &crate::item::Item::from([("pk".to_string(), Av::S(k.into()))]),
    )
    .unwrap()
}

#[test]
fn an_older_change_received_while_a_newer_one_is_in_flight_is_out_of_order() {
    let f = InFlight::new(HORIZON);
    assert!(f.admit(&key("a"), "000200"));
    assert!(!f.admit(&key("a"), "000100"), "older than the one in flight");
    assert!(f.admit(&key("a"), "1000"), "numeric order, not text order");
    assert!(f.admit(&key("b"), "000050"), "another key is independent");
    f.release(&[key("a"), key("a"), key("b")]);
    assert_eq!(f.len(), 1);
    f.release(&[key("a")]);
    assert!(f.is_empty(), "with no receive under way, settled keys are forgotten");
    assert!(f.admit(&key("a"), "000100"));
}

#[test]
fn a_key_settled_while_an_earlier_receive_is_under_way_is_remembered_until_that_receive_is_admitted() {
    // moto hands a group's older message to one receiver and its newer one to another; the newer
    // batch is written and settled before the older batch is admitted.
    let f = InFlight::new(HORIZON);
    let older = f.receiving();
    assert!(f.admit(&key("a"), "200"));
    f.release(&[key("a")]);
    assert_eq!(f.len(), 1, "kept for the receive under way");
    assert!(
        !f.admit(&key("a"), "100"),
        "the older change still reads as out of order"
    );
    f.release(&[key("a")]);
    drop(older);
    assert!(
        f.is_empty(),
        "forgotten once no receive begun before the settling is open"
    );

    // A receive begun after the settling cannot hold an older message of the key.
    assert!(f.admit(&key("b"), "5"));
    f.release(&[key("b")]);
    let later = f.receiving();
    assert!(f.is_empty());
    drop(later);
}

#[tokio::test(start_paused = true)]
async fn a_settled_key_is_forgotten_after_the_horizon_even_while_a_receive_stays_open() {
    // A batch admitted later than the horizon after its receipt is settled by reading anyway.
    let f = InFlight::new(HORIZON);
    let stuck = f.receiving();
    assert!(f.admit(&key("a"), "1"));
    f.release(&[key("a")]);
    tokio::time::advance(HORIZON + Duration::from_millis(1)).await;
    assert!(f.admit(&key("c"), "1"));
    f.release(&[key("c")]);
    assert_eq!(f.len(), 1, "a is gone, c (just settled) is kept");
    assert!(f.admit(&key("a"), "0"), "a is not known any more");
    drop(stuck);
}
