//! Key-by-key comparison, done only where segment digests differ: a merge of two sorted entry
//! lists, then the differing attribute paths of two versions of one item.

use std::collections::HashMap;

use serde_json::Value;

use super::digest::Entry;
use crate::item::{Item, KeyBytes, canonical::canonical};

/// How a key differs between the source and the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// In the source, not in the destination.
    Missing,
    /// In the destination, not in the source.
    Extra,
    /// In both, with different contents.
    Differing,
}

/// Differences found between two sorted entry lists. Missing and extra entries keep their digest:
/// a key can turn up in another segment on the other side (see [`pair_across_segments`]).
#[derive(Debug, Default)]
pub struct Found {
    pub missing: Vec<Entry>,
    pub extra: Vec<Entry>,
    pub differing: Vec<KeyBytes>,
}

/// Merges two lists sorted by key.
pub fn merge(src: &[Entry], dst: &[Entry], out: &mut Found) {
    let (mut i, mut j) = (0, 0);
    loop {
        match (src.get(i), dst.get(j)) {
            (Some(s), Some(d)) if s.key == d.key => {
                if s.digest != d.digest {
                    out.differing.push(s.key.clone());
                }
                i += 1;
                j += 1;
            }
            (Some(s), Some(d)) if s.key < d.key => {
                out.missing.push(s.clone());
                i += 1;
            }
            (Some(s), None) => {
                out.missing.push(s.clone());
                i += 1;
            }
            (_, Some(d)) => {
                out.extra.push(d.clone());
                j += 1;
            }
            (None, None) => return,
        }
    }
}

/// A key "missing" from one segment and "extra" in another is the same item placed in different
/// segments on the two sides (possible if an endpoint assigned segments differently per table):
/// it is compared by digest instead. Keeps the result correct whatever the segment assignment.
pub fn pair_across_segments(found: &mut Found) {
    if found.missing.is_empty() || found.extra.is_empty() {
        return;
    }
    let extra: HashMap<KeyBytes, super::digest::Digest> = found.extra.drain(..).map(|e| (e.key, e.digest)).collect();
    let mut matched = std::collections::HashSet::new();
    let mut missing = Vec::new();
    for m in found.missing.drain(..) {
        match extra.get(&m.key) {
            Some(d) => {
                if *d != m.digest {
                    found.differing.push(m.key.clone());
                }
                matched.insert(m.key);
            }
            None => missing.push(m),
        }
    }
    found.missing = missing;
    found.extra = extra
        .into_iter()
        .filter(|(k, _)| !matched.contains(k))
        .map(|(key, digest)| Entry { key, digest })
        .collect();
    found.extra.sort_unstable();
}

/// Classifies one key from fresh reads of both sides; `None` when they are equal (or both absent).
pub fn classify(src: Option<&Item>, dst: Option<&Item>) -> Option<(Kind, Vec<String>)> {
    match (src, dst) {
        (None, None) => None,
        (Some(_), None) => Some((Kind::Missing, Vec::new())),
        (None, Some(_)) => Some((Kind::Extra, Vec::new())),
        (Some(s), Some(d)) => {
            let paths = attribute_paths(s, d);
            (!paths.is_empty()).then_some((Kind::Differing, paths))
        }
    }
}

/// The attribute paths (`a`, `a.b`, `a[2]`) whose canonical values differ between two items.
pub fn attribute_paths(a: &Item, b: &Item) -> Vec<String> {
    let mut out = Vec::new();
    walk_map("", &canonical(a), &canonical(b), &mut out);
    out
}

fn walk_map(prefix: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let (Some(am), Some(bm)) = (a.as_object(), b.as_object()) else {
        out.push(prefix.to_string());
        return;
    };
    let mut names: Vec<&String> = am.keys().chain(bm.keys()).collect();
    names.sort();
    names.dedup();
    for n in names {
        let path = if prefix.is_empty() {
            n.clone()
        } else {
            format!("{prefix}.{n}")
        };
        match (am.get(n), bm.get(n)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => walk_value(&path, x, y, out),
            _ => out.push(path),
        }
    }
}

/// `a` and `b` are canonical attribute values (`{"M": …}`, `{"L": […]}`, `{"S": …}`, …).
fn walk_value(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a.get("M"), b.get("M"), a.get("L"), b.get("L")) {
        (Some(x), Some(y), _, _) => walk_map(path, x, y, out),
        (_, _, Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                if p != q {
                    walk_value(&format!("{path}[{i}]"), p, q, out);
                }
            }
        }
        _ => out.push(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::digest::item_digest;
    use aws_sdk_dynamodb::types::AttributeValue as A;

    fn item(k: &str, v: &str) -> Item {
        Item::from([("pk".to_string(), A::S(k.into())), ("v".to_string(), A::S(v.into()))])
    }

    fn entries(items: &[Item]) -> Vec<Entry> {
        let names = ["pk".to_string()];
        let mut v: Vec<Entry> = items
            .iter()
            .map(|i| Entry {
                key: KeyBytes::of(&names, i).unwrap(),
                digest: item_digest(i),
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn merge_finds_missing_extra_and_differing_and_pairs_across_segments() {
        let src = entries(&[item("a", "1"), item("b", "1"), item("c", "1"), item("e", "1")]);
        let dst = entries(&[item("a", "1"), item("c", "2"), item("d", "1")]);
        let mut f = Found::default();
        merge(&src, &dst, &mut f);
        // "e" sits in another segment on the destination side, with the same content.
        merge(&[], &entries(&[item("e", "1")]), &mut f);
        pair_across_segments(&mut f);
        let names = ["pk".to_string()];
        let k = |e: &KeyBytes| e.to_item(&names).unwrap()["pk"].as_s().unwrap().clone();
        assert_eq!(f.missing.iter().map(|e| k(&e.key)).collect::<Vec<_>>(), ["b"]);
        assert_eq!(f.extra.iter().map(|e| k(&e.key)).collect::<Vec<_>>(), ["d"]);
        assert_eq!(f.differing.iter().map(k).collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn attribute_paths_name_nested_differences() {
        let mut a = item("a", "1");
        a.insert(
            "m".into(),
            A::M(Item::from([
                ("x".to_string(), A::N("1".into())),
                ("l".to_string(), A::L(vec![A::S("p".into()), A::S("q".into())])),
            ])),
        );
        a.insert("ss".into(), A::Ss(vec!["x".into(), "y".into()]));
        let mut b = a.clone();
        assert!(attribute_paths(&a, &b).is_empty());
        b.insert("ss".into(), A::Ss(vec!["y".into(), "x".into()]));
        assert!(attribute_paths(&a, &b).is_empty(), "set order is ignored");
        b.insert(
            "m".into(),
            A::M(Item::from([
                ("x".to_string(), A::N("1.0".into())),
                ("l".to_string(), A::L(vec![A::S("p".into()), A::S("Q".into())])),
            ])),
        );
        b.insert("new".into(), A::Bool(true));
        b.insert("v".into(), A::N("1".into()));
        assert_eq!(attribute_paths(&a, &b), ["m.l[1]", "new", "v"]);
        assert_eq!(classify(Some(&a), None).unwrap().0, Kind::Missing);
        assert_eq!(classify(None, Some(&a)).unwrap().0, Kind::Extra);
        assert!(classify(Some(&a), Some(&a.clone())).is_none());
    }
}
