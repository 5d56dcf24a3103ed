//! A canonical form of items for comparison: set order ignored, numbers compared as DynamoDB
//! numbers, binary as bytes (base64 of the bytes), maps with sorted keys.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

use super::{Item, json::to_json, number};

pub fn canonical(item: &Item) -> Value {
    let mut keys: Vec<&String> = item.keys().collect();
    keys.sort();
    Value::Object(keys.into_iter().map(|k| (k.clone(), canon(&item[k]))).collect())
}

fn canon(v: &AttributeValue) -> Value {
    let num = |n: &String| number::normalize(n).unwrap_or_else(|| n.clone());
    match v {
        AttributeValue::N(n) => json!({ "N": num(n) }),
        AttributeValue::Ss(s) => json!({ "SS": sorted(s.iter().cloned()) }),
        AttributeValue::Ns(s) => json!({ "NS": sorted(s.iter().map(num)) }),
        AttributeValue::Bs(_) => {
            let mut v = to_json(v);
            if let Some(arr) = v.get_mut("BS").and_then(Value::as_array_mut) {
                arr.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            v
        }
        AttributeValue::L(l) => json!({ "L": l.iter().map(canon).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": canonical(m) }),
        other => to_json(other),
    }
}

fn sorted(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = it.collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_order_and_number_spelling_do_not_matter_values_do() {
        let a = Item::from([
            ("ss".to_string(), AttributeValue::Ss(vec!["b".into(), "a".into()])),
            ("n".to_string(), AttributeValue::N("1.50".into())),
            (
                "m".to_string(),
                AttributeValue::M(Item::from([(
                    "ns".to_string(),
                    AttributeValue::Ns(vec!["2".into(), "10".into()]),
                )])),
            ),
        ]);
        let b = Item::from([
            ("n".to_string(), AttributeValue::N("1.5".into())),
            ("ss".to_string(), AttributeValue::Ss(vec!["a".into(), "b".into()])),
            (
                "m".to_string(),
                AttributeValue::M(Item::from([(
                    "ns".to_string(),
                    AttributeValue::Ns(vec!["1E1".into(), "2".into()]),
                )])),
            ),
        ]);
        assert_eq!(canonical(&a), canonical(&b));
        let mut c = b.clone();
        c.insert("n".into(), AttributeValue::N("1.51".into()));
        assert_ne!(canonical(&a), canonical(&c));
        let mut d = b.clone();
        d.insert("l".into(), AttributeValue::L(vec![AttributeValue::S("x".into())]));
        assert_ne!(canonical(&a), canonical(&d));
    }
}
