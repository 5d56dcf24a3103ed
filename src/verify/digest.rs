//! Digests: one per item (its canonical form), and an order-independent one per segment, so two
//! segments holding the same items compare equal without any key-by-key work.

use sha2::{Digest as _, Sha256};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::item::{Item, KeyBytes, number};

/// 128 bits of SHA-256: collisions are not a practical concern for comparing tables.
pub type Digest = [u8; 16];

/// One scanned item: its key identity and the digest of its full canonical form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub key: KeyBytes,
    pub digest: Digest,
}

/// The digest of an item's canonical form (set order, number spelling and map order ignored):
/// the same equality as [`crate::item::canonical`], hashed as a stream of tagged,
/// length-prefixed parts without building the canonical value (verify's hot path).
pub fn item_digest(item: &Item) -> Digest {
    let mut h = Sha256::new();
    hash_map(&mut h, item);
    truncate(h.finalize().as_slice())
}

fn part(h: &mut Sha256, tag: u8, bytes: &[u8]) {
    h.update([tag]);
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

fn hash_map(h: &mut Sha256, m: &Item) {
    let mut names: Vec<&String> = m.keys().collect();
    names.sort_unstable();
    h.update((names.len() as u64).to_be_bytes());
    for n in names {
        part(h, b'k', n.as_bytes());
        hash_value(h, &m[n]);
    }
}

fn hash_sorted(h: &mut Sha256, tag: u8, mut parts: Vec<Vec<u8>>) {
    parts.sort_unstable();
    h.update([tag]);
    h.update((parts.len() as u64).to_be_bytes());
    for p in &parts {
        part(h, b'e', p);
    }
}

fn num(n: &str) -> String {
    number::normalize(n).unwrap_or_else(|| n.to_string())
}

fn hash_value(h: &mut Sha256, v: &AttributeValue) {
    match v {
        AttributeValue::S(s) => part(h, b'S', s.as_bytes()),
        AttributeValue::N(n) => part(h, b'N', num(n).as_bytes()),
        AttributeValue::B(b) => part(h, b'B', b.as_ref()),
        AttributeValue::Bool(b) => part(h, b'T', &[*b as u8]),
        AttributeValue::Null(b) => part(h, b'0', &[*b as u8]),
        AttributeValue::Ss(s) => hash_sorted(h, b's', s.iter().map(|x| x.as_bytes().to_vec()).collect()),
        AttributeValue::Ns(s) => hash_sorted(h, b'n', s.iter().map(|x| num(x).into_bytes()).collect()),
        AttributeValue::Bs(s) => hash_sorted(h, b'b', s.iter().map(|x| x.as_ref().to_vec()).collect()),
        AttributeValue::L(l) => {
            h.update([b'L']);
            h.update((l.len() as u64).to_be_bytes());
            l.iter().for_each(|x| hash_value(h, x));
        }
        AttributeValue::M(m) => {
            h.update([b'M']);
            hash_map(h, m);
        }
        other => part(h, b'?', canonical_of(other).as_bytes()),
    }
}

/// A value of a type newer than this code: hashed through its JSON form.
fn canonical_of(v: &AttributeValue) -> String {
    crate::item::json::to_json(v).to_string()
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
    use crate::item::canonical::canonical;

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

    /// An item with every attribute type, numbers in high precision and a map nested three deep.
    fn rich_item() -> Item {
        use aws_smithy_types::Blob;
        let deep = |child: Option<AttributeValue>| {
            let mut m = Item::from([("n".to_string(), AttributeValue::N("7".into()))]);
            m.extend(child.map(|c| ("child".to_string(), c)));
            AttributeValue::M(m)
        };
        Item::from([
            ("pk".to_string(), AttributeValue::S("p".into())),
            ("sk".to_string(), AttributeValue::N("1".into())),
            ("s".to_string(), AttributeValue::S("value-ünïcødé-✓".into())),
            (
                "n_precise".to_string(),
                AttributeValue::N("12345678901234567890123456.000007123456".into()),
            ),
            ("b".to_string(), AttributeValue::B(Blob::new(vec![0, 1, 255]))),
            ("flag".to_string(), AttributeValue::Bool(true)),
            ("nothing".to_string(), AttributeValue::Null(true)),
            (
                "ss".to_string(),
                AttributeValue::Ss(vec!["a7".into(), "b".into(), "c".into()]),
            ),
            (
                "ns".to_string(),
                AttributeValue::Ns(vec!["7".into(), "3.14".into(), "-7E-3".into()]),
            ),
            (
                "bs".to_string(),
                AttributeValue::Bs(vec![Blob::new(vec![9]), Blob::new(vec![0, 1, 2])]),
            ),
            (
                "list".to_string(),
                AttributeValue::L(vec![AttributeValue::S("x".into()), AttributeValue::L(vec![])]),
            ),
            ("deep".to_string(), deep(Some(deep(Some(deep(None)))))),
        ])
    }

    #[test]
    fn digests_agree_with_canonical_equality() {
        let a = rich_item();
        let mut b = a.clone();
        // Same item, other spellings and orders.
        if let Some(AttributeValue::Ns(v)) = b.get_mut("ns") {
            v.reverse();
            v.iter_mut().filter(|x| *x == "3.14").for_each(|x| *x = "3.1400".into());
        }
        if let Some(AttributeValue::Ss(v)) = b.get_mut("ss") {
            v.reverse();
        }
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(item_digest(&a), item_digest(&b));
        let mut c = a.clone();
        if let Some(AttributeValue::M(m)) = c.get_mut("deep") {
            m.insert("n".into(), AttributeValue::N("-1".into()));
        }
        assert_ne!(item_digest(&a), item_digest(&c));
        let mut d = a.clone();
        d.insert("s".into(), AttributeValue::Ss(vec!["x".into()]));
        let mut e = a.clone();
        e.insert("s".into(), AttributeValue::S("x".into()));
        assert_ne!(item_digest(&d), item_digest(&e), "types are part of the value");
    }
}
