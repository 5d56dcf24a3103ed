//! A stream record's `Keys`, kept as the JSON they came in until the key schema reads them.
//!
//! Why: reading them into an SDK item map (a hash map, two strings per attribute) and encoding
//! [`KeyBytes`] from it was a sixth of the apply path's CPU, for a map most records never need:
//! an INSERT or MODIFY writes its new image. The identity is read straight from the JSON, and the
//! map is built from it only for a delete or a read-through.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use smallvec::SmallVec;

use super::cursor::Cursor;
use super::{Item, KeyBytes, number};

/// A record's key attributes as DynamoDB JSON (syntax checked when read).
#[derive(Clone, PartialEq)]
pub struct RawKeys(Box<str>);

impl Default for RawKeys {
    /// No attributes: `{}`.
    fn default() -> RawKeys {
        RawKeys("{}".into())
    }
}

impl RawKeys {
    /// The keys of a map item (sources that hold maps, and tests).
    pub fn of(item: &Item) -> RawKeys {
        let mut out = Vec::new();
        super::wire::write_item(&mut out, item);
        RawKeys(String::from_utf8(out).expect("JSON is UTF-8").into())
    }

    pub fn json(&self) -> &str {
        &self.0
    }

    /// Reads the JSON value at `cursor` (checking its syntax; its shape is the key schema's to
    /// judge, naming the record).
    pub(crate) fn read(cursor: &mut Cursor<'_>) -> Result<RawKeys, String> {
        cursor.ws();
        let start = cursor.i;
        cursor.skip()?;
        Ok(RawKeys(cursor.text[start..cursor.i].into()))
    }

    /// The key's identity: the attributes named `key_names`, in that order, as [`KeyBytes::of`]
    /// encodes them from a map. `None` when one is missing, is not a string, number or binary, or
    /// is not DynamoDB JSON.
    pub fn key_bytes(&self, key_names: &[String]) -> Option<KeyBytes> {
        let mut found: SmallVec<[Option<Part<'_>>; 2]> = smallvec::smallvec![None; key_names.len()];
        let mut c = Cursor::new(&self.0);
        c.entries(|c, name| {
            let name = name.decoded()?;
            match key_names.iter().position(|k| **k == *name) {
                Some(i) => key_value(c).map(|part| found[i] = part),
                None => c.skip(),
            }
        })
        .ok()?;
        let mut out = Vec::with_capacity(32);
        for (tag, bytes) in found.into_iter().collect::<Option<SmallVec<[Part<'_>; 2]>>>()? {
            super::push(&mut out, tag, &bytes);
        }
        Some(KeyBytes(out.into_boxed_slice()))
    }
}

impl fmt::Debug for RawKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawKeys({})", self.0)
    }
}

impl<'de> Deserialize<'de> for RawKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(|r| RawKeys(r.into()))
    }
}

/// One key attribute: its encoding tag and bytes.
type Part<'a> = (u8, Cow<'a, [u8]>);

/// A key attribute's value (`{"S": "x"}`); `None` for a type no key has, an error for what is not
/// an attribute value.
fn key_value<'a>(c: &mut Cursor<'a>) -> Result<Option<Part<'a>>, String> {
    let mut part = None;
    c.entries(|c, tag| {
        if part.is_some() {
            return Err(c.error("an attribute value with two type descriptors"));
        }
        part = Some(match &*tag.decoded()? {
            "S" => Some((b'S', cow_bytes(c.string()?.decoded()?))),
            "N" => {
                let n = c.string()?.decoded()?;
                let n = number::normalize(&n).ok_or_else(|| c.error("not a number"))?;
                Some((b'N', Cow::Owned(n.into_bytes())))
            }
            "B" => {
                let b = c.string()?.decoded()?;
                Some((
                    b'B',
                    Cow::Owned(STANDARD.decode(b.as_bytes()).map_err(|e| e.to_string())?),
                ))
            }
            "BOOL" | "NULL" | "SS" | "NS" | "BS" | "L" | "M" => c.skip().map(|()| None)?,
            _ => return Err(c.error("an unknown type descriptor")),
        });
        Ok(())
    })?;
    part.ok_or_else(|| c.error("an attribute value without a type descriptor"))
}

fn cow_bytes(s: Cow<'_, str>) -> Cow<'_, [u8]> {
    match s {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue as Av;
    use aws_smithy_types::Blob;
    use proptest::prelude::*;

    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_identity_read_from_json_is_the_one_read_from_a_map() {
        let item = Item::from([
            ("pk".to_string(), Av::S("a \"q\" é".into())),
            ("sk".to_string(), Av::N("1.50".into())),
            ("b".to_string(), Av::B(Blob::new(vec![0, 1, 2]))),
        ]);
        for key in [
            names(&["pk", "sk"]),
            names(&["sk", "pk"]),
            names(&["b"]),
            names(&["pk"]),
        ] {
            let raw = RawKeys::of(&item).key_bytes(&key);
            assert_eq!(raw, KeyBytes::of(&key, &item), "{key:?}");
            assert!(raw.is_some());
        }
        // Escapes and another spelling of the number give the same identity.
        let spelled = RawKeys(r#"{"sk":{"N":"1.5"},"pk":{"S":"a \u0022q\" \u00e9"}}"#.into());
        assert_eq!(
            spelled.key_bytes(&names(&["pk", "sk"])),
            KeyBytes::of(&names(&["pk", "sk"]), &item)
        );
    }

    /// One attribute value, well formed or not in the ways a key attribute can be wrong.
    fn value() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            r#"{"S":"a"}"#,
            r#"{"S":"a\"b \u00e9 é"}"#,
            r#"{"S":""}"#,
            r#"{"N":"1.50"}"#,
            r#"{"N":"-0"}"#,
            r#"{"N":"1E2"}"#,
            r#"{"N":"x"}"#,
            r#"{"B":"AAEC"}"#,
            r#"{"B":"!"}"#,
            r#"{"BOOL":true}"#,
            r#"{"NULL":true}"#,
            r#"{"SS":["a"]}"#,
            r#"{"L":[{"S":"a"}]}"#,
            r#"{"M":{"pk":{"S":"a"}}}"#,
            r#"{}"#,
            r#"{"S":"a","N":"1"}"#,
            r#"{"Q":"a"}"#,
        ])
        .prop_map(str::to_string)
    }

    proptest! {
        /// Read straight from the JSON, a key's identity is what its key attributes read into a
        /// map give (escaped names, wrong and unknown types among them).
        #[test]
        fn the_identity_is_the_one_of_the_map_the_json_reads_into(
            attrs in prop::collection::btree_map(
                prop::sample::select(vec!["pk", "p\\u006b", "sk", "x"]).prop_map(|n| n.to_string()),
                value(),
                0..4,
            ),
            key in prop::sample::select(vec![vec!["pk"], vec!["pk", "sk"], vec!["sk", "pk"]]),
        ) {
            // "pk" once, spelled plainly or with an escape (a name given twice is not an item).
            let body: Vec<String> = attrs
                .iter()
                .filter(|(k, _)| !(k.as_str() == "p\\u006b" && attrs.contains_key("pk")))
                .map(|(k, v)| format!(r#""{k}":{v}"#))
                .collect();
            let json = format!("{{{}}}", body.join(","));
            let key = names(&key);
            // The key attributes only: what other attributes hold is not the key's to judge.
            let mut attrs: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
            attrs.retain(|name, _| key.contains(name));
            let from_map = serde_json::from_value::<super::super::wire::WireItem>(attrs.into())
                .ok()
                .and_then(|i| KeyBytes::of(&key, &i.0));
            prop_assert_eq!(RawKeys(json.clone().into()).key_bytes(&key), from_map, "{}", json);
        }
    }

    #[test]
    fn a_missing_or_non_key_attribute_has_no_identity() {
        let keys = RawKeys(r#"{"pk":{"S":"a"},"l":{"L":[{"S":"x"}]},"m":{}}"#.into());
        assert!(keys.key_bytes(&names(&["pk"])).is_some());
        for bad in [names(&["pk", "sk"]), names(&["l"]), names(&["m"])] {
            assert_eq!(keys.key_bytes(&bad), None, "{bad:?}");
        }
        for bad in [
            r#"{"pk":{"N":"x"}}"#,
            r#"{"pk":{"S":"a","N":"1"}}"#,
            r#"{"pk":{"B":"!"}}"#,
        ] {
            assert_eq!(RawKeys(bad.into()).key_bytes(&names(&["pk"])), None, "{bad}");
        }
    }
}
