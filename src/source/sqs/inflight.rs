//! Keys whose changes are received and not yet settled, with the newest stream sequence number
//! received for each: a guard against a broker that hands out two messages of one group at once
//! (moto's ReceiveMessage is not atomic under concurrent receivers) and so lets an older change
//! reach the apply path after a newer one. Such a change is settled by reading the source's
//! current item instead of writing its image. SQS FIFO itself never does this; the guard costs one
//! map entry per key in flight.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::item::KeyBytes;

#[derive(Default)]
pub struct InFlight {
    /// Newest sequence number received for the key, and how many of its changes are unsettled.
    keys: Mutex<HashMap<KeyBytes, (String, u32)>>,
}

impl InFlight {
    /// Registers a received change. Returns `false` when a newer change to the key was received
    /// before it and is still in flight (this one arrived out of order).
    pub fn admit(&self, key: &KeyBytes, seq: &str) -> bool {
        let mut keys = self.keys.lock().unwrap();
        match keys.get_mut(key) {
            Some((newest, n)) => {
                *n += 1;
                if seq_cmp(seq, newest) == Ordering::Less {
                    false
                } else {
                    *newest = seq.to_string();
                    true
                }
            }
            None => {
                keys.insert(key.clone(), (seq.to_string(), 1));
                true
            }
        }
    }

    /// The changes admitted for `keys` (one entry per admitted change) are settled.
    pub fn release(&self, keys: &[KeyBytes]) {
        let mut map = self.keys.lock().unwrap();
        for k in keys {
            if let Some((_, n)) = map.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    map.remove(k);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Stream sequence numbers are decimal strings of varying length (up to 40 digits).
fn seq_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as Av;

    fn key(k: &str) -> KeyBytes {
        KeyBytes::of(
            &["pk".to_string()],
            &crate::item::Item::from([("pk".to_string(), Av::S(k.into()))]),
        )
        .unwrap()
    }

    #[test]
    fn an_older_change_received_while_a_newer_one_is_in_flight_is_out_of_order() {
        let f = InFlight::default();
        assert!(f.admit(&key("a"), "000200"));
        assert!(!f.admit(&key("a"), "000100"), "older than the one in flight");
        assert!(f.admit(&key("a"), "1000"), "numeric order, not text order");
        assert!(f.admit(&key("b"), "000050"), "another key is independent");
        f.release(&[key("a"), key("a"), key("b")]);
        assert_eq!(f.len(), 1);
        f.release(&[key("a")]);
        assert!(
            f.is_empty(),
            "settled keys are forgotten: the map holds only keys in flight"
        );
        assert!(f.admit(&key("a"), "000100"));
    }
}
