//! Items as ferry handles them: identity of a key, size in write units, and conversions.
//!
//! Keys must have one identity however DynamoDB spells them, because the key decides the apply lane
//! and the coalescing slot: two spellings of one number ("1.50" and "1.5") in two lanes would let
//! writes to one item overtake each other.

pub mod canonical;
pub(crate) mod cursor;
pub mod json;
pub mod keys;
pub mod number;
pub mod raw;
mod sizer;
pub mod wire;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use aws_sdk_dynamodb::types::AttributeValue;

pub type Item = HashMap<String, AttributeValue>;
pub use keys::RawKeys;
pub use raw::{Image, RawItem};

/// The canonical bytes of an item's primary key, in key-schema order. Equal keys give equal bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyBytes(Box<[u8]>);

impl KeyBytes {
    /// Encodes the key attributes named by `key_names` (hash key first) from `item`.
    /// Returns `None` when an attribute is missing or not a scalar key type.
    pub fn of(key_names: &[String], item: &Item) -> Option<KeyBytes> {
        let mut out = Vec::with_capacity(32);
        for name in key_names {
            match item.get(name)? {
                AttributeValue::S(s) => push(&mut out, b'S', s.as_bytes()),
                AttributeValue::N(n) => push(&mut out, b'N', number::normalize(n)?.as_bytes()),
                AttributeValue::B(b) => push(&mut out, b'B', b.as_ref()),
                _ => return None,
            }
        }
        Some(KeyBytes(out.into_boxed_slice()))
    }

    /// The canonical bytes themselves: digests hash them, and the SQS forwarder hashes them into
    /// message groups (so they must stay stable across ferry versions).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Decodes the key attributes again (numbers in their normalized spelling), named by
    /// `key_names` in the order they were encoded. `None` if the bytes are not an encoded key.
    pub fn to_item(&self, key_names: &[String]) -> Option<Item> {
        let mut out = Item::new();
        let mut rest: &[u8] = &self.0;
        for name in key_names {
            let (&tag, tail) = rest.split_first()?;
            let len = u32::from_be_bytes(tail.get(..4)?.try_into().ok()?) as usize;
            let bytes = tail.get(4..4 + len)?;
            rest = &tail[4 + len..];
            let v = match tag {
                b'S' => AttributeValue::S(String::from_utf8(bytes.to_vec()).ok()?),
                b'N' => AttributeValue::N(String::from_utf8(bytes.to_vec()).ok()?),
                b'B' => AttributeValue::B(aws_smithy_types::Blob::new(bytes.to_vec())),
                _ => return None,
            };
            out.insert(name.clone(), v);
        }
        rest.is_empty().then_some(out)
    }

    /// A stable 64-bit hash, used to pick the apply lane (FxHash: keys are not attacker-chosen
    /// hash-flooding input here, and SipHash was a visible share of the apply path).
    pub fn lane_hash(&self) -> u64 {
        let mut h = rustc_hash::FxHasher::default();
        self.0.hash(&mut h);
        h.finish()
    }
}

fn push(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyBytes({})", String::from_utf8_lossy(&self.0))
    }
}

/// Extracts just the key attributes of `item`.
pub fn key_of(key_names: &[String], item: &Item) -> Item {
    key_names
        .iter()
        .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

/// Renders a key for messages: `{"pk":{"S":"a"},"sk":{"N":"1"}}`.
pub fn display_key(key: &Item) -> String {
    json::item_to_json(key).to_string()
}

/// The item's size as DynamoDB bills it (names plus values), in bytes.
pub fn size_of(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

pub(crate) fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(|s| s.len()).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|x| 1 + value_size(x)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, x)| 1 + k.len() + value_size(x)).sum::<usize>(),
        _ => 1,
    }
}

/// DynamoDB stores numbers as base-100 digits: about one byte per two significant digits, plus one.
pub(crate) fn number_size(n: &str) -> usize {
    let digits = n.bytes().filter(|b| b.is_ascii_digit()).count();
    digits.div_ceil(2) + 1
}

/// Write units for putting `item`: one per started KB, at least one.
pub fn write_units(item_size: usize) -> u32 {
    (item_size.div_ceil(1024)).max(1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn equal_numbers_in_other_spellings_are_one_key() {
        let names = vec!["pk".to_string(), "sk".to_string()];
        let a = item(&[
            ("pk", AttributeValue::S("a".into())),
            ("sk", AttributeValue::N("1.50".into())),
        ]);
        let b = item(&[
            ("pk", AttributeValue::S("a".into())),
            ("sk", AttributeValue::N("15E-1".into())),
        ]);
        let c = item(&[
            ("pk", AttributeValue::S("a".into())),
            ("sk", AttributeValue::N("1.5001".into())),
        ]);
        assert_eq!(KeyBytes::of(&names, &a), KeyBytes::of(&names, &b));
        assert_ne!(KeyBytes::of(&names, &a), KeyBytes::of(&names, &c));
        assert_eq!(
            KeyBytes::of(&names, &a).unwrap().lane_hash(),
            KeyBytes::of(&names, &b).unwrap().lane_hash()
        );
    }

    #[test]
    fn key_bytes_decode_back_to_the_key() {
        let names = vec!["pk".to_string(), "sk".to_string()];
        let a = item(&[
            ("pk", AttributeValue::B(aws_smithy_types::Blob::new(vec![0, 1, 255]))),
            ("sk", AttributeValue::N("1.50".into())),
            ("other", AttributeValue::S("x".into())),
        ]);
        let k = KeyBytes::of(&names, &a).unwrap();
        let back = k.to_item(&names).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back["pk"], a["pk"]);
        assert_eq!(back["sk"], AttributeValue::N("1.5".into()));
        assert_eq!(KeyBytes::of(&names, &back), Some(k));
    }

    #[test]
    fn key_parts_cannot_run_together() {
        let names = vec!["pk".to_string(), "sk".to_string()];
        let a = item(&[
            ("pk", AttributeValue::S("ab".into())),
            ("sk", AttributeValue::S("c".into())),
        ]);
        let b = item(&[
            ("pk", AttributeValue::S("a".into())),
            ("sk", AttributeValue::S("bc".into())),
        ]);
        assert_ne!(KeyBytes::of(&names, &a), KeyBytes::of(&names, &b));
        let missing = item(&[("pk", AttributeValue::S("a".into()))]);
        assert!(KeyBytes::of(&names, &missing).is_none());
    }

    #[test]
    fn write_units_round_up_per_started_kilobyte() {
        assert_eq!(write_units(0), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        let big = item(&[("pk", AttributeValue::S("x".repeat(390 * 1024)))]);
        assert_eq!(write_units(size_of(&big)), 391);
    }
}
