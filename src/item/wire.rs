//! DynamoDB JSON on the hot path: read straight into the SDK's `AttributeValue`s in one pass (no
//! `serde_json::Value` in between), and written straight into a request body.
//!
//! [`super::json`] is the general, slower form (sorted output, errors naming the attribute path)
//! for files and messages; this one serves GetRecords pages, SQS changes and BatchWriteItem.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue as Av;
use aws_smithy_types::Blob;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};

use super::Item;

/// A DynamoDB JSON item, built directly as DynamoDB SDK values.
pub(crate) struct WireItem(pub Item);
pub(crate) struct WireValue(pub Av);
struct WireBlob(Blob);

impl<'de> Deserialize<'de> for WireItem {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB item")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<WireItem, A::Error> {
                let mut item = HashMap::with_capacity(m.size_hint().unwrap_or(8));
                while let Some(k) = m.next_key::<String>()? {
                    let v: WireValue = m.next_value()?;
                    item.insert(k, v.0);
                }
                Ok(WireItem(item))
            }
        }
        d.deserialize_map(V)
    }
}

/// The type descriptors of DynamoDB JSON.
#[derive(Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub(crate) enum Tag {
    S,
    N,
    B,
    BOOL,
    NULL,
    SS,
    NS,
    BS,
    L,
    M,
}

impl<'de> Deserialize<'de> for WireValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB attribute value like {\"S\": \"x\"}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<WireValue, A::Error> {
                // DynamoDB Local 3.x writes an empty map in a stream image as `{}`, without its
                // "M" (Scan returns `{"M":{}}`). No other value can be an empty object.
                let Some(tag) = m.next_key::<Tag>()? else {
                    return Ok(WireValue(Av::M(HashMap::new())));
                };
                let v = match tag {
                    Tag::S => Av::S(m.next_value()?),
                    Tag::N => Av::N(m.next_value()?),
                    Tag::B => Av::B(m.next_value::<WireBlob>()?.0),
                    Tag::BOOL => Av::Bool(m.next_value()?),
                    Tag::NULL => Av::Null(m.next_value()?),
                    Tag::SS => Av::Ss(m.next_value()?),
                    Tag::NS => Av::Ns(m.next_value()?),
                    Tag::BS => Av::Bs(m.next_value::<Vec<WireBlob>>()?.into_iter().map(|b| b.0).collect()),
                    Tag::L => Av::L(m.next_value::<Vec<WireValue>>()?.into_iter().map(|v| v.0).collect()),
                    Tag::M => Av::M(m.next_value::<WireItem>()?.0),
                };
                if m.next_key::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("an attribute value with two type descriptors"));
                }
                Ok(WireValue(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for WireBlob {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WireBlob;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("base64 binary")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<WireBlob, E> {
                STANDARD.decode(s).map(|b| WireBlob(Blob::new(b))).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// Appends `item` as DynamoDB JSON (attributes in the map's order).
pub fn write_item(out: &mut Vec<u8>, item: &Item) {
    out.push(b'{');
    for (i, (name, v)) in item.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

/// Appends `s` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

fn write_value(out: &mut Vec<u8>, v: &Av) {
    let tag = match v {
        Av::S(_) => "S",
        Av::N(_) => "N",
        Av::B(_) => "B",
        Av::Bool(_) => "BOOL",
        Av::Ss(_) => "SS",
        Av::Ns(_) => "NS",
        Av::Bs(_) => "BS",
        Av::L(_) => "L",
        Av::M(_) => "M",
        // NULL, and any type a newer SDK adds (ferry's readers never produce one).
        _ => "NULL",
    };
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(b"\":");
    match v {
        Av::S(s) | Av::N(s) => write_str(out, s),
        Av::B(b) => write_blob(out, b),
        Av::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Av::Ss(v) | Av::Ns(v) => write_list(out, v, |o, s| write_str(o, s)),
        Av::Bs(v) => write_list(out, v, write_blob),
        Av::L(v) => write_list(out, v, write_value),
        Av::M(m) => write_item(out, m),
        _ => out.extend_from_slice(b"true"), // NULL
    }
    out.push(b'}');
}

fn write_blob(out: &mut Vec<u8>, b: &Blob) {
    write_str(out, &STANDARD.encode(b.as_ref()));
}

fn write_list<T>(out: &mut Vec<u8>, items: &[T], each: impl Fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, x);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_as_the_same_item() {
        let text = r#"{"s":{"S":"x \"q\" \u00e9\n"},"n":{"N":"-1.5E3"},"b":{"B":"AAEC"},"t":{"BOOL":true},
            "f":{"BOOL":false},"z":{"NULL":true},"ss":{"SS":["a","b"]},"ns":{"NS":["1","2"]},
            "bs":{"BS":["AA=="]},"l":{"L":[{"S":"a"},{"M":{"k":{"N":"1"}}}]},"m":{"M":{"inner":{"L":[]}}},
            "e":{"M":{}}}"#;
        let item = serde_json::from_str::<WireItem>(text).unwrap().0;
        let mut out = Vec::new();
        write_item(&mut out, &item);
        let back = serde_json::from_slice::<WireItem>(&out).unwrap().0;
        assert_eq!(back, item);
        assert_eq!(item.len(), 12);
        assert_eq!(item["s"], Av::S("x \"q\" é\n".into()));
        let general: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(super::super::json::item_from_json(&general).unwrap(), item);
    }

    #[test]
    fn dynamodb_locals_empty_map_spelling_reads_as_an_empty_map() {
        let item = serde_json::from_str::<WireItem>(r#"{"m":{}}"#).unwrap().0;
        assert_eq!(item["m"], Av::M(HashMap::new()));
        assert!(serde_json::from_str::<WireItem>(r#"{"m":{"S":"a","N":"1"}}"#).is_err());
    }
}
