use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue as Av;
use aws_smithy_types::Blob;
use proptest::prelude::*;

use super::*;

fn at<T>(value: T) -> At<T> {
    At {
        value,
        at: "ferry.toml:1:1".into(),
    }
}

fn p(s: &str) -> Path {
    Path::parse(s).unwrap()
}

fn keys() -> Arc<[String]> {
    Arc::from(vec!["pk".to_string(), "sk".to_string()])
}

fn spec(rename: &[(&str, &str)], drop: &[&str], set: &[(&str, Av)], filter: Option<&str>) -> Spec {
    Spec {
        rename: rename.iter().map(|(a, b)| (at(p(a)), p(b))).collect(),
        drop: drop.iter().map(|d| at(p(d))).collect(),
        set: set.iter().map(|(n, v)| (at(p(n)), v.clone())).collect(),
        filter: filter.map(|f| at(Arc::new(Filter::compile(f).unwrap()))),
    }
}

/// One attribute of every type DynamoDB has.
pub(super) fn every_type() -> Item {
    let s = |v: &str| Av::S(v.into());
    Item::from([
        ("pk".to_string(), s("a")),
        ("sk".to_string(), Av::N("1".into())),
        ("s".to_string(), s("text")),
        ("n".to_string(), Av::N("-12.5".into())),
        ("b".to_string(), Av::B(Blob::new(vec![0u8, 1, 255]))),
        ("bool".to_string(), Av::Bool(true)),
        ("null".to_string(), Av::Null(true)),
        ("ss".to_string(), Av::Ss(vec!["x".into(), "y".into()])),
        ("ns".to_string(), Av::Ns(vec!["1".into(), "2.5".into()])),
        (
            "bs".to_string(),
            Av::Bs(vec![Blob::new(vec![1u8]), Blob::new(vec![2u8])]),
        ),
        ("l".to_string(), Av::L(vec![s("x"), Av::N("3".into())])),
        (
            "m".to_string(),
            Av::M(HashMap::from([
                ("inner".to_string(), s("v")),
                ("deep".to_string(), Av::M(HashMap::new())),
            ])),
        ),
    ])
}

#[test]
fn rename_and_drop_carry_every_attribute_type_unchanged() {
    let names = ["s", "n", "b", "bool", "null", "ss", "ns", "bs", "l", "m"];
    let source = every_type();
    for name in names {
        let renamed = format!("new_{name}");
        let t = Transform::new(spec(&[(name, &renamed)], &[], &[], None), keys());
        let out = t.item(source.clone()).unwrap().unwrap();
        assert_eq!(
            out.get(&renamed),
            source.get(name),
            "{name} keeps its value under its new name"
        );
        assert!(!out.contains_key(name));
        assert_eq!(out.len(), source.len());

        let t = Transform::new(spec(&[], &[name], &[], None), keys());
        let out = t.item(source.clone()).unwrap().unwrap();
        let mut want = source.clone();
        want.remove(name);
        assert_eq!(out, want, "dropping {name} removes it alone");
    }
}

#[test]
fn nested_paths_move_between_maps_and_missing_ones_change_nothing() {
    let t = Transform::new(
        spec(
            &[("m.inner", "moved.to.here")],
            &["m.deep", "m.absent", "nope.x"],
            &[],
            None,
        ),
        keys(),
    );
    let out = t.item(every_type()).unwrap().unwrap();
    assert_eq!(out["m"], Av::M(HashMap::new()), "both entries left m");
    assert_eq!(
        out["moved"],
        Av::M(HashMap::from([(
            "to".to_string(),
            Av::M(HashMap::from([("here".to_string(), Av::S("v".into()))]))
        )]))
    );
    let mut no_m = every_type();
    no_m.remove("m");
    let out = t.item(no_m.clone()).unwrap().unwrap();
    assert_eq!(out, no_m, "an item without the paths is unchanged");
}

#[test]
fn renames_swap_at_once_and_a_rename_onto_a_held_attribute_is_refused() {
    let t = Transform::new(spec(&[("s", "n"), ("n", "s")], &[], &[], None), keys());
    let out = t.item(every_type()).unwrap().unwrap();
    assert_eq!((&out["s"], &out["n"]), (&every_type()["n"], &every_type()["s"]));

    let t = Transform::new(spec(&[("s", "n")], &[], &[], None), keys());
    let err = t.item(every_type()).unwrap_err();
    assert!(err.contains("already has n"), "{err}");
    // Dropping the old one first is the way to say it should go.
    let t = Transform::new(spec(&[("s", "n")], &["n"], &[], None), keys());
    assert_eq!(t.item(every_type()).unwrap().unwrap()["n"], Av::S("text".into()));
}

#[test]
fn set_adds_constants_of_every_kind() {
    let values = [Av::S("eu".into()), Av::N("7".into()), Av::Bool(false), Av::Null(true)];
    for v in values {
        let t = Transform::new(spec(&[], &[], &[("origin.region", v.clone())], None), keys());
        let out = t.item(every_type()).unwrap().unwrap();
        assert_eq!(out["origin"], Av::M(HashMap::from([("region".to_string(), v)])));
    }
}

#[test]
fn key_renames_keep_the_key_identity_and_rename_delete_keys() {
    let t = Transform::new(spec(&[("sk", "sort")], &[], &[], None), keys());
    assert_eq!(&*t.dest_keys().to_vec(), ["pk", "sort"]);
    let item = every_type();
    let out = t.item(item.clone()).unwrap().unwrap();
    let src_key = crate::item::KeyBytes::of(&keys(), &item).unwrap();
    assert_eq!(crate::item::KeyBytes::of(t.dest_keys(), &out).unwrap(), src_key);
    let key = crate::item::key_of(&keys(), &item);
    assert_eq!(t.key(key)["sort"], Av::N("1".into()));
}

#[test]
fn the_filter_sees_every_type_and_decides_put_delete_or_skip() {
    let cases = [
        ("item.s == 'text' && item.n < 0.0", true),
        ("item.n == -12.5", true),
        ("item.b == b'\\x00\\x01\\xff'", true),
        ("item.bool && item['null'] == null", true),
        ("'y' in item.ss && 2.5 in item.ns && size(item.bs) == 2", true),
        ("item.l[1] == 3 && item.m.inner == 'v'", true),
        ("item.sk == 1 && item.pk.startsWith('a')", true),
        ("has(item.absent) && item.absent == 1", false),
        ("item.s.matches('^t.*t$') && !has(item.m.nope)", true),
        ("item.ss.exists(x, x == 'z')", false),
    ];
    for (f, want) in cases {
        let t = Transform::new(spec(&[], &[], &[], Some(f)), keys());
        let got = t.put(every_type()).unwrap();
        match (want, got) {
            (true, Shaped::Put(i)) => assert_eq!(i, every_type(), "{f}"),
            (false, Shaped::Delete(k)) => assert_eq!(k, crate::item::key_of(&keys(), &every_type()), "{f}"),
            (want, got) => panic!("{f}: expected match={want}, got {got:?}"),
        }
        let loaded = t.load(every_type()).unwrap();
        assert_eq!(
            loaded == Shaped::Skip,
            !want,
            "{f}: a bulk load skips items outside the filter"
        );
    }
}

#[test]
fn a_filter_reads_only_the_attributes_it_names_unless_it_uses_the_whole_item() {
    let f = Filter::compile("item.a == 1 && has(item.b) && item['c d'] == 'x' && item.l.all(v, v > 0)").unwrap();
    assert_eq!(f.reads().unwrap(), ["a", "b", "c d", "l"]);
    assert_eq!(Filter::compile("item.m.x == 1").unwrap().reads().unwrap(), ["m"]);
    assert_eq!(Filter::compile("size(item) > 2").unwrap().reads(), None);
}

#[test]
fn bad_filters_are_refused_with_a_position() {
    let e = Filter::compile("item.n >").unwrap_err();
    assert_eq!((e[0].line, e[0].col), (1, 9));
    let e = Filter::compile("tenant == 'a'").unwrap_err();
    assert!(e[0].message.contains("unknown name \"tenant\""), "{e:?}");
    for not_bool in ["item.n + 1", "'yes'", "size(item.l)", "true ? 1 : 2"] {
        let e = Filter::compile(not_bool).unwrap_err();
        assert!(e[0].message.contains("must return true or false"), "{not_bool}: {e:?}");
    }
    // Decided only when it runs: the item's problem, reported with its key by the caller.
    let f = Filter::compile("item.n").unwrap();
    let item = every_type();
    assert!(f.matches(&item).unwrap_err().contains("not true or false"));
    let f = Filter::compile("item.missing == 1").unwrap();
    let e = f.matches(&item).unwrap_err();
    assert!(e.contains("reads item.missing, which this item lacks"), "{e}");
    let e = Filter::compile("item.m.nope.deeper == 1")
        .unwrap()
        .matches(&item)
        .unwrap_err();
    assert!(e.contains("reads item.m.nope.deeper, which this item lacks"), "{e}");
    let f = Filter::compile("size(item) > 100 || item['missing'] == 1").unwrap();
    assert!(
        f.matches(&item).unwrap_err().contains("has(item.<name>)"),
        "the whole-item path says so too"
    );
}

#[test]
fn a_deeply_nested_filter_compiles_off_the_callers_stack_or_is_refused() {
    let nested = |n: usize| format!("{}true{}", "(".repeat(n), ")".repeat(n));
    let r = Filter::compile(&nested(90));
    assert!(r.is_ok(), "{:?}", r.err());
    let e = Filter::compile(&nested(300)).unwrap_err();
    assert!(e[0].message.contains("Recursion limit"), "{e:?}");
}

/// One change as a stream, a bulk load or a delete hands it to the apply path.
#[derive(Debug, Clone)]
enum In {
    Put(u8, u8),
    Load(u8, u8),
    Delete(u8),
}

fn source_item(k: u8, v: u8) -> Item {
    Item::from([
        ("pk".to_string(), Av::S(format!("k{k}"))),
        ("sk".to_string(), Av::N("1".into())),
        ("v".to_string(), Av::N(v.to_string())),
        ("secret".to_string(), Av::S("x".into())),
    ])
}

fn op_of(c: &In) -> crate::apply::Op {
    use crate::apply::Op;
    match *c {
        In::Put(k, v) => Op::Put(source_item(k, v)),
        In::Load(k, v) => Op::Load(source_item(k, v)),
        In::Delete(k) => Op::Delete(crate::item::key_of(&keys(), &source_item(k, 0))),
    }
}

proptest! {
    /// Shaping the coalesced changes (what a lane does) gives what coalescing the shaped changes
    /// gives: the last change of each key, shaped. So batching stays correct under a transform.
    #[test]
    fn shaping_commutes_with_coalescing(changes in prop::collection::vec(
        prop_oneof![
            (0u8..6, 0u8..10).prop_map(|(k, v)| In::Put(k, v)),
            (0u8..6, 0u8..10).prop_map(|(k, v)| In::Load(k, v)),
            (0u8..6).prop_map(In::Delete),
        ],
        0..60,
    )) {
        let t = Transform::new(
            spec(&[("sk", "sort"), ("v", "value")], &["secret"], &[("from", Av::S("old".into()))], Some("item.v % 2 == 0")),
            keys(),
        );
        let key_of = |c: &In| {
            let k = match c { In::Put(k, _) | In::Load(k, _) | In::Delete(k) => *k };
            crate::item::KeyBytes::of(&keys(), &source_item(k, 0)).unwrap()
        };
        // Coalesce first, with the lane's own pending set and batching, then shape.
        let mut pending = crate::apply::coalesce::Pending::default();
        for (i, c) in changes.iter().enumerate() {
            pending.push(crate::apply::test_support::change_with_key(key_of(c), op_of(c), i as u64), None);
        }
        let mut lane: Vec<(crate::item::KeyBytes, Shaped)> = Vec::new();
        while !pending.is_empty() {
            for (key, e) in crate::apply::batch::take(&mut pending) {
                lane.push((key, t.shape(e.op).unwrap()));
            }
        }
        // Shape first, then keep each key's last shaped change, in order of first appearance.
        let mut model: Vec<(crate::item::KeyBytes, Shaped)> = Vec::new();
        for c in &changes {
            let shaped = t.shape(op_of(c)).unwrap();
            match model.iter_mut().find(|(k, _)| *k == key_of(c)) {
                Some(slot) => slot.1 = shaped,
                None => model.push((key_of(c), shaped)),
            }
        }
        prop_assert_eq!(&lane, &model);
        // And every shaped write is addressed to its own key under the destination's names.
        for (k, s) in &lane {
            let dest_key = match s {
                Shaped::Put(i) | Shaped::Delete(i) => crate::item::KeyBytes::of(t.dest_keys(), i),
                Shaped::Skip => continue,
            };
            prop_assert_eq!(dest_key.as_ref(), Some(k));
        }
    }
}

fn schema() -> crate::discover::schema::TableSchema {
    serde_json::from_value(serde_json::json!({
        "TableName": "Orders",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "gk", "AttributeType": "S"},
            {"AttributeName": "lk", "AttributeType": "S"}
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [{
            "IndexName": "byG",
            "KeySchema": [{"AttributeName": "gk", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a", "secret"]}
        }],
        "LocalSecondaryIndexes": [{
            "IndexName": "byL",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "lk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}
        }],
        "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "expires"}
    }))
    .unwrap()
}

#[test]
fn the_destination_schema_follows_key_index_and_ttl_renames() {
    let s = spec(
        &[("sk", "sort"), ("gk", "g"), ("a", "alpha"), ("expires", "ttl")],
        &["secret"],
        &[],
        None,
    );
    assert!(check::against_table(&s, &schema(), "Orders").is_empty());
    let d = check::schema(&s, &schema());
    assert_eq!(d.key_signature(), "pk (S, HASH), sort (N, RANGE)");
    assert_eq!(d.global_secondary_indexes[0].key_schema[0].attribute_name, "g");
    assert_eq!(d.global_secondary_indexes[0].projection.non_key_attributes, ["alpha"]);
    assert_eq!(d.local_secondary_indexes[0].key_schema[1].attribute_name, "lk");
    assert_eq!(d.ttl_attribute(), Some("ttl"));
    let defined: Vec<_> = d
        .attribute_definitions
        .iter()
        .map(|a| a.attribute_name.as_str())
        .collect();
    assert_eq!(defined, ["pk", "sort", "g", "lk"]);
    let s = spec(&[], &["a", "secret"], &[], None);
    let d = check::schema(&s, &schema());
    let p = &d.global_secondary_indexes[0].projection;
    assert_eq!(
        (p.projection_type.as_str(), p.non_key_attributes.len()),
        ("KEYS_ONLY", 0),
        "nothing left to include"
    );
}

#[test]
fn transforms_that_break_a_key_or_an_index_are_refused_together() {
    let s = spec(
        &[("sk", "m.sort"), ("x", "pk"), ("pk", "lk"), ("other.y", "gk")],
        &["gk", "lk.z"],
        &[("pk", Av::S("c".into()))],
        None,
    );
    let problems = check::against_table(&s, &schema(), "Orders");
    for want in [
        "cannot drop gk, it is a key of index byG",
        "cannot drop lk.z, it is a key of index byL",
        "sk is a key attribute: it can only be renamed to another top-level name, not m.sort",
        "renaming pk onto lk, an existing key attribute",
        "renaming other.y onto gk, an existing key attribute",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "missing {want:?} in {problems:#?}"
        );
    }
    assert!(
        problems.iter().all(|p| p.starts_with("ferry.toml:1:1: Orders: ")),
        "{problems:#?}"
    );
    // x → pk while pk moves away to lk is fine for pk, but pk lands on lk; and set pk hits the key.
    let s = spec(&[("x", "pk"), ("pk", "id")], &[], &[("id", Av::S("c".into()))], None);
    let problems = check::against_table(&s, &schema(), "Orders");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("cannot set id, it is part of the table's key"));
}
