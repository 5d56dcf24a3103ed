//! `[table.transform]`: what it reads, and every mistake reported at once with its place.

use super::*;
use crate::transform::Path as AttrPath;
use aws_sdk_dynamodb::types::AttributeValue;

fn parse(text: &str) -> Result<Config> {
    Config::parse(std::path::Path::new("conf/ferry.toml"), text)
}

const HEAD: &str = "[source]\nregion = \"us-east-1\"\n[destination]\nregion = \"eu-west-1\"\n";

#[test]
fn reads_renames_drops_sets_and_a_filter() {
    let text = format!(
        r#"{HEAD}[[table]]
source = "Orders"
[table.transform]
rename = {{ sk = "sort_key", "profile.email" = "profile.mail", deep.a = "b" }}
drop = ["ssn", "profile.`phone.home`"]
set = {{ migrated_from = "orders-eu", version = 2, live = true, ratio = 0.5 }}
filter = 'item.tenant == "acme" && has(item.active)'
"#
    );
    let c = parse(&text).unwrap();
    let t = &c.tables[0].transform;
    let renames: Vec<_> = t
        .rename
        .iter()
        .map(|(f, to)| (f.value.to_string(), to.to_string()))
        .collect();
    assert_eq!(
        renames,
        [("deep.a", "b"), ("profile.email", "profile.mail"), ("sk", "sort_key")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(t.rename[2].0.at, "conf/ferry.toml:8:12");
    assert_eq!(t.drop[1].value, AttrPath::parse("profile.`phone.home`").unwrap());
    let sets: Vec<_> = t.set.iter().map(|(p, v)| (p.value.to_string(), v.clone())).collect();
    assert!(sets.contains(&("version".into(), AttributeValue::N("2".into()))));
    assert!(sets.contains(&("ratio".into(), AttributeValue::N("0.5".into()))));
    assert!(sets.contains(&("live".into(), AttributeValue::Bool(true))));
    assert_eq!(t.filter.as_ref().unwrap().value.reads().unwrap(), ["active", "tenant"]);
}

#[test]
fn every_transform_mistake_is_reported_at_once_with_its_place() {
    let text = format!(
        r#"{HEAD}[[table]]
source = "Orders"
snapshot = "export"
loader = "import"
export_s3 = "s3://b/p"
[table.transform]
rename = {{ a = "x", b = "x", c = 3, "d[0]" = "e" }}
drop = ["f", "f.g", 7]
set = {{ x = "clash", h = [1] }}
filter = """
item.n >
  )"""
colour = "red"
"#
    );
    let err = parse(&text).unwrap_err().to_string();
    for want in [
        "conf/ferry.toml:10:1: [[table]] #1 has a transform, and loader = \"import\" cannot transform",
        "conf/ferry.toml:11:21: two renames onto x (also a → x)",
        "conf/ferry.toml:11:34: rename in [table.transform] of [[table]] #1 maps a path to a new path",
        "conf/ferry.toml:11:37: rename in [table.transform] of [[table]] #1: \"d[0]\": '[' is not allowed",
        "conf/ferry.toml:12:14: f.g is dropped twice",
        "conf/ferry.toml:12:21: drop in [table.transform] of [[table]] #1 lists paths",
        "conf/ferry.toml:11:12: renaming onto x, which set also writes",
        "conf/ferry.toml:13:26: set in [table.transform] of [[table]] #1 takes a string, number or true/false",
        "conf/ferry.toml:16:3: filter in [table.transform] of [[table]] #1: Syntax error",
        "conf/ferry.toml:17:1: unknown key \"colour\" in [table.transform] of [[table]] #1",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn a_filter_that_is_not_a_predicate_is_refused() {
    let text = format!("{HEAD}[[table]]\nsource = \"T\"\ntransform = {{ filter = \"tenant + 1\" }}\n");
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("conf/ferry.toml:7:25: filter in [table.transform] of [[table]] #1: unknown name \"tenant\""),
        "{err}"
    );
    assert!(err.contains("must return true or false"), "{err}");
}
