//! Items kept as the DynamoDB JSON they arrived in.
//!
//! Why: a stream record's new image is already the JSON that BatchWriteItem takes. Building SDK
//! item maps from it (a string and a hash insert per attribute) and serializing them again was
//! most of the apply path's CPU; an item that no transform touches now goes from the GetRecords
//! page into the request body as the same bytes. Reading it still checks every value and works
//! out its billed size, so a malformed image is refused where it is read, and write budgets stay
//! exact.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::wire::{Tag, WireItem, WireValue};
use super::{Item, number_size};

/// A checked DynamoDB JSON item and its size as DynamoDB bills it.
#[derive(Clone, PartialEq)]
pub struct RawItem {
    json: Box<str>,
    size: usize,
}

/// A new image: raw when its bytes can go to DynamoDB as they are, else a map.
#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    Raw(RawItem),
    /// Images holding DynamoDB Local's `{}` spelling of an empty map, which no write accepts.
    Map(Item),
}

impl RawItem {
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Names plus values, as [`super::size_of`] counts a map.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The item as SDK values (for a transform, a message, a test).
    pub fn to_item(&self) -> Item {
        serde_json::from_str::<WireItem>(&self.json)
            .expect("checked when read")
            .0
    }

    /// The raw form of a map item (tests feed raw ops built from maps).
    #[cfg(test)]
    pub fn of(item: &Item) -> RawItem {
        let mut out = Vec::new();
        super::wire::write_item(&mut out, item);
        let json = String::from_utf8(out).expect("JSON is UTF-8");
        RawItem {
            json: json.into(),
            size: super::size_of(item),
        }
    }
}

impl fmt::Debug for RawItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawItem({})", self.json)
    }
}

impl Image {
    /// Checks `json` as a DynamoDB JSON item.
    pub fn from_json(json: Box<str>) -> Result<Image, serde_json::Error> {
        Self::with_keys(json, &[]).map(|(image, _)| image)
    }

    /// Checks `json` as a DynamoDB JSON item, and reads the attributes named `keys` out of it on
    /// the way (in the same pass).
    pub fn with_keys(json: Box<str>, keys: &[String]) -> Result<(Image, Item), serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(&json);
        let (size, _, found) = Top { keys }.deserialize(&mut de)?;
        de.end()?;
        let image = match size {
            Some(size) => Image::Raw(RawItem { json, size }),
            None => Image::Map(serde_json::from_str::<WireItem>(&json)?.0),
        };
        Ok((image, found))
    }

    #[cfg(test)]
    pub fn into_item(self) -> Item {
        match self {
            Image::Raw(r) => r.to_item(),
            Image::Map(i) => i,
        }
    }
}

impl<'de> Deserialize<'de> for Image {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Image::from_json(raw.into()).map_err(de::Error::custom)
    }
}

/// What a part of an item adds to its billed size: `None` once a `{}` value was seen.
trait Billed: for<'de> Deserialize<'de> {
    fn size(&self) -> Option<usize>;
}

/// A number's stored size.
struct Num(usize);
/// A base64 binary's decoded length.
struct Bin(usize);
/// An attribute value's size.
struct Value(Option<usize>);
/// An attribute map: names plus values, and how many entries (an M costs a byte per entry).
struct MapSize(Option<usize>, usize);
/// A list or set: the sum of its entries, and how many (an L costs a byte per entry).
struct Seq<T>(Option<usize>, usize, PhantomData<T>);

macro_rules! str_sized {
    ($t:ident, $what:literal, |$s:ident| $size:expr) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, $s: &str) -> Result<$t, E> {
                        $size.map($t).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
        impl Billed for $t {
            fn size(&self) -> Option<usize> {
                Some(self.0)
            }
        }
    };
}

str_sized!(Num, "a number as a string", |s| Ok::<_, &str>(number_size(s)));
str_sized!(Bin, "base64 binary", |s| STANDARD.decode(s).map(|b| b.len()));

/// A string value's UTF-8 length. Read as bytes: serde_json then finds the string's end with a
/// SIMD search instead of checking it byte by byte for control characters (values are most of an
/// item's bytes; the text is a `str`, so UTF-8, and capturing it as a raw value already refused
/// control characters). Escapes are decoded as usual.
struct Text(usize);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Text, E> {
                Ok(Text(b.len()))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
                Ok(Text(s.len()))
            }
        }
        d.deserialize_bytes(V)
    }
}

impl Billed for Text {
    fn size(&self) -> Option<usize> {
        Some(self.0)
    }
}
impl Billed for Value {
    fn size(&self) -> Option<usize> {
        self.0
    }
}
impl<T: Billed> Billed for Seq<T> {
    fn size(&self) -> Option<usize> {
        self.0
    }
}

impl<'de> Deserialize<'de> for MapSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Top { keys: &[] }.deserialize(d).map(|(size, n, _)| MapSize(size, n))
    }
}

/// Walks an attribute map: its size, its number of entries, and the attributes named `keys`.
struct Top<'k> {
    keys: &'k [String],
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = (Option<usize>, usize, Item);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = (Option<usize>, usize, Item);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a DynamoDB item")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let (mut size, mut n, mut found) = (Some(0), 0, Item::new());
        while let Some(Name(name)) = m.next_key()? {
            let v = if self.keys.iter().any(|k| *k == name) {
                let v = m.next_value::<WireValue>()?.0;
                let bytes = super::value_size(&v);
                found.insert(name.to_string(), v);
                Some(bytes)
            } else {
                m.next_value::<Value>()?.0
            };
            size = size.zip(v).map(|(s, v)| s + name.len() + v);
            n += 1;
        }
        Ok((size, n, found))
    }
}

/// An attribute name (or any string), borrowed from the text unless it holds escapes.
pub(super) struct Name<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an attribute name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de, T: Billed> Deserialize<'de> for Seq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Billed> Visitor<'de> for V<T> {
            type Value = Seq<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Seq<T>, A::Error> {
                let (mut size, mut n) = (Some(0), 0);
                while let Some(v) = s.next_element::<T>()? {
                    size = size.zip(v.size()).map(|(s, v)| s + v);
                    n += 1;
                }
                Ok(Seq(size, n, PhantomData))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB attribute value like {\"S\": \"x\"}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Value, A::Error> {
                // DynamoDB Local's `{}` for an empty map: readable, but not writable as it is.
                let Some(tag) = m.next_key::<Tag>()? else {
                    return Ok(Value(None));
                };
                let one = |n: Option<usize>, per: usize, len: usize| n.map(|n| 3 + n + per * len);
                let size = match tag {
                    Tag::S => Some(m.next_value::<Text>()?.0),
                    Tag::N => Some(m.next_value::<Num>()?.0),
                    Tag::B => Some(m.next_value::<Bin>()?.0),
                    Tag::BOOL | Tag::NULL => m.next_value::<bool>().map(|_| Some(1))?,
                    Tag::SS => m.next_value::<Seq<Text>>()?.0,
                    Tag::NS => m.next_value::<Seq<Num>>()?.0,
                    Tag::BS => m.next_value::<Seq<Bin>>()?.0,
                    Tag::L => m.next_value::<Seq<Value>>().map(|Seq(s, n, _)| one(s, 1, n))?,
                    // Per entry: a byte, plus the name (counted by MapSize).
                    Tag::M => m.next_value::<MapSize>().map(|MapSize(s, n)| one(s, 1, n))?,
                };
                if m.next_key::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("an attribute value with two type descriptors"));
                }
                Ok(Value(size))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::size_of;

    const EVERY_TYPE: &str = r#"{"s":{"S":"x \"q\" \u00e9"},"n":{"N":"-1.5E3"},"b":{"B":"AAEC"},
        "t":{"BOOL":true},"z":{"NULL":true},"ss":{"SS":["a","bc"]},"ns":{"NS":["1","22"]},
        "bs":{"BS":["AA==","AAEC"]},"l":{"L":[{"S":"a"},{"M":{"k":{"N":"1"}}}]},
        "m":{"M":{"inner":{"L":[]},"e":{"M":{}}}}}"#;

    #[test]
    fn an_image_keeps_its_bytes_and_is_billed_as_its_map_would_be() {
        let Image::Raw(raw) = Image::from_json(EVERY_TYPE.into()).unwrap() else {
            panic!("raw")
        };
        assert_eq!(raw.json(), EVERY_TYPE);
        let item = raw.to_item();
        assert_eq!(item.len(), 10);
        assert_eq!(raw.size(), size_of(&item));
        assert_eq!(RawItem::of(&item).to_item(), item);
        assert_eq!(RawItem::of(&item).size(), raw.size());
    }

    #[test]
    fn dynamodb_locals_empty_map_makes_an_image_a_map() {
        let image = Image::from_json(r#"{"pk":{"S":"a"},"m":{"M":{"x":{}}}}"#.into()).unwrap();
        let Image::Map(item) = image else { panic!("a map") };
        let inner = item["m"].as_m().unwrap();
        assert_eq!(inner["x"].as_m().unwrap().len(), 0);
    }

    #[test]
    fn malformed_images_are_refused() {
        for bad in [
            r#"{"a":{"S":1}}"#,
            r#"{"a":{"Q":"1"}}"#,
            r#"{"a":{"S":"x","N":"1"}}"#,
            r#"{"a":{"B":"not base64!"}}"#,
            r#"{"a":{"L":{}}}"#,
            r#"["a"]"#,
        ] {
            assert!(Image::from_json(bad.into()).is_err(), "{bad}");
        }
    }
}
