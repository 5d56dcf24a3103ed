//! The billed size of a DynamoDB JSON item, found in one walk over its text.
//!
//! Why by hand: the text was already checked as JSON when it was captured (serde_json's raw value:
//! strings, escapes, nesting), so what is left to check is DynamoDB's shape (one known type
//! descriptor per value, the right JSON type under it, base64 binaries) and the size. serde's
//! visitors did that at a cost per attribute (name, descriptor and value each through the
//! deserializer's machinery) that was the largest single part of reading a stream page; this walk
//! finds string ends with a SIMD search and counts as it goes.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::wire::WireValue;
use super::{Item, number_size};

/// Walks `json` (valid JSON, as serde_json captures it): the item's size as DynamoDB bills it
/// (`None` once DynamoDB Local's `{}` for an empty map was seen: such an item cannot be written as
/// it is), and the attributes named `keys`, read into SDK values.
pub(super) fn walk(json: &str, keys: &[String]) -> Result<(Option<usize>, Item), String> {
    let mut w = Walk {
        text: json,
        b: json.as_bytes(),
        i: 0,
    };
    let mut found = Item::new();
    let (size, _) = w.map(keys, &mut found)?;
    w.ws();
    if w.i != w.b.len() {
        return Err(w.error("trailing characters after the item"));
    }
    Ok((size, found))
}

struct Walk<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

/// A string as the text spells it, its decoded length in bytes, and whether it holds escapes.
struct Str<'a> {
    raw: &'a str,
    len: usize,
    escaped: bool,
}

impl<'a> Walk<'a> {
    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i)
    }

    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        if self.peek() != Some(c) {
            return Err(self.error(&format!("expected '{}'", c as char)));
        }
        self.i += 1;
        Ok(())
    }

    /// After an entry of a map or list: `true` for another, `false` at the closing `end`.
    fn more(&mut self, end: u8) -> Result<bool, String> {
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(c) if c == end => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(self.error("expected ',' or the end of the collection")),
        }
    }

    /// Opens a map or list: `true` if it has entries, `false` if it was empty (and is closed).
    fn open(&mut self, start: u8, end: u8) -> Result<bool, String> {
        self.eat(start)?;
        if self.peek() == Some(end) {
            self.i += 1;
            return Ok(false);
        }
        Ok(true)
    }

    fn string(&mut self) -> Result<Str<'a>, String> {
        self.eat(b'"')?;
        let start = self.i;
        let (mut len, mut escaped) = (0, false);
        loop {
            let run =
                memchr::memchr2(b'"', b'\\', &self.b[self.i..]).ok_or_else(|| self.error("unterminated string"))?;
            len += run;
            self.i += run;
            if self.b[self.i] == b'"' {
                let raw = &self.text[start..self.i];
                self.i += 1;
                return Ok(Str { raw, len, escaped });
            }
            escaped = true;
            len += self.escape()?;
        }
    }

    /// Steps over the escape at the cursor (a backslash); the bytes it decodes to.
    fn escape(&mut self) -> Result<usize, String> {
        let hex = |w: &Self, at: usize| {
            w.text
                .get(at..at + 4)
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| w.error("a bad \\u escape"))
        };
        match self.b.get(self.i + 1) {
            Some(b'u') => {
                let cp = hex(self, self.i + 2)?;
                self.i += 6;
                // A surrogate pair is one character of four bytes.
                if (0xD800..0xDC00).contains(&cp) && self.b[self.i..].starts_with(b"\\u") {
                    let low = hex(self, self.i + 2)?;
                    if (0xDC00..0xE000).contains(&low) {
                        self.i += 6;
                        return Ok(4);
                    }
                }
                Ok(char::from_u32(cp).map_or(3, char::len_utf8))
            }
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 2;
                Ok(1)
            }
            _ => Err(self.error("a bad escape")),
        }
    }

    /// A string's text decoded (only escaped ones need it).
    fn decoded(s: &Str<'_>) -> Result<String, String> {
        serde_json::from_str(&format!("\"{}\"", s.raw)).map_err(|e| e.to_string())
    }

    fn number(&mut self) -> Result<usize, String> {
        let s = self.string()?;
        Ok(if s.escaped {
            number_size(&Self::decoded(&s)?)
        } else {
            number_size(s.raw)
        })
    }

    fn binary(&mut self) -> Result<usize, String> {
        let s = self.string()?;
        let text = if s.escaped {
            Self::decoded(&s)?
        } else {
            s.raw.to_string()
        };
        STANDARD
            .decode(text)
            .map(|b| b.len())
            .map_err(|e| self.error(&format!("a binary that is not base64 ({e})")))
    }

    fn boolean(&mut self) -> Result<usize, String> {
        self.ws();
        for word in [&b"true"[..], b"false"] {
            if self.b[self.i..].starts_with(word) {
                self.i += word.len();
                return Ok(1);
            }
        }
        Err(self.error("expected true or false"))
    }

    /// A JSON array of entries read by `each`: their summed size and their count.
    fn list(&mut self, each: fn(&mut Self) -> Result<Option<usize>, String>) -> Result<(Option<usize>, usize), String> {
        let (mut size, mut n) = (Some(0), 0);
        if self.open(b'[', b']')? {
            loop {
                let v = each(self)?;
                size = size.zip(v).map(|(s, v)| s + v);
                n += 1;
                if !self.more(b']')? {
                    break;
                }
            }
        }
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
                let decoded = match name.escaped {
                    true => std::borrow::Cow::Owned(Self::decoded(&name)?),
                    false => std::borrow::Cow::Borrowed(name.raw),
                };
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
            "N" => Some(self.number()?),
            "B" => Some(self.binary()?),
            "BOOL" | "NULL" => Some(self.boolean()?),
            "SS" => self.list(|w| Ok(Some(w.string()?.len)))?.0,
            "NS" => self.list(|w| w.number().map(Some))?.0,
            "BS" => self.list(|w| w.binary().map(Some))?.0,
            "L" => per_entry(self.list(Self::value)?),
            "M" => per_entry(self.map(&[], &mut Item::new())?),
            other => return Err(self.error(&format!("unknown type descriptor {other:?}"))),
        };
        if self.peek() == Some(b',') {
            return Err(self.error("an attribute value with two type descriptors"));
        }
        self.eat(b'}')?;
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
