//! DynamoDB JSON (`{"S":"x"}`, `{"N":"1"}`, `{"B":"<base64>"}`...), the form of S3 exports, of
//! ferry's persisted scan positions, and of keys in messages.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::Blob;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::Item;

pub fn item_to_json(item: &Item) -> Value {
    let mut keys: Vec<&String> = item.keys().collect();
    keys.sort();
    Value::Object(keys.into_iter().map(|k| (k.clone(), to_json(&item[k]))).collect())
}

pub fn to_json(v: &AttributeValue) -> Value {
    let b64 = |b: &Blob| Value::String(STANDARD.encode(b.as_ref()));
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(b) => json!({ "NULL": b }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::Bs(v) => json!({ "BS": v.iter().map(b64).collect::<Vec<_>>() }),
        AttributeValue::L(v) => json!({ "L": v.iter().map(to_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            json!({ "M": Map::from_iter(keys.into_iter().map(|k| (k.clone(), to_json(&m[k])))) })
        }
        _ => json!({ "NULL": true }),
    }
}

/// Parses a DynamoDB JSON item. Errors name the attribute path and what was wrong.
pub fn item_from_json(v: &Value) -> Result<Item, String> {
    let obj = v.as_object().ok_or("an item must be a JSON object")?;
    obj.iter()
        .map(|(k, v)| from_json(v).map(|av| (k.clone(), av)).map_err(|e| format!("{k}: {e}")))
        .collect()
}

pub fn from_json(v: &Value) -> Result<AttributeValue, String> {
    let mut entries = v.as_object().into_iter().flatten();
    let (t, x) = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry,
        _ => return Err("expected an object with one type descriptor".into()),
    };
    let s = |x: &Value| {
        x.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{t} needs a string"))
    };
    let arr = |x: &Value| x.as_array().cloned().ok_or_else(|| format!("{t} needs an array"));
    let blob = |x: &Value| -> Result<Blob, String> {
        let s = x.as_str().ok_or_else(|| format!("{t} needs a base64 string"))?;
        STANDARD
            .decode(s)
            .map(Blob::new)
            .map_err(|e| format!("{t}: bad base64: {e}"))
    };
    Ok(match t.as_str() {
        "S" => AttributeValue::S(s(x)?),
        "N" => AttributeValue::N(s(x)?),
        "B" => AttributeValue::B(blob(x)?),
        "BOOL" => AttributeValue::Bool(x.as_bool().ok_or("BOOL needs true or false")?),
        "NULL" => AttributeValue::Null(x.as_bool().ok_or("NULL needs true")?),
        "SS" => AttributeValue::Ss(arr(x)?.iter().map(s).collect::<Result<_, _>>()?),
        "NS" => AttributeValue::Ns(arr(x)?.iter().map(s).collect::<Result<_, _>>()?),
        "BS" => AttributeValue::Bs(arr(x)?.iter().map(blob).collect::<Result<_, _>>()?),
        "L" => AttributeValue::L(
            arr(x)?
                .iter()
                .enumerate()
                .map(|(i, v)| from_json(v).map_err(|e| format!("[{i}]: {e}")))
                .collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(item_from_json(x)?),
        other => return Err(format!("unknown type descriptor {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        let text = r#"{"s":{"S":"x"},"n":{"N":"-1.5E3"},"b":{"B":"AAEC"},"t":{"BOOL":true},"z":{"NULL":true},
            "ss":{"SS":["a","b"]},"ns":{"NS":["1","2"]},"bs":{"BS":["AA=="]},
            "l":{"L":[{"S":"a"},{"M":{"k":{"N":"1"}}}]},"m":{"M":{"inner":{"L":[]}}}}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let item = item_from_json(&v).unwrap();
        assert_eq!(item_to_json(&item), v);
    }

    #[test]
    fn errors_name_the_path() {
        let v: Value = serde_json::from_str(r#"{"a":{"M":{"b":{"L":[{"Q":"1"}]}}}}"#).unwrap();
        assert_eq!(
            item_from_json(&v).unwrap_err(),
            r#"a: b: [0]: unknown type descriptor "Q""#
        );
    }
}
