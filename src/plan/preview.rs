//! `ferry plan`: what `ferry sync --plan` would do per table, with every precondition it checks,
//! read from both sides. Writes nothing.

use std::fmt::Write as _;

use aws_sdk_dynamodb::types::TableDescription;

use super::{Plan, PlannedTable};
use crate::clock::human;
use crate::config::{Clients, Config, Snapshot, TableConfig};
use crate::discover::schema::TableSchema;
use crate::discover::{self, settings};
use crate::error::{Error, Result};
use crate::retry::Policy;
use crate::snapshot::budget::{self, ReadBudget};

/// DynamoDB Streams keeps records for 24 hours: a bulk load must finish well within that.
const RETENTION_HOURS: f64 = 24.0;
/// Write rate assumed for the time budget when the table sets no write budget: what one
/// unthrottled destination table sustains comfortably.
const ASSUMED_ITEMS_PER_SECOND: f64 = 1_000.0;

/// The report, and whether every precondition holds.
pub struct Preview {
    pub text: String,
    pub ok: bool,
}

#[derive(Default)]
struct Lines {
    text: String,
    failed: bool,
}

impl Lines {
    fn line(&mut self, tag: &str, msg: impl std::fmt::Display) {
        if tag == "FAIL" {
            self.failed = true;
        }
        let _ = writeln!(self.text, "  {tag:<5} {msg}");
    }
}

pub async fn run(config: &Config, plan: &Plan, src: &Clients, dst: &Clients) -> Result<Preview> {
    let mut out = Lines::default();
    let mappings: usize = plan.tables.iter().map(|t| t.mappings.len()).sum();
    let remapped = plan
        .tables
        .iter()
        .flat_map(|t| &t.mappings)
        .filter(|m| super::lambda_map::function_name(&m.destination_function) != m.source_function)
        .count();
    let _ = writeln!(
        out.text,
        "plan {}: {} table(s) to move, {} skipped, {mappings} Lambda mapping(s) to recreate ({remapped} remapped)\n",
        plan.dir.display(),
        plan.tables.len(),
        plan.skipped.len(),
    );
    for t in &plan.tables {
        let tuning = config.table(&t.source).cloned();
        table(&mut out, t, tuning.as_ref(), src, dst).await?;
        out.text.push('\n');
    }
    for s in &plan.skipped {
        let _ = writeln!(out.text, "{s}: skipped (move = no in tables.csv)");
    }
    let pairs: Vec<_> = plan
        .tables
        .iter()
        .map(|t| (t.source.clone(), t.destination.clone()))
        .collect();
    let _ = write!(
        out.text,
        "\nferry.toml for this plan:\n{}",
        super::toml_out::render(config, &pairs)
    );
    Ok(Preview {
        ok: !out.failed,
        text: out.text,
    })
}

async fn table(
    out: &mut Lines,
    t: &PlannedTable,
    tuning: Option<&TableConfig>,
    src: &Clients,
    dst: &Clients,
) -> Result<()> {
    let renamed = if t.renamed() { " (renamed)" } else { "" };
    let _ = writeln!(out.text, "{} -> {}{renamed}", t.source, t.destination);
    let Some(s) = discover::describe(src, &t.source, Policy::STARTUP).await? else {
        out.line("FAIL", format!("source table {:?} does not exist", t.source));
        return Ok(());
    };
    let spec = tuning.map(|c| c.transform.clone()).unwrap_or_default();
    source(out, t, &s, src, &spec).await;
    if !spec.is_empty() {
        transform(out, t, &spec, &s);
    }
    let scans = tuning.is_none_or(|c| c.snapshot == Snapshot::Scan);
    let reads = budget::resolve(tuning.and_then(|c| c.max_read_units_per_second), &s);
    if scans {
        out.line(
            "info",
            budget::describe(s.table_size_bytes.unwrap_or(0).max(0) as u64, &reads),
        );
    }
    destination(out, t, dst).await?;
    time_budget(out, &s, tuning, scans.then_some(&reads));
    restore(out, &t.schema);
    mappings(out, t, dst).await
}

/// The table's transform, its problems on the source table, and the destination the plan's
/// schema file makes (discover wrote it in the transform's shape).
fn transform(out: &mut Lines, t: &PlannedTable, spec: &crate::transform::Spec, s: &TableDescription) {
    for step in spec.describe() {
        out.line("info", format!("transform: {step}"));
    }
    let source = TableSchema::from_description(s, &Default::default());
    for problem in crate::transform::check::against_table(spec, &source, &t.source) {
        out.line("FAIL", problem);
    }
    let indexes: Vec<String> = t
        .schema
        .global_secondary_indexes
        .iter()
        .map(|g| (&g.index_name, &g.key_schema))
        .chain(
            t.schema
                .local_secondary_indexes
                .iter()
                .map(|l| (&l.index_name, &l.key_schema)),
        )
        .map(|(name, keys)| {
            let keys: Vec<_> = keys.iter().map(|k| k.attribute_name.as_str()).collect();
            format!("{name} ({})", keys.join(", "))
        })
        .collect();
    out.line(
        "info",
        format!(
            "destination after the transform: keys [{}], indexes [{}]",
            t.schema.key_signature(),
            indexes.join("; ")
        ),
    );
}

/// What the source holds and how its changes will be read.
async fn source(out: &mut Lines, t: &PlannedTable, s: &TableDescription, src: &Clients, spec: &crate::transform::Spec) {
    let bytes = s.table_size_bytes.unwrap_or(0);
    let items = s.item_count.unwrap_or(0);
    out.line(
        "ok",
        format!("source exists: {items} items, {bytes} bytes (as DynamoDB last counted)"),
    );
    // The schema file is the destination's: the source's keys as the transform names them.
    let src_keys = discover::key_signature_as(s, |n| spec.renamed(n));
    let plan_keys = t.schema.key_signature();
    if src_keys != plan_keys {
        let renamed = if spec.is_empty() {
            ""
        } else {
            " (named as the transform renames them)"
        };
        out.line(
            "FAIL",
            format!(
                "schemas/{}.json has keys [{plan_keys}], the source has [{src_keys}]{renamed}: run discover again or edit the file",
                t.source
            ),
        );
    }
    match s.stream_specification.as_ref().filter(|x| x.stream_enabled) {
        Some(spec) => {
            let v = spec.stream_view_type.as_ref().map_or("?", |v| v.as_str());
            let how = if matches!(v, "NEW_IMAGE" | "NEW_AND_OLD_IMAGES") {
                "applied as is"
            } else {
                "each change re-read from the source with a consistent read"
            };
            out.line("ok", format!("source stream {v}: {how}"));
        }
        None => out.line(
            "warn",
            "source has no stream: `ferry sync --enable-streams` enables NEW_AND_OLD_IMAGES, or sync refuses",
        ),
    }
    let global = s.replicas.as_ref().is_some_and(|r| !r.is_empty());
    if let Some(w) = super::consumers::warning(t.mappings.len() + t.skipped_mappings.len(), global) {
        out.line("warn", w);
    }
    let pitr = match settings::pitr(src, &t.source).await {
        Ok(true) => "on".to_string(),
        Ok(false) => "off".to_string(),
        Err(e) => format!("unknown ({e})"),
    };
    out.line("info", format!("source PITR {pitr}"));
    out.line("info", "bulk load by parallel scan (no [export] bucket in this config)");
}

/// The bulk load's expected duration against the stream's retention; `reads` is the read
/// budget when the load scans.
fn time_budget(out: &mut Lines, s: &TableDescription, tuning: Option<&TableConfig>, reads: Option<&ReadBudget>) {
    let bytes = s.table_size_bytes.unwrap_or(0);
    let write_s = budget_seconds(bytes, s.item_count.unwrap_or(0), tuning);
    let read = reads.and_then(|r| {
        budget::expected_seconds(bytes.max(0) as u64, r.units_per_second)
            .filter(|s| *s > write_s)
            .map(|s| (s, r.units_per_second))
    });
    let (est_s, rate) = match read {
        Some((r, units)) => (r, format!("the read budget of {units} read units/s")),
        None => (
            write_s,
            match tuning.filter(|c| c.max_write_units_per_second > 0) {
                Some(c) => format!("the table's budget of {} write units/s", c.max_write_units_per_second),
                None => format!("an assumed {ASSUMED_ITEMS_PER_SECOND} items/s"),
            },
        ),
    };
    let hours = est_s / 3600.0;
    let tag = if hours >= RETENTION_HOURS {
        "FAIL"
    } else if hours >= RETENTION_HOURS / 2.0 {
        "warn"
    } else {
        "ok"
    };
    out.line(
        tag,
        format!(
            "time budget: bulk load ~{} at {rate}; stream retention is 24 h",
            human(est_s)
        ),
    );
}

/// The settings applied once the bulk load is done.
fn restore(out: &mut Lines, sc: &TableSchema) {
    out.line(
        "then",
        format!(
            "after the bulk load restore: table class {}, deletion protection {}, TTL {}, PITR {}, {} tag(s), stream {}",
            sc.table_class,
            if sc.deletion_protection_enabled { "on" } else { "off" },
            sc.ttl_attribute().unwrap_or("off"),
            if sc.pitr() { "on" } else { "off" },
            sc.tags.len(),
            sc.stream_view().unwrap_or("off"),
        ),
    );
}

/// The Lambda mappings to recreate, each checked against the destination's functions.
async fn mappings(out: &mut Lines, t: &PlannedTable, dst: &Clients) -> Result<()> {
    for m in &t.mappings {
        let f = super::lambda_map::function_name(&m.destination_function);
        let edit = if f != m.source_function {
            format!("{} -> {f} (remapped)", m.source_function)
        } else {
            f.clone()
        };
        match function_exists(dst, &m.destination_function).await? {
            true => out.line(
                "ok",
                format!("Lambda mapping {edit}: created DISABLED at LATEST, enabled at cutover"),
            ),
            false => out.line(
                "FAIL",
                format!("Lambda mapping {edit}: destination function {f:?} does not exist"),
            ),
        }
    }
    for m in t.mappings.iter().filter(|m| !m.on_failure_destination.is_empty()) {
        out.line(
            "note",
            format!(
                "on-failure destination {} is recreated as written: edit lambda-map.csv if it belongs to the \
                 source account",
                m.on_failure_destination
            ),
        );
    }
    for m in &t.skipped_mappings {
        out.line(
            "skip",
            format!("Lambda mapping to {} (action = skip)", m.source_function),
        );
    }
    Ok(())
}

async fn destination(out: &mut Lines, t: &PlannedTable, dst: &Clients) -> Result<()> {
    let Some(d) = discover::describe(dst, &t.destination, Policy::STARTUP).await? else {
        out.line(
            "ok",
            format!(
                "destination {:?} does not exist: created from schemas/{}.json ({} GSI, {} LSI, {}, class {})",
                t.destination,
                t.source,
                t.schema.global_secondary_indexes.len(),
                t.schema.local_secondary_indexes.len(),
                t.schema.billing_mode,
                t.schema.table_class
            ),
        );
        return Ok(());
    };
    let (have, want) = (discover::key_signature(&d), t.schema.key_signature());
    if have != want {
        out.line(
            "FAIL",
            format!(
                "destination {:?} exists with keys [{have}], the plan has [{want}]",
                t.destination
            ),
        );
    } else if d.item_count.unwrap_or(0) > 0 {
        out.line(
            "warn",
            format!(
                "destination {:?} exists with the same keys and holds items: sync refuses unless it resumes or \
                 --allow-nonempty",
                t.destination
            ),
        );
    } else {
        out.line(
            "ok",
            format!("destination {:?} exists with the same keys: reused", t.destination),
        );
    }
    Ok(())
}

async fn function_exists(dst: &Clients, function: &str) -> Result<bool> {
    match dst.lambda.get_function().function_name(function).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = Error::from_sdk("GetFunction", e);
            if e.code() == Some("ResourceNotFoundException") {
                Ok(false)
            } else {
                Err(e.context(format!("looking up destination function {function:?}")))
            }
        }
    }
}

fn budget_seconds(bytes: i64, items: i64, tuning: Option<&TableConfig>) -> f64 {
    match tuning.filter(|c| c.max_write_units_per_second > 0) {
        // One write unit per started KB of each item: at least one per item.
        Some(c) => ((bytes as f64 / 1024.0).max(items as f64)) / c.max_write_units_per_second as f64,
        None => items as f64 / ASSUMED_ITEMS_PER_SECOND,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_follows_the_write_limit() {
        assert_eq!(budget_seconds(0, 1_000_000, None), 1000.0);
        let mut c = crate::config::Config::parse(
            std::path::Path::new("f.toml"),
            "[source]\n[destination]\n[[table]]\nsource=\"A\"\nmax_write_units_per_second=100\n",
        )
        .unwrap()
        .tables
        .remove(0);
        assert_eq!(budget_seconds(1024 * 1000, 10, Some(&c)), 10.0);
        c.max_write_units_per_second = 0;
        assert_eq!(budget_seconds(1024 * 1000, 10, Some(&c)), 0.01);
        assert_eq!(human(7200.0), "2.0 h");
    }
}
