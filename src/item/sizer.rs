//! The billed size of a DynamoDB JSON item, found in one walk over its text.
//!
//! Why by hand: serde's visitors checked an item's shape at a cost per attribute (name, descriptor
//! and value each through the deserializer's machinery) that was the largest single part of reading
//! a stream page. This walk goes over the text once with a [`Cursor`] (which checks JSON's syntax),
//! checks DynamoDB's shape (one known type descriptor per value, the right JSON type under it,
//! base64 binaries) and counts the size as it goes.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::cursor::Cursor;
use super::wire::WireValue;
use super::{Item, number_size};

/// Walks `json`, one item and nothing after it: the item's size as DynamoDB bills it (`None` once
/// DynamoDB Local's `{}` for an empty map was seen: such an item cannot be written as it is), and
/// the attributes named `keys`, read into SDK values.
pub(super) fn walk(json: &str, keys: &[String]) -> Result<(Option<usize>, Item), String> {
    let mut w = Cursor::new(json);
    let mut found = Item::new();
    let (size, _) = w.map(keys, &mut found)?;
    w.end()?;
    Ok((size, found))
}

/// Walks the item at the cursor: its size, as [`walk`] gives it.
pub(super) fn walk_at(w: &mut Cursor<'_>) -> Result<Option<usize>, String> {
    w.map(&[], &mut Item::new()).map(|(size, _)| size)
}

impl Cursor<'_> {
    fn number_len(&mut self) -> Result<usize, String> {
        let s = self.string()?;
        Ok(number_size(&s.decoded()?))
    }

    fn binary(&mut self) -> Result<usize, String> {
        let s = self.string()?;
        STANDARD
            .decode(s.decoded()?.as_bytes())
            .map(|b| b.len())
            .map_err(|e| self.error(&format!("a binary that is not base64 ({e})")))
    }

    fn bool_size(&mut self) -> Result<usize, String> {
        self.boolean().map(|_| 1)
    }

    /// A JSON array of entries read by `each`: their summed size and their count.
    fn list(&mut self, each: fn(&mut Self) -> Result<Option<usize>, String>) -> Result<(Option<usize>, usize), String> {
        let (mut size, mut n) = (Some(0), 0);
        self.items(|w| {
            let v = each(w)?;
            size = size.zip(v).map(|(s, v)| s + v);
            n += 1;
            Ok(())
        })?;
        Ok((size, n))
    }

    /// An attribute map: names plus values, its entry count, and the attributes named `keys`.
    fn map(&mut self, keys: &[String], found: &mut Item) -> Result<(Option<usize>, usize), String> {
        let (mut size, mut n) = (Some(0), 0);
        if !self.open(b'{', b'}')? {
            return Ok((size, n));
        }
        loop {
            let name = self.string()?;
            self.eat(b':')?;
            self.ws();
            let start = self.i;
            let v = self.value()?;
            if !keys.is_empty() {
                // Borrowed unless escaped: export lines ask this of every attribute.
                let decoded = name.decoded()?;
                if keys.iter().any(|k| *k == decoded) {
                    found.insert(decoded.into_owned(), self.read_value(start)?);
                }
            }
            size = size.zip(v).map(|(s, v)| s + name.len + v);
            n += 1;
            if !self.more(b'}')? {
                return Ok((size, n));
            }
        }
    }

    /// The value walked from `start` to the cursor, as an SDK value.
    fn read_value(&self, start: usize) -> Result<AttributeValue, String> {
        serde_json::from_str::<WireValue>(&self.text[start..self.i])
            .map(|v| v.0)
            .map_err(|e| e.to_string())
    }

    /// One attribute value like `{"S":"x"}`: its size, `None` for DynamoDB Local's `{}`.
    fn value(&mut self) -> Result<Option<usize>, String> {
        if !self.open(b'{', b'}')? {
            return Ok(None);
        }
        let tag = self.string()?;
        self.eat(b':')?;
        let per_entry = |(s, n): (Option<usize>, usize)| s.map(|s| 3 + s + n);
        let size = match tag.raw {
            "S" => Some(self.string()?.len),
            "N" => Some(self.number_len()?),
            "B" => Some(self.binary()?),
            "BOOL" | "NULL" => Some(self.bool_size()?),
            "SS" => self.list(|w| Ok(Some(w.string()?.len)))?.0,
            "NS" => self.list(|w| w.number_len().map(Some))?.0,
            "BS" => self.list(|w| w.binary().map(Some))?.0,
            "L" => per_entry(self.list(Self::value)?),
            "M" => per_entry(self.map(&[], &mut Item::new())?),
            other => return Err(self.error(&format!("unknown type descriptor {other:?}"))),
        };
        if self.peek() == Some(b',') {
            return Err(self.error("an attribute value with two type descriptors"));
        }
        self.close(b'}')?;
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue as Av;
    use aws_smithy_types::Blob;
    use proptest::prelude::*;

    use super::*;
    use crate::item::{json, size_of, wire};

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!['a', 'Z', ' ', '"', '\\', '/', '\n', '\u{1}', 'é', '€', '😀']),
            0..12,
        )
        .prop_map(|c| c.into_iter().collect())
    }

    fn value() -> impl Strategy<Value = Av> {
        let number = (any::<i32>(), 0u8..4).prop_map(|(n, e)| Av::N(format!("{n}.{}E{e}", n.unsigned_abs() % 97)));
        let scalar = prop_oneof![
            text().prop_map(Av::S),
            number.clone(),
            prop::collection::vec(any::<u8>(), 0..9).prop_map(|b| Av::B(Blob::new(b))),
            any::<bool>().prop_map(Av::Bool),
            Just(Av::Null(true)),
            prop::collection::btree_set(text(), 1..4).prop_map(|s| Av::Ss(s.into_iter().collect())),
            prop::collection::btree_set(any::<u16>(), 1..4)
                .prop_map(|s| Av::Ns(s.iter().map(u16::to_string).collect())),
            prop::collection::btree_set(prop::collection::vec(any::<u8>(), 1..4), 1..3)
                .prop_map(|s| Av::Bs(s.into_iter().map(Blob::new).collect())),
        ];
        scalar.prop_recursive(2, 12, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Av::L),
                prop::collection::hash_map(text(), inner, 0..4).prop_map(Av::M),
            ]
        })
    }

    /// Every non-ASCII character as \u escapes (surrogate pairs beyond the BMP).
    fn ascii(json: &str) -> String {
        json.chars()
            .map(|c| match c.is_ascii() {
                true => c.to_string(),
                false => c
                    .encode_utf16(&mut [0; 2])
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect(),
            })
            .collect()
    }

    proptest! {
        /// However the item is spelled (ferry's writer, serde_json's, pretty, every character
        /// escaped), the walk bills it as the map is billed and reads the same key attributes.
        #[test]
        fn the_walk_bills_what_the_map_bills(item in prop::collection::hash_map(text(), value(), 1..6)) {
            let key = item.keys().next().cloned().into_iter().collect::<Vec<_>>();
            let mut ours = Vec::new();
            wire::write_item(&mut ours, &item);
            let ours = String::from_utf8(ours).unwrap();
            let theirs = json::item_to_json(&item);
            for spelling in [ours.clone(), theirs.to_string(), serde_json::to_string_pretty(&theirs).unwrap(), ascii(&ours)] {
                let (size, found) = walk(&spelling, &key).map_err(|e| TestCaseError::fail(format!("{e}: {spelling}")))?;
                prop_assert_eq!(size, Some(size_of(&item)), "{}", spelling);
                prop_assert_eq!(&found[&key[0]], &item[&key[0]]);
            }
        }
    }

    #[test]
    fn shapes_dynamodb_refuses_are_errors() {
        for bad in [
            r#"{"a":{"S":1}}"#,
            r#"{"a":{"Q":"1"}}"#,
            r#"{"a":{"S":"x","N":"1"}}"#,
            r#"{"a":{"B":"not base64!"}}"#,
            r#"{"a":{"L":{}}}"#,
            r#"{"a":{"BOOL":"true"}}"#,
            r#"{"a":{"SS":["x",1]}}"#,
            r#"{"a":{"S":"x"}} {}"#,
            r#"["a"]"#,
        ] {
            assert!(walk(bad, &[]).is_err(), "{bad}");
            assert!(crate::item::Image::from_json(bad.into()).is_err(), "{bad}");
        }
        assert_eq!(
            walk(r#"{"a":{"M":{"b":{}}}}"#, &[]).unwrap().0,
            None,
            "DynamoDB Local's {{}}"
        );
    }
}
