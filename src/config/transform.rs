//! `[table.transform]`: `rename`, `drop`, `set` and `filter`, read into a [`Spec`] whose every
//! entry remembers its place in the file, with the filter compiled and the problems that need no
//! table found at once ([`crate::transform::check::spec`]).
//!
//! ```toml
//! [table.transform]
//! rename = { sk = "sort_key", "profile.email" = "profile.mail" }
//! drop = ["ssn", "profile.phone"]
//! filter = 'item.tenant == "acme" && has(item.active)'
//! set = { migrated_from = "orders-eu" }
//! ```
//!
//! A dotted key written bare (`profile.email = "x"`) is a nested table in TOML; it is read as the
//! same path as the quoted `"profile.email"`.

use std::ops::Range;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::reader::{Errors, Obj};
use crate::transform::{At, Filter, Path, Spec, check};

pub(super) fn read(t: &mut Obj, errs: &mut Errors) -> Spec {
    let Some(v) = t.raw("transform") else {
        return Spec::default();
    };
    let Some(table) = v.get_ref().as_table() else {
        errs.at(
            v.span(),
            format!("transform in {} must be a table ([table.transform])", t.name()),
        );
        return Spec::default();
    };
    let name = format!("[table.transform] of {}", t.name());
    let mut o = Obj::new(table, v.span(), name.clone());
    let mut spec = Spec::default();
    if let Some(v) = o.raw("rename") {
        for (path, value) in entries(errs, v, &name, "rename") {
            let to = value.get_ref().as_str().and_then(|s| {
                Path::parse(s)
                    .map_err(|e| errs.at(value.span(), format!("rename in {name}: {e}")))
                    .ok()
            });
            if value.get_ref().as_str().is_none() {
                errs.at(
                    value.span(),
                    format!("rename in {name} maps a path to a new path (a string)"),
                );
            }
            if let (Some(from), Some(to)) = (path, to) {
                spec.rename.push((from, to));
            }
        }
    }
    if let Some(v) = o.raw("drop") {
        spec.drop = drops(errs, v, &name);
    }
    if let Some(v) = o.raw("set") {
        for (path, value) in entries(errs, v, &name, "set") {
            let av = constant(value.get_ref());
            if av.is_none() {
                errs.at(
                    value.span(),
                    format!("set in {name} takes a string, number or true/false"),
                );
            }
            if let (Some(p), Some(av)) = (path, av) {
                spec.set.push((p, av));
            }
        }
    }
    if let Some(v) = o.raw("filter") {
        spec.filter = filter(errs, v, &name);
    }
    o.finish(errs);
    errs.list.extend(check::spec(&spec));
    spec
}

/// `key = value` pairs of a table, dotted bare keys flattened into paths.
fn entries<'t, 'i>(
    errs: &mut Errors,
    v: &'t Spanned<DeValue<'i>>,
    name: &str,
    what: &str,
) -> Vec<(Option<At<Path>>, &'t Spanned<DeValue<'i>>)> {
    let Some(table) = v.get_ref().as_table() else {
        errs.at(
            v.span(),
            format!("{what} in {name} must be a table: {what} = {{ old = \"new\" }}"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    flatten(errs, table, String::new(), name, what, &mut out);
    out
}

fn flatten<'t, 'i>(
    errs: &mut Errors,
    table: &'t DeTable<'i>,
    prefix: String,
    name: &str,
    what: &str,
    out: &mut Vec<(Option<At<Path>>, &'t Spanned<DeValue<'i>>)>,
) {
    for (k, v) in table.iter() {
        let text = format!("{prefix}{}", k.get_ref());
        if let Some(inner) = v.get_ref().as_table() {
            flatten(errs, inner, format!("{text}."), name, what, out);
            continue;
        }
        out.push((path_at(errs, &text, k.span(), name, what), v));
    }
}

fn path_at(errs: &mut Errors, text: &str, span: Range<usize>, name: &str, what: &str) -> Option<At<Path>> {
    match Path::parse(text) {
        Ok(p) => Some(At {
            value: p,
            at: errs.place(span.start),
        }),
        Err(e) => {
            errs.at(span, format!("{what} in {name}: {e}"));
            None
        }
    }
}

fn drops(errs: &mut Errors, v: &Spanned<DeValue>, name: &str) -> Vec<At<Path>> {
    let Some(arr) = v.get_ref().as_array() else {
        errs.at(
            v.span(),
            format!("drop in {name} must be a list of paths: drop = [\"ssn\"]"),
        );
        return Vec::new();
    };
    arr.iter()
        .filter_map(|e| match e.get_ref().as_str() {
            Some(s) => path_at(errs, s, e.span(), name, "drop"),
            None => {
                errs.at(e.span(), format!("drop in {name} lists paths (strings)"));
                None
            }
        })
        .collect()
}

fn constant(v: &DeValue) -> Option<AttributeValue> {
    if let Some(s) = v.as_str() {
        return Some(AttributeValue::S(s.to_string()));
    }
    if let Some(b) = v.as_bool() {
        return Some(AttributeValue::Bool(b));
    }
    let number = v
        .as_integer()
        .and_then(|i| {
            i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
                .ok()
                .map(|n| n.to_string())
        })
        .or_else(|| v.as_float().map(|f| f.as_str().replace('_', "")));
    // As written (DynamoDB keeps a number's value, not its spelling); inf and nan are no numbers.
    number
        .filter(|n| crate::item::number::normalize(n).is_some())
        .map(AttributeValue::N)
}

/// The filter, compiled; its problems placed at their line and column in the file.
fn filter(errs: &mut Errors, v: &Spanned<DeValue>, name: &str) -> Option<At<Arc<Filter>>> {
    let Some(source) = v.get_ref().as_str() else {
        errs.at(
            v.span(),
            format!("filter in {name} must be a string (a CEL expression)"),
        );
        return None;
    };
    match Filter::compile(source) {
        Ok(f) => Some(At {
            value: Arc::new(f),
            at: errs.place(v.span().start),
        }),
        Err(problems) => {
            for p in problems {
                let offset = offset_in_string(errs.src(), v.span().start, p.line, p.col);
                errs.at(offset..offset, format!("filter in {name}: {}", p.message));
            }
            None
        }
    }
}

/// The byte offset in the file of `line:col` (1-based, in characters) of a string value whose
/// literal starts at `start`. Escapes make it approximate, which is fine for pointing.
fn offset_in_string(src: &str, start: usize, line: usize, col: usize) -> usize {
    let lit = &src[start.min(src.len())..];
    let mut at = start
        + if lit.starts_with("\"\"\"") || lit.starts_with("'''") {
            3
        } else {
            1
        };
    if lit.starts_with("\"\"\"\n") || lit.starts_with("'''\n") {
        at += 1; // the newline after a multi-line string's opening delimiter is not part of it
    }
    let mut rest = src[at.min(src.len())..].char_indices();
    let (mut l, mut c) = (1, 1);
    for (i, ch) in rest.by_ref() {
        if (l, c) >= (line, col) {
            return at + i;
        }
        if ch == '\n' {
            l += 1;
            c = 1;
        } else {
            c += 1;
        }
    }
    src.len()
}
