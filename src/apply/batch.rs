//! Cuts a lane's pending changes into one BatchWriteItem request: at most 25 requests and 16 MB,
//! and never the same key twice (guaranteed by [`super::coalesce::Pending`], one entry per key).

use super::Op;
use super::coalesce::{Entry, Pending};
use crate::item::{self, KeyBytes};

pub const MAX_REQUESTS: usize = 25;
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

/// Size of a change as the batch limit counts it.
pub fn op_bytes(op: &Op) -> usize {
    match op {
        Op::Put(i) | Op::Load(i) => item::size_of(i),
        Op::PutRaw(r) | Op::LoadRaw(r) => r.size(),
        Op::Delete(k) | Op::Fetch(k) => item::size_of(k),
    }
}

/// Takes the next batch from `pending`, oldest keys first.
pub fn take(pending: &mut Pending) -> Vec<(KeyBytes, Entry)> {
    let mut out = Vec::with_capacity(MAX_REQUESTS.min(pending.len()));
    let mut bytes = 0usize;
    while out.len() < MAX_REQUESTS {
        let first = out.is_empty();
        match pending.pop_if(|size| first || bytes + size <= MAX_BYTES) {
            Some((key, e)) => {
                bytes += e.bytes;
                out.push((key, e));
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::test_support::{change, put};

    #[test]
    fn batches_hold_at_most_25_distinct_keys() {
        let mut p = Pending::default();
        for i in 0..60 {
            p.push(change(&format!("k{}", i % 30), put(i), i as u64), None);
        }
        assert_eq!(p.len(), 30, "60 changes to 30 keys coalesce to 30 entries");
        let b1 = take(&mut p);
        let b2 = take(&mut p);
        assert_eq!((b1.len(), b2.len(), p.len()), (25, 5, 0));
        let mut keys: Vec<_> = b1.iter().chain(&b2).map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 30);
        assert!(
            b1.iter().all(|(_, e)| e.tickets.len() == 2),
            "each entry stands for both of its records"
        );
    }

    #[test]
    fn a_batch_stops_before_16_mb() {
        // 25 valid items (≤ 400 KB) stay under 16 MB; 700 KB ones show the byte cut at work.
        let mut p = Pending::default();
        for i in 0..25 {
            p.push(
                change(
                    &format!("k{i}"),
                    crate::apply::test_support::big_put(i, 700 * 1024),
                    i as u64,
                ),
                None,
            );
        }
        let b = take(&mut p);
        assert_eq!(b.len(), 23);
        assert!(b.iter().map(|(_, e)| op_bytes(&e.op)).sum::<usize>() <= MAX_BYTES);
        assert_eq!(take(&mut p).len(), 2);
    }
}
