//! `ferry verify`: are the source and destination tables equal?
//!
//! ```text
//!  segment i of TotalSegments ──scan source──┐
//!                             ──scan dest────┴─▶ set digests equal? ──yes──▶ done (no key work)
//!                                                       │ no
//!                                                       ▼
//!                                     merge sorted (key, digest) lists ─▶ candidates
//!                                                       ▼
//!                  settle: read source, wait until a running sync is past that moment, read
//!                  destination, compare (rounds until stable) ─▶ findings ─▶ report / repair
//! ```
//!
//! Both sides are scanned with the same Segment/TotalSegments. DynamoDB places an item in a
//! segment by the hash of its partition key, the same way for every table (checked on DynamoDB
//! Local: identical placement across accounts, Regions and table names), so equal tables give equal
//! segments and whole segments are compared by an order-independent digest. Should an endpoint
//! place keys differently, a key "missing" in one segment and "extra" in another is still paired
//! up and compared ([`diff::pair_across_segments`]): only the cost changes, never the answer.

pub mod diff;
pub mod digest;
mod recheck;
pub mod repair;
pub mod report;
pub mod scan;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::seq::SliceRandom;

use crate::checkpoint::StateStore;
use crate::config::{Clients, Config, TableConfig, build_clients};
use crate::error::{Error, Result};
use crate::item::{KeyBytes, display_key};
use crate::retry::Policy;
use crate::transform::Transform;
use diff::{Found, Kind};
use digest::SetDigest;
pub use recheck::Finding;
use recheck::{SyncWatch, settle};
use report::{Example, Repair, TableReport};
use scan::Side;

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Only this source table (default: every table in the config).
    pub table: Option<String>,
    /// Compare a random fraction of the segments (0 < f ≤ 1).
    pub sample: Option<f64>,
    /// TotalSegments of the comparison scans (default: the table's `scan_segments`, else sized
    /// from the table: see [`crate::snapshot::scan::segments_for`]).
    pub segments: Option<u32>,
    /// Segment pairs scanned at once.
    pub parallel: usize,
    /// Read budget per side in read units per second (0 = unlimited).
    pub read_units_per_second: u32,
    /// Strongly consistent scans (twice the read units; point re-checks are always consistent).
    pub consistent: bool,
    /// Example keys listed per table.
    pub examples: usize,
    /// Rewrite differing, missing and extra keys from the source.
    pub repair: bool,
    /// Longest wait, per re-check round, for a running sync to get past the moment of a read;
    /// keys still differing after it are reported as unsettled.
    pub recheck_wait: Duration,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            table: None,
            sample: None,
            segments: None,
            parallel: 16,
            read_units_per_second: 0,
            consistent: false,
            examples: 10,
            repair: false,
            recheck_wait: Duration::from_secs(60),
        }
    }
}

/// Without a running sync, at most this many candidates are re-read (for attribute paths and to
/// drop keys changed during the scan); beyond it the scan's classification stands.
const RECHECK_ALL: usize = 10_000;

/// Verifies every selected table; the reports come in config order.
pub async fn run(config: &Config, opts: &VerifyOptions) -> Result<Vec<TableReport>> {
    if let Some(f) = opts.sample.filter(|f| !(*f > 0.0 && *f <= 1.0)) {
        return Err(Error::fatal(format!("--sample must be a fraction in (0, 1], got {f}")));
    }
    let tables = select(config, opts.table.as_deref())?;
    let src = build_clients("source", &config.source).await?;
    let dst = build_clients("destination", &config.destination).await?;
    let store = crate::checkpoint::backend::existing(&config.state).await?;
    let mut out = Vec::new();
    for t in tables {
        out.push(verify_table(&src, &dst, t, store.as_deref(), opts).await?);
    }
    Ok(out)
}

pub fn select<'a>(config: &'a Config, table: Option<&str>) -> Result<Vec<&'a TableConfig>> {
    match table {
        None => Ok(config.tables.iter().collect()),
        Some(name) => config
            .table(name)
            .map(|t| vec![t])
            .ok_or_else(|| Error::fatal(format!("table {name:?} is not in {}", config.path.display()))),
    }
}

pub async fn verify_table(
    src: &Clients,
    dst: &Clients,
    cfg: &TableConfig,
    store: Option<&dyn StateStore>,
    opts: &VerifyOptions,
) -> Result<TableReport> {
    // After `ferry cutover --switch` the destination is the side of truth, and the daemon
    // replicates it onto the source: compare (and repair) that way round.
    let row = match store {
        Some(s) => s.table(&cfg.source).await?,
        None => None,
    };
    if row.is_some_and(|r| r.direction == crate::checkpoint::Direction::Reverse) {
        tracing::info!(table = %cfg.source, "comparing in reverse (destination → source), as ferry sync replicates since the switch");
        return verify_as(dst, src, &cfg.reversed()?, &cfg.source, store, opts).await;
    }
    verify_as(src, dst, cfg, &cfg.source, store, opts).await
}

/// Verifies `cfg` (its source read as the side of truth), watching the sync of the pair `key`.
async fn verify_as(
    src: &Clients,
    dst: &Clients,
    cfg: &TableConfig,
    key: &str,
    store: Option<&dyn StateStore>,
    opts: &VerifyOptions,
) -> Result<TableReport> {
    let started = Instant::now();
    let (key_names, items) = describe_both(src, dst, cfg).await?;
    let shape = Arc::new(Transform::new(cfg.transform.clone(), key_names.clone()));
    let side = |c: &Clients, table: &str, keys: &Arc<[String]>| Side::of(c, table, keys, opts);
    let s = Side {
        // The source as the destination should hold it.
        shape: (!shape.is_identity()).then(|| shape.clone()),
        ..side(src, &cfg.source, &key_names)
    };
    let d = side(dst, &cfg.destination, shape.dest_keys());
    let wanted = opts
        .segments
        .unwrap_or_else(|| crate::snapshot::scan::segments_for(cfg.scan_segments, items));
    let watch = SyncWatch::of(store, key).await;
    let (mut report, findings) = compare(&s, &d, wanted, watch.as_ref(), opts).await?;
    if opts.repair && !findings.is_empty() {
        let keys: Vec<KeyBytes> = findings.iter().map(|f| f.key.clone()).collect();
        tracing::info!(table = %cfg.source, keys = keys.len(), "repairing from the source");
        repair::repair(src, dst, cfg, key_names.clone(), &keys).await?;
        recheck_repair(&s, &d, keys, watch.as_ref(), opts, &mut report).await?;
    }
    report.read_units_source = s.read_units.load(Relaxed);
    report.read_units_destination = d.read_units.load(Relaxed);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Both tables' descriptions: the key attribute names, and the larger item count (to size the
/// segments).
async fn describe_both(src: &Clients, dst: &Clients, cfg: &TableConfig) -> Result<(Arc<[String]>, u64)> {
    let desc = crate::discover::describe(src, &cfg.source, Policy::STARTUP)
        .await?
        .ok_or_else(|| Error::fatal(format!("source table {:?} does not exist", cfg.source)))?;
    let dst_desc = crate::discover::describe(dst, &cfg.destination, Policy::STARTUP)
        .await?
        .ok_or_else(|| Error::fatal(format!("destination table {:?} does not exist", cfg.destination)))?;
    let items = desc.item_count().max(dst_desc.item_count()).unwrap_or(0).max(0) as u64;
    Ok((crate::discover::key_names(&desc).into(), items))
}

/// Compares the two sides over `wanted` segments (or a sample of them), re-checks what differs,
/// and reports; the findings are returned for a repair.
async fn compare(
    s: &Side,
    d: &Side,
    wanted: u32,
    watch: Option<&SyncWatch<'_>>,
    opts: &VerifyOptions,
) -> Result<(TableReport, Vec<Finding>)> {
    let (total, chosen) = segments(wanted.max(1), opts.sample);
    let scanned = scan_pairs(s, d, total, &chosen, opts.parallel).await?;
    let Scanned {
        source,
        destination,
        equal_segments,
        mut found,
    } = scanned;
    diff::pair_across_segments(&mut found);
    let candidates = candidates(found);
    let checked = recheck(s, d, candidates, watch, opts).await?;
    let findings = checked.findings;
    let count = |k: Kind| findings.iter().filter(|f| f.kind == k).count();
    let report = TableReport {
        table: s.table.clone(),
        destination: d.table.clone(),
        segments_total: total,
        segments_compared: chosen.len() as u32,
        segments_equal: equal_segments,
        sample: opts.sample,
        source_items: source.count,
        destination_items: destination.count,
        source_digest: source.hex(),
        destination_digest: destination.hex(),
        missing: count(Kind::Missing),
        extra: count(Kind::Extra),
        differing: count(Kind::Differing),
        examples: examples(&findings, &d.key_names, opts.examples),
        rechecked: checked.rechecked,
        in_flight: checked.in_flight,
        unsettled: checked.unsettled,
        sync_running: watch.is_some(),
        repair: None,
        read_units_source: 0,
        read_units_destination: 0,
        seconds: 0.0,
        equal: findings.is_empty() && checked.unsettled == 0,
    };
    Ok((report, findings))
}

/// What the segment scans found.
struct Scanned {
    source: SetDigest,
    destination: SetDigest,
    equal_segments: u32,
    /// Key-by-key differences of the segments whose digests differ.
    found: Found,
}

/// Scans `chosen` segments of `total` on both sides, `parallel` pairs at once; segments with equal
/// digests need no key work.
async fn scan_pairs(s: &Side, d: &Side, total: u32, chosen: &[u32], parallel: usize) -> Result<Scanned> {
    let mut pairs = futures::stream::iter(chosen.iter().map(|&seg| async move {
        tokio::try_join!(
            s.scan_segment(seg as i32, total as i32),
            d.scan_segment(seg as i32, total as i32)
        )
    }))
    .buffer_unordered(parallel.max(1));
    let mut out = Scanned {
        source: SetDigest::default(),
        destination: SetDigest::default(),
        equal_segments: 0,
        found: Found::default(),
    };
    while let Some(pair) = pairs.next().await {
        let (a, b) = pair?;
        let (x, y) = (SetDigest::of(&a), SetDigest::of(&b));
        out.source.merge(&x);
        out.destination.merge(&y);
        if x == y {
            out.equal_segments += 1;
        } else {
            diff::merge(&a, &b, &mut out.found);
        }
    }
    Ok(out)
}

/// Every key the scans found different, with the scan's verdict, in key order.
fn candidates(found: Found) -> Vec<(KeyBytes, Kind)> {
    let mut candidates: Vec<(KeyBytes, Kind)> = found
        .missing
        .into_iter()
        .map(|e| (e.key, Kind::Missing))
        .chain(found.extra.into_iter().map(|e| (e.key, Kind::Extra)))
        .chain(found.differing.into_iter().map(|k| (k, Kind::Differing)))
        .collect();
    candidates.sort();
    candidates
}

/// The re-checked candidates.
struct Rechecked {
    findings: Vec<Finding>,
    /// Keys re-read.
    rechecked: usize,
    in_flight: usize,
    unsettled: usize,
}

/// Re-reads the candidates (see [`settle`]); without a running sync and beyond [`RECHECK_ALL`]
/// candidates, keeps the scan's verdicts and re-reads only the examples, for their paths.
async fn recheck(
    s: &Side,
    d: &Side,
    candidates: Vec<(KeyBytes, Kind)>,
    watch: Option<&SyncWatch<'_>>,
    opts: &VerifyOptions,
) -> Result<Rechecked> {
    if watch.is_some() || candidates.len() <= RECHECK_ALL {
        let rechecked = candidates.len();
        let keys = candidates.into_iter().map(|(k, _)| k).collect();
        let settled = settle(s, d, keys, watch, opts).await?;
        return Ok(Rechecked {
            findings: settled.findings,
            rechecked,
            in_flight: settled.in_flight,
            unsettled: settled.unsettled,
        });
    }
    let mut f: Vec<Finding> = candidates
        .into_iter()
        .map(|(key, kind)| Finding {
            key,
            kind,
            paths: Vec::new(),
            shown: None,
        })
        .collect();
    let examples = pick_examples(&f, opts.examples);
    let detailed = settle(s, d, examples.iter().map(|i| f[*i].key.clone()).collect(), None, opts).await?;
    for x in detailed.findings {
        if let Some(slot) = f.iter_mut().find(|y| y.key == x.key) {
            *slot = x;
        }
    }
    Ok(Rechecked {
        findings: f,
        rechecked: examples.len(),
        in_flight: 0,
        unsettled: 0,
    })
}

/// Up to `n` findings of each kind, as reported.
fn examples(findings: &[Finding], key_names: &[String], n: usize) -> Vec<Example> {
    pick_examples(findings, n)
        .into_iter()
        .map(|i| {
            let f = &findings[i];
            Example {
                kind: f.kind,
                key: f
                    .shown
                    .clone()
                    .or_else(|| f.key.to_item(key_names))
                    .map(|k| crate::item::json::item_to_json(&k))
                    .unwrap_or_default(),
                paths: f.paths.clone(),
            }
        })
        .collect()
}

/// After a repair: re-checks the repaired keys and records what is left in `report`.
async fn recheck_repair(
    s: &Side,
    d: &Side,
    keys: Vec<KeyBytes>,
    watch: Option<&SyncWatch<'_>>,
    opts: &VerifyOptions,
    report: &mut TableReport,
) -> Result<()> {
    let repaired = keys.len();
    let after = settle(s, d, keys, watch, opts).await?;
    let left = after.findings;
    for f in &left {
        tracing::warn!(table = %s.table, key = %f.key.to_item(&s.key_names).map(|k| display_key(&k)).unwrap_or_default(), "still different after the repair");
    }
    report.repair = Some(Repair {
        keys: repaired,
        remaining: left.len(),
    });
    report.unsettled = after.unsettled;
    report.equal = left.is_empty() && after.unsettled == 0;
    Ok(())
}

/// Up to `n` findings of each kind, by index.
fn pick_examples(f: &[Finding], n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for kind in [Kind::Missing, Kind::Extra, Kind::Differing] {
        out.extend(
            f.iter()
                .enumerate()
                .filter(|(_, x)| x.kind == kind)
                .map(|(i, _)| i)
                .take(n),
        );
    }
    out
}

/// Which segments to scan: all of them, or a random sample. A sample uses more segments (at
/// least 4 per sampled fraction) so that it is spread over the key space.
fn segments(total: u32, sample: Option<f64>) -> (u32, Vec<u32>) {
    let Some(f) = sample.filter(|f| *f < 1.0) else {
        return (total, (0..total).collect());
    };
    let total = total.max((4.0 / f).ceil() as u32).min(1_000_000);
    let k = ((total as f64 * f).round() as u32).max(1);
    let mut all: Vec<u32> = (0..total).collect();
    all.shuffle(&mut rand::rng());
    all.truncate(k as usize);
    all.sort();
    (total, all)
}

#[cfg(test)]
mod tests;
