//! The one-pass reader against the serde reader it replaces on the hot path: the same records
//! from the same pages, the same pages refused.

use proptest::prelude::*;

use super::super::wire::parse_as;
use super::*;

fn serde(text: &str) -> Result<(Vec<RawRecord>, Option<String>), String> {
    parse_as::<Image>(text)
}

/// A string of awkward characters, as JSON.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a",
            "Z",
            " ",
            "\\\"",
            "\\\\",
            "/",
            "\\n",
            "\\u0001",
            "é",
            "\\u00e9",
            "😀",
            "\\ud83d\\ude00",
        ]),
        0..6,
    )
    .prop_map(|c| format!("\"{}\"", c.concat()))
}

/// One attribute value as DynamoDB JSON, DynamoDB Local's `{}` among them.
fn value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        text().prop_map(|s| format!(r#"{{"S":{s}}}"#)),
        (any::<i32>(), 0u8..3).prop_map(|(n, e)| format!(r#"{{"N":"{n}E{e}"}}"#)),
        Just(r#"{"B":"AAEC"}"#.to_string()),
        any::<bool>().prop_map(|b| format!(r#"{{"BOOL":{b}}}"#)),
        Just(r#"{"NULL":true}"#.to_string()),
        prop::collection::btree_set(text(), 1..3)
            .prop_map(|s| format!(r#"{{"SS":[{}]}}"#, s.into_iter().collect::<Vec<_>>().join(","))),
        Just("{}".to_string()),
    ];
    scalar.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| format!(r#"{{"L":[{}]}}"#, v.join(","))),
            prop::collection::vec((text(), inner), 0..3).prop_map(|v| format!(r#"{{"M":{}}}"#, map(v))),
        ]
    })
}

fn map(entries: Vec<(String, String)>) -> String {
    let body: Vec<String> = entries.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{{{}}}", body.join(","))
}

fn item() -> impl Strategy<Value = String> {
    (text(), prop::collection::vec((text(), value()), 0..4)).prop_map(|(pk, rest)| {
        map([(r#""pk""#.to_string(), format!(r#"{{"S":{pk}}}"#))]
            .into_iter()
            .chain(rest)
            .collect())
    })
}

/// Optional fields of a record's sections: absent, `null`, or the value.
fn field(name: &'static str, v: impl Strategy<Value = String>) -> impl Strategy<Value = Option<(String, String)>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some((format!("\"{name}\""), "null".to_string()))),
        6 => v.prop_map(move |v| Some((format!("\"{name}\""), v))),
    ]
}

/// The entries, in a shuffled order, as a JSON object.
fn object(fields: Vec<Option<(String, String)>>) -> impl Strategy<Value = String> {
    Just(fields.into_iter().flatten().collect::<Vec<_>>())
        .prop_shuffle()
        .prop_map(map)
}

fn record() -> impl Strategy<Value = String> {
    let time = prop_oneof![
        Just("1.7634E9".to_string()),
        Just("1763740801".to_string()),
        Just("1763740801.123".to_string())
    ];
    let section = (
        field("ApproximateCreationDateTime", time),
        field("Keys", item()),
        field("NewImage", item()),
        field("OldImage", item()),
        field("SequenceNumber", (0u32..1000).prop_map(|n| format!("\"{n:021}\""))),
        field("SizeBytes", Just("12".to_string())),
        field("StreamViewType", Just("\"NEW_AND_OLD_IMAGES\"".to_string())),
    )
        .prop_flat_map(|(a, b, c, d, e, f, g)| object(vec![a, b, c, d, e, f, g]));
    let event = prop::sample::select(vec![
        "\"INSERT\"",
        "\"MODIFY\"",
        "\"REMOVE\"",
        "\"TTL\"",
        "\"\\u0049NSERT\"",
    ]);
    (
        field("eventName", event.prop_map(str::to_string)),
        field("dynamodb", section),
        field("eventID", Just("\"1\"".to_string())),
        field(
            "userIdentity",
            Just(r#"{"type":"Service","principalId":"dynamodb.amazonaws.com"}"#.to_string()),
        ),
    )
        .prop_flat_map(|(a, b, c, d)| object(vec![a, b, c, d]))
}

fn page() -> impl Strategy<Value = String> {
    let records = prop::collection::vec(record(), 0..4).prop_map(|r| format!("[{}]", r.join(",")));
    let next = prop_oneof![Just("\"it-2\"".to_string()), Just("null".to_string())];
    (
        field("Records", records),
        field("NextShardIterator", next),
        any::<bool>(),
    )
        .prop_flat_map(|(r, n, pretty)| {
            object(vec![r, n]).prop_map(move |page| match pretty {
                true => {
                    serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&page).unwrap_or_default())
                        .map_or(page, |p| if p == "null" { String::new() } else { p })
                }
                false => page,
            })
        })
}

/// `page` with one of its bytes deleted, replaced or followed by a character JSON cares about.
fn mutated() -> impl Strategy<Value = String> {
    let chars = vec![
        "", "{", "}", "[", "]", ",", ":", "\"", "\\", "\u{1}", " ", "n", "0", "-", "x",
    ];
    (
        page(),
        any::<prop::sample::Index>(),
        prop::sample::select(chars),
        any::<bool>(),
    )
        .prop_map(|(page, at, c, replace)| {
            let cuts: Vec<usize> = page.char_indices().map(|(i, _)| i).collect();
            if cuts.is_empty() {
                return c.to_string();
            }
            let i = cuts[at.index(cuts.len())];
            let next = page[i..].chars().next().map_or(0, char::len_utf8);
            let rest = if replace { &page[i + next..] } else { &page[i..] };
            format!("{}{c}{rest}", &page[..i])
        })
}

/// Both readers refuse `page`, or both read the same records from it.
fn agree(page: &str) -> Result<(), TestCaseError> {
    let (ours, theirs) = (parse(page), serde(page));
    prop_assert_eq!(
        ours.is_ok(),
        theirs.is_ok(),
        "{}\nours {:?}\nserde {:?}",
        page,
        ours,
        theirs
    );
    if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
        prop_assert_eq!(ours, theirs, "{}", page);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// On pages as DynamoDB sends them (any field order, absent and null fields, escapes, pretty
    /// or compact), the one-pass reader reads what serde reads.
    #[test]
    fn a_page_reads_as_serde_reads_it(page in page()) {
        agree(&page)?;
    }

    /// A damaged page is refused by both readers or read the same by both.
    #[test]
    fn a_damaged_page_is_refused_as_serde_refuses_it(page in mutated()) {
        agree(&page)?;
    }
}

#[test]
fn errors_say_where() {
    let e = parse(r#"{"Records":[{"eventName":"INSERT","dynamodb":{"NewImage":{"a":{"Q":"1"}}}}]}"#).unwrap_err();
    assert!(e.contains("unknown type descriptor \"Q\" at byte"), "{e}");
    let e = parse(r#"{"Records":[],"Records":[]}"#).unwrap_err();
    assert!(e.contains("duplicate field `Records`"), "{e}");
    let e = parse(r#"{"Records":[{"eventName":"INSERT"}]}"#).unwrap_err();
    assert!(e.contains("without its dynamodb section"), "{e}");
}
