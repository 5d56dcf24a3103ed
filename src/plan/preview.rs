//! `ferry plan`: what `ferry sync --plan` would do per table, with every precondition it checks,
//! read from both sides. Writes nothing.

use std::fmt::Write as _;

use aws_sdk_dynamodb::types::TableDescription;

use super::{Plan, PlannedTable};
use crate::apply::budget::{self as write_budget, WriteBudget};
use crate::clock::human;
use crate::config::{Clients, Config, Snapshot, TableConfig};
use crate::discover::capacity;
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
    // As `ferry sync --plan` resolves it: from the destination, or the schema it is created from.
    let configured = tuning.and_then(|c| c.max_write_units_per_second);
    let writes = capacity::write_budget(dst, &t.destination, configured, Policy::STARTUP, Some(&t.schema)).await?;
    let (bytes, items) = (size(s.table_size_bytes), size(s.item_count));
    out.line("info", write_budget::describe(bytes, items, &writes));
    time_budget(out, &s, &writes, scans.then_some(&reads));
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

/// The bulk load's expected duration against the stream's retention, at the slower of the write
/// budget `writes` and, when the load scans, the read budget `reads`.
fn time_budget(out: &mut Lines, s: &TableDescription, writes: &WriteBudget, reads: Option<&ReadBudget>) {
    let (bytes, items) = (size(s.table_size_bytes), size(s.item_count));
    let (write_s, write_rate) = load_seconds(bytes, items, writes);
    let read = reads.and_then(|r| {
        budget::expected_seconds(bytes, r.units_per_second)
            .filter(|s| *s > write_s)
            .map(|s| (s, r.units_per_second))
    });
    let (est_s, rate) = match read {
        Some((r, units)) => (r, format!("the read budget of {units} read units/s")),
        None => (write_s, write_rate),
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

/// Seconds the bulk load's writes take, and at what rate: the write budget, or an assumed rate
/// when it is unlimited.
fn load_seconds(bytes: u64, items: u64, writes: &WriteBudget) -> (f64, String) {
    match write_budget::expected_seconds(bytes, items, writes.units_per_second) {
        Some(s) => (
            s,
            format!("the write budget of {} write units/s", writes.units_per_second),
        ),
        None => (
            items as f64 / ASSUMED_ITEMS_PER_SECOND,
            format!("an assumed {ASSUMED_ITEMS_PER_SECOND} items/s (no write budget)"),
        ),
    }
}

/// DescribeTable's size and item count, never negative.
fn size(n: Option<i64>) -> u64 {
    n.unwrap_or(0).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_time_follows_the_write_budget_and_assumes_a_rate_when_unlimited() {
        let budget = |n| write_budget::configured(n);
        // 1,000 items of 1 KB at 100 units/s; 10 small items still cost a unit each.
        assert_eq!(
            load_seconds(1024 * 1000, 1000, &budget(100)),
            (10.0, "the write budget of 100 write units/s".to_string())
        );
        assert_eq!(load_seconds(100, 10, &budget(100)).0, 0.1);
        assert_eq!(
            load_seconds(1024 * 1000, 10, &budget(0)),
            (0.01, "an assumed 1000 items/s (no write budget)".to_string())
        );
        assert_eq!(human(7200.0), "2.0 h");
    }
}
