//! The fast path and the rewritten reads, held to CEL on the expression as written.

use aws_sdk_dynamodb::types::AttributeValue as Av;
use proptest::prelude::*;

use super::Filter;
use super::filter::{ITEM, item_map};
use super::tests::every_type;
use crate::item::Item;

/// Filters over `a` and `b` in the fast path's shapes, and some outside it.
fn filter_source() -> impl Strategy<Value = String> {
    let attr = prop_oneof![
        Just("item.a"),
        Just("item.b"),
        Just("item['a']"),
        Just("item.m.a"),
        Just("item['m'].a")
    ];
    let lit = prop_oneof![
        Just("'x'".to_string()),
        Just("'y'".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        prop_oneof![Just(-3i64), Just(0), Just(2)].prop_map(|i| i.to_string()),
        prop_oneof![Just(-3i64), Just(0), Just(2)].prop_map(|i| i.to_string()),
        prop_oneof![Just(-3i64), Just(0), Just(2)].prop_map(|i| i.to_string()),
        Just("2.5".to_string()),
        Just("null".to_string()),
        Just("3u".to_string()),
    ];
    let op = prop_oneof![Just("=="), Just("!="), Just("<"), Just("<="), Just(">"), Just(">=")];
    let leaf = prop_oneof![
        (attr.clone(), op, lit, any::<bool>()).prop_map(|(a, o, l, flip)| if flip {
            format!("{l} {o} {a}")
        } else {
            format!("{a} {o} {l}")
        }),
        prop_oneof![
            Just("has(item.a)"),
            Just("has(item.b)"),
            Just("has(item.m.a)"),
            Just("true"),
            Just("false")
        ]
        .prop_map(str::to_string),
        attr.clone().prop_map(|a| format!("size(string({a})) > 0")),
        attr.prop_map(str::to_string),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("({x}) && ({y})")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("({x}) || ({y})")),
            inner.prop_map(|x| format!("!({x})")),
        ]
    })
}

fn value() -> impl Strategy<Value = Option<Av>> {
    prop_oneof![
        Just(None),
        prop_oneof![Just("x"), Just("y"), Just("")].prop_map(|s| Some(Av::S(s.into()))),
        prop_oneof![Just("0"), Just("-3"), Just("2")].prop_map(|n| Some(Av::N(n.into()))),
        prop_oneof![Just("0"), Just("-3"), Just("2")].prop_map(|n| Some(Av::N(n.into()))),
        prop_oneof![Just("+2"), Just("2.5"), Just("1E1"), Just("99999999999999999999")]
            .prop_map(|n| Some(Av::N(n.into()))),
        any::<bool>().prop_map(|b| Some(Av::Bool(b))),
        Just(Some(Av::Null(true))),
        Just(Some(Av::L(vec![Av::S("x".into())]))),
    ]
}

/// CEL on `src` as written, over the item bound as a map: what the rewritten reads and the fast
/// path must agree with.
fn as_written(src: &str, item: &Item) -> Result<bool, String> {
    let program = cel::Program::compile(src).map_err(|e| e.to_string())?;
    let mut ctx = cel::Context::default();
    ctx.add_variable_from_value(ITEM, item_map(item));
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        other => Err(format!("{other:?}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]
    /// Wherever the fast path answers, it answers what the interpreter answers.
    #[test]
    fn the_fast_path_agrees_with_the_interpreter(
        src in filter_source(),
        a in value(),
        b in value(),
        m in prop_oneof![
            Just(None),
            Just(Some(Av::S("x".into()))),
            value().prop_map(|v| Some(Av::M(v.map(|v| ("a".to_string(), v)).into_iter().collect()))),
        ],
    ) {
        let f = Filter::compile(&src).unwrap();
        let mut item = Item::from([("pk".to_string(), Av::S("k".into()))]);
        item.extend(a.map(|v| ("a".to_string(), v)));
        item.extend(b.map(|v| ("b".to_string(), v)));
        item.extend(m.map(|v| ("m".to_string(), v)));
        // The reference: CEL on the expression as written, the item bound as a map.
        let reference = as_written(&src, &item);
        if let Some(fast) = f.fast_answer(&item) {
            prop_assert_eq!(Ok(fast), reference.clone(), "fast path: {}", src);
        }
        match (f.interpret(&item), reference) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "rewritten reads: {}", src),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "rewritten reads: {} gave {:?}, as written {:?}", src, a, b),
        }
    }
}

#[test]
fn common_filters_take_the_fast_path() {
    let item = every_type();
    for (f, want) in [
        ("has(item.s) && item.s == 'text'", true),
        ("item.sk >= 0 && has(item.m)", true),
        ("!(item.bool == true) || 3 < item.sk", false),
    ] {
        let f = Filter::compile(f).unwrap();
        assert!(f.is_fast(), "{f:?}");
        assert_eq!(f.fast_answer(&item), Some(want), "{f:?}");
    }
    // Outside what the fast path knows for this item: the interpreter answers.
    assert_eq!(
        Filter::compile("item.n > 0").unwrap().fast_answer(&item),
        None,
        "n is -12.5, not an int"
    );
    for f in ["item.tenant.startsWith('a')", "item.n > 2.5", "size(item) > 1"] {
        assert!(!Filter::compile(f).unwrap().is_fast(), "{f}");
    }
}
