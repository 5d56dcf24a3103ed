//! The cursor refuses what serde_json refuses.

use proptest::prelude::*;
use serde::de::IgnoredAny;

use super::*;

fn skip_all(text: &str) -> Result<(), String> {
    let mut c = Cursor::new(text);
    c.skip()?;
    c.end()
}

fn serde_accepts(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

#[test]
fn syntax_json_refuses_is_refused() {
    for bad in [
        "\"a\u{1}b\"",
        "\"tab\there\"",
        r#""\x""#,
        r#""\u12G4""#,
        r#""\u+123""#,
        r#""open"#,
        "01",
        "1.",
        "-",
        "1e",
        ".5",
        "+1",
        "tru",
        "nul",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "[1 2]",
        "{1:2}",
        "\"a\" \"b\"",
    ] {
        assert!(skip_all(bad).is_err(), "{bad:?}");
        assert!(!serde_accepts(bad), "serde agrees on {bad:?}");
    }
    for good in [
        r#"{"a":[1,-0,0.5,1e9,-2.5E-3,true,false,null,"\u00e9\n\"",{}],"b":[]}"#,
        " \t\r\n[ ] ",
        r#""\ud83d\ude00""#,
    ] {
        assert_eq!(skip_all(good), Ok(()), "{good:?}");
    }
}

#[test]
fn nesting_stops_at_serde_jsons_limit_without_overflowing_the_stack() {
    // serde_json's limit for values it builds; skipping, it has none. DynamoDB nests items 32
    // levels deep at most, so a page past 128 is no DynamoDB page: refused, not a stack overflow.
    let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(skip_all(&nested(128)), Ok(()));
    for n in [129, 100_000] {
        let e = skip_all(&nested(n)).unwrap_err();
        assert!(e.starts_with("nested too deep"), "{e}");
    }
}

#[test]
fn strings_report_their_decoded_length() {
    let mut c = Cursor::new(r#""a\"\u00e9\ud83d\ude00€""#);
    let s = c.string().unwrap();
    assert_eq!(s.len, "a\"é😀€".len());
    assert!(s.escaped);
    assert_eq!(s.decoded().unwrap(), "a\"é😀€");
}

fn jsonish() -> impl Strategy<Value = String> {
    let atoms = vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "u",
        "0",
        "1",
        "9",
        "e",
        "E",
        "-",
        "+",
        ".",
        "true",
        "false",
        "null",
        " ",
        "\n",
        "\u{1}",
        "\t",
        "é",
        "\"a\"",
        "\"\\u00e9\"",
        "\"\\ud800\"",
        "d83d",
        "x",
    ];
    prop::collection::vec(prop::sample::select(atoms), 0..14).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    /// The word-at-a-time search finds what a byte loop finds.
    #[test]
    fn the_word_search_finds_the_first_stop(bytes in prop::collection::vec(
        prop::sample::select(vec![b'a', b' ', b'"', b'\\', 0x00, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0xa2, 0xdc, 0xff]),
        0..40,
    )) {
        let naive = bytes.iter().take(24).position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        prop_assert_eq!(stop_within_24(&bytes), naive);
    }

    /// On any text, the cursor takes a JSON value exactly when serde_json does.
    #[test]
    fn the_cursor_accepts_what_serde_json_accepts(text in jsonish()) {
        prop_assert_eq!(skip_all(&text).is_ok(), serde_accepts(&text), "{:?}", text);
    }
}
