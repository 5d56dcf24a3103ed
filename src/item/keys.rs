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
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::cursor::Cursor;
use super::raw::Name;
use super::wire::Tag;
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
        let mut de = serde_json::Deserializer::from_str(&self.0);
        let parts = Parts(key_names).deserialize(&mut de).ok()??;
        let mut out = Vec::with_capacity(32);
        for (tag, bytes) in parts {
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
type Part<'de> = (u8, Cow<'de, [u8]>);

/// Reads the attributes named by its names, in their order; `None` if one is missing or no key type.
struct Parts<'k>(&'k [String]);

impl<'de> DeserializeSeed<'de> for Parts<'_> {
    type Value = Option<Vec<Part<'de>>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Parts<'_> {
    type Value = Option<Vec<Part<'de>>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a DynamoDB item")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut found: Vec<Option<Part<'de>>> = vec![None; self.0.len()];
        while let Some(Name(name)) = m.next_key()? {
            match self.0.iter().position(|k| *k == name) {
                Some(i) => found[i] = m.next_value::<KeyValue>()?.0,
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found.into_iter().collect())
    }
}

/// A key attribute's value; `None` for a type no key has.
struct KeyValue<'de>(Option<Part<'de>>);

impl<'de> Deserialize<'de> for KeyValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB attribute value like {\"S\": \"x\"}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<KeyValue<'de>, A::Error> {
                let Some(tag) = m.next_key::<Tag>()? else {
                    return Ok(KeyValue(None));
                };
                let part = match tag {
                    Tag::S => Some((b'S', cow_bytes(m.next_value::<Name>()?.0))),
                    Tag::N => {
                        let n = m.next_value::<Name>()?.0;
                        let n = number::normalize(&n).ok_or_else(|| de::Error::custom("not a number"))?;
                        Some((b'N', Cow::Owned(n.into_bytes())))
                    }
                    Tag::B => {
                        let b = m.next_value::<Name>()?.0;
                        Some((
                            b'B',
                            Cow::Owned(STANDARD.decode(b.as_bytes()).map_err(de::Error::custom)?),
                        ))
                    }
                    _ => {
                        m.next_value::<IgnoredAny>()?;
                        None
                    }
                };
                if m.next_key::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("an attribute value with two type descriptors"));
                }
                Ok(KeyValue(part))
            }
        }
        d.deserialize_map(V)
    }
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
