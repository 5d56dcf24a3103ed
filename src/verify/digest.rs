//! Digests: one per item (its canonical form), and an order-independent one per segment, so two
//! segments holding the same items compare equal without any key-by-key work.

use sha2::{Digest as _, Sha256};

use crate::item::{Item, KeyBytes, canonical::canonical};

/// 128 bits of SHA-256: collisions are not a practical concern for comparing tables.
pub type Digest = [u8; 16];

/// One scanned item: its key identity and the digest of its full canonical form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub key: KeyBytes,
    pub digest: Digest,
}

/// The digest of an item's canonical form (set order, number spelling and map order ignored).
pub fn item_digest(item: &Item) -> Digest {
    let text = canonical(item).to_string();
    truncate(Sha256::digest(text.as_bytes()).as_slice())
}

/// Order-independent digest of a set of entries: XOR of each entry's own hash, plus the count
/// (XOR alone would let two copies of one entry cancel out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetDigest {
    pub xor: Digest,
    pub count: u64,
}

impl SetDigest {
    pub fn add(&mut self, e: &Entry) {
        let mut h = Sha256::new();
        h.update(e.key.as_bytes());
        h.update(e.digest);
        let d = truncate(h.finalize().as_slice());
        for (a, b) in self.xor.iter_mut().zip(d) {
            *a ^= b;
        }
        self.count += 1;
    }

    pub fn merge(&mut self, other: &SetDigest) {
        for (a, b) in self.xor.iter_mut().zip(other.xor) {
            *a ^= b;
        }
        self.count += other.count;
    }

    pub fn of(entries: &[Entry]) -> SetDigest {
        let mut d = SetDigest::default();
        entries.iter().for_each(|e| d.add(e));
        d
    }

    pub fn hex(&self) -> String {
        self.xor.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn truncate(d: &[u8]) -> Digest {
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn entry(k: &str, v: &str) -> Entry {
        let names = ["pk".to_string()];
        let item = Item::from([
            ("pk".to_string(), AttributeValue::S(k.into())),
            ("v".to_string(), AttributeValue::N(v.into())),
        ]);
        Entry {
            key: KeyBytes::of(&names, &item).unwrap(),
            digest: item_digest(&item),
        }
    }

    #[test]
    fn set_digest_ignores_order_and_sees_changes_and_duplicates() {
        let (a, b, c) = (entry("a", "1"), entry("b", "2"), entry("c", "3"));
        let one = SetDigest::of(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(one, SetDigest::of(&[c.clone(), a.clone(), b.clone()]));
        assert_ne!(one, SetDigest::of(&[a.clone(), b.clone(), entry("c", "4")]));
        assert_eq!(entry("c", "3.0"), c, "numbers compare as numbers");
        let dup = SetDigest::of(&[a.clone(), a.clone(), b.clone(), c.clone()]);
        assert_ne!(one, dup);
        let mut merged = SetDigest::of(&[a]);
        merged.merge(&SetDigest::of(&[b, c]));
        assert_eq!(merged, one);
    }
}
