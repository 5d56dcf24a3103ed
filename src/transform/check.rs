//! Whether a transform can work, found before any item moves: every problem at once, each at the
//! place in the config that wrote it. [`spec`] needs the transform alone (read with the config);
//! [`against_table`] needs the source's keys and indexes (known once the table is described or
//! its plan schema read). [`schema`] gives the destination's schema that follows the transform.

use super::{Path, Spec};
use crate::discover::schema::TableSchema;

/// Problems of the transform on its own: names written twice or onto each other.
pub fn spec(s: &Spec) -> Vec<String> {
    let mut out = Vec::new();
    let overlap = |a: &Path, b: &Path| a.within(b) || b.within(a);
    for (i, (from, to)) in s.rename.iter().enumerate() {
        for (from2, to2) in &s.rename[..i] {
            if overlap(&from.value, &from2.value) {
                out.push(format!(
                    "{}: {} is renamed twice (also by rename of {})",
                    from.at, from.value, from2.value
                ));
            }
            if overlap(to, to2) {
                out.push(format!(
                    "{}: two renames onto {to} (also {} → {to2})",
                    from.at, from2.value
                ));
            }
        }
        for d in &s.drop {
            if overlap(&from.value, &d.value) {
                out.push(format!("{}: {} is both renamed and dropped", from.at, from.value));
            }
        }
        for (p, _) in &s.set {
            if overlap(to, &p.value) {
                out.push(format!("{}: renaming onto {to}, which set also writes", from.at));
            }
        }
    }
    for (i, (p, _)) in s.set.iter().enumerate() {
        if s.set[..i].iter().any(|(q, _)| overlap(&p.value, &q.value)) {
            out.push(format!("{}: {} is set twice", p.at, p.value));
        }
    }
    for (i, d) in s.drop.iter().enumerate() {
        if s.drop[..i].iter().any(|e| overlap(&d.value, &e.value)) {
            out.push(format!("{}: {} is dropped twice", d.at, d.value));
        }
    }
    out
}

/// Problems of the transform on this table: keys and index keys it would break, and renames onto
/// attributes the table already has. `table` names the table in messages.
pub fn against_table(s: &Spec, schema: &TableSchema, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    let keys: Vec<&str> = schema.key_schema.iter().map(|k| k.attribute_name.as_str()).collect();
    let index_keys: Vec<(&str, &str)> = schema
        .global_secondary_indexes
        .iter()
        .flat_map(|g| {
            g.key_schema
                .iter()
                .map(move |k| (g.index_name.as_str(), k.attribute_name.as_str()))
        })
        .chain(schema.local_secondary_indexes.iter().flat_map(|l| {
            l.key_schema
                .iter()
                .map(move |k| (l.index_name.as_str(), k.attribute_name.as_str()))
        }))
        .collect();
    let renamed_away = |name: &str| s.rename.iter().any(|(f, _)| f.value.is_top() && f.value.root() == name);
    for d in &s.drop {
        let root = d.value.root();
        if keys.contains(&root) {
            out.push(format!(
                "{}: {table}: cannot drop {}, it is part of the table's key",
                d.at, d.value
            ));
        } else if let Some((index, _)) = index_keys.iter().find(|(_, k)| *k == root) {
            out.push(format!(
                "{}: {table}: cannot drop {}, it is a key of index {index}",
                d.at, d.value
            ));
        }
    }
    for (from, to) in &s.rename {
        let keyish = keys.contains(&from.value.root()) || index_keys.iter().any(|(_, k)| *k == from.value.root());
        if keyish && !(from.value.is_top() && to.is_top()) {
            out.push(format!(
                "{}: {table}: {} is a key attribute: it can only be renamed to another top-level name, not {to}",
                from.at, from.value
            ));
        }
        let onto_key = keys.contains(&to.root()) || index_keys.iter().any(|(_, k)| *k == to.root());
        if onto_key && !renamed_away(to.root()) && to.root() != from.value.root() {
            out.push(format!(
                "{}: {table}: renaming {} onto {to}, an existing key attribute of the table or an index",
                from.at, from.value
            ));
        }
    }
    let dest_keys: Vec<&str> = keys.iter().map(|k| s.renamed(k)).collect();
    for (p, _) in &s.set {
        if dest_keys.contains(&p.value.root()) {
            out.push(format!(
                "{}: {table}: cannot set {}, it is part of the table's key",
                p.at, p.value
            ));
        }
    }
    out
}

/// The destination's schema under the transform: key, index key and TTL attributes renamed,
/// projected attributes renamed or, when dropped, no longer projected.
pub fn schema(s: &Spec, source: &TableSchema) -> TableSchema {
    let mut out = source.clone();
    let name = |n: &mut String| *n = s.renamed(n).to_string();
    out.attribute_definitions
        .iter_mut()
        .for_each(|a| name(&mut a.attribute_name));
    out.key_schema.iter_mut().for_each(|k| name(&mut k.attribute_name));
    let dropped = |n: &String| s.drop.iter().any(|d| d.value.is_top() && d.value.root() == n);
    let project = |p: &mut crate::discover::schema::Projection| {
        p.non_key_attributes.retain(|n| !dropped(n));
        p.non_key_attributes
            .iter_mut()
            .for_each(|n| *n = s.renamed(n).to_string());
        if p.projection_type == "INCLUDE" && p.non_key_attributes.is_empty() {
            // Every included attribute is dropped; DynamoDB refuses INCLUDE with none.
            p.projection_type = "KEYS_ONLY".into();
        }
    };
    for g in &mut out.global_secondary_indexes {
        g.key_schema.iter_mut().for_each(|k| name(&mut k.attribute_name));
        project(&mut g.projection);
    }
    for l in &mut out.local_secondary_indexes {
        l.key_schema.iter_mut().for_each(|k| name(&mut k.attribute_name));
        project(&mut l.projection);
    }
    if let Some(t) = &mut out.time_to_live_specification {
        name(&mut t.attribute_name);
    }
    out
}
