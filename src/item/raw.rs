//! Items kept as the DynamoDB JSON they arrived in.
//!
//! Why: a stream record's new image is already the JSON that BatchWriteItem takes. Building SDK
//! item maps from it (a string and a hash insert per attribute) and serializing them again was
//! most of the apply path's CPU; an item that no transform touches now goes from the GetRecords
//! page into the request body as the same bytes. Reading it still checks every value and works
//! out its billed size ([`super::sizer`]), so a malformed image is refused where it is read, and
//! write budgets stay exact.

use std::fmt;

use serde::de;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::Item;
use super::cursor::Cursor;
use super::wire::WireItem;

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
    /// Checks `json` as a DynamoDB JSON item: JSON's syntax and DynamoDB's shape, in one walk.
    pub fn from_json(json: Box<str>) -> Result<Image, serde_json::Error> {
        Self::with_keys(json, &[]).map(|(image, _)| image)
    }

    /// [`Image::from_json`], reading the attributes named `keys` out of it on the way (in the
    /// same pass).
    pub fn with_keys(json: Box<str>, keys: &[String]) -> Result<(Image, Item), serde_json::Error> {
        let (size, found) = super::sizer::walk(&json, keys).map_err(de::Error::custom)?;
        Ok((Self::walked(json, size)?, found))
    }

    /// A walked item: raw, or read into a map where the walk found no size (DynamoDB Local's `{}`).
    fn walked(json: Box<str>, size: Option<usize>) -> Result<Image, serde_json::Error> {
        Ok(match size {
            Some(size) => Image::Raw(RawItem { json, size }),
            None => Image::Map(serde_json::from_str::<WireItem>(&json)?.0),
        })
    }

    /// Reads the item at `cursor` (checking JSON's syntax as well as DynamoDB's shape) and keeps
    /// its text as the page spells it.
    pub(crate) fn read(cursor: &mut Cursor<'_>) -> Result<Image, String> {
        cursor.ws();
        let start = cursor.i;
        let size = super::sizer::walk_at(cursor)?;
        Self::walked(cursor.text[start..cursor.i].into(), size).map_err(|e| e.to_string())
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
}
