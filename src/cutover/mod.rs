//! `ferry cutover`: the last step of a move, run while `ferry sync` keeps going.
//!
//! 1. wait until every table streams with a lag under `--max-lag` (read from the state store the
//!    daemon publishes to every second) and, with `--quiet-for`, no new change has been applied
//!    for that long (writes to the source have stopped);
//! 2. verify every table (a difference stops the cutover: nothing is changed);
//! 3. enable the destination's deferred settings;
//! 4. write the report (Markdown and JSON). The daemon is left running.
//!
//! With `--switch` (and as `ferry rollback`), it then has the daemon switch the pairs' direction
//! ([`switch`]) before reporting, so the old table stays a live fallback.

pub mod report;
pub mod settings;
pub mod switch;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checkpoint::{Direction, StateStore, backend};
use crate::clock::{fmt_ms, now_ms};
use crate::config::{Clients, Config, build_clients};
use crate::error::{Error, Result};
use crate::status::table_status;
use crate::verify::{self, VerifyOptions};
use report::{CutoverReport, TableCutover};

#[derive(Debug, Clone)]
pub struct CutoverOptions {
    pub max_lag: Duration,
    pub quiet_for: Option<Duration>,
    pub timeout: Duration,
    /// Default: the state store's folder.
    pub report_dir: Option<PathBuf>,
    pub dry_run: bool,
    pub verify: VerifyOptions,
    /// The plan `ferry sync --plan` followed: its Lambda mappings are enabled at cutover.
    pub plan: Option<std::sync::Arc<crate::plan::Plan>>,
    /// `--switch` (reverse) or `ferry rollback` (forward): the direction to switch the pairs to.
    pub switch: Option<Direction>,
    /// `--enable-streams`: turn on the stream the new direction reads where it is off.
    pub enable_streams: bool,
    /// `--then`: a command to run once the switch is done.
    pub then: Option<String>,
}

/// Runs the cutover; the report is written (except in a dry run) whether it completes or stops.
pub async fn run(config: &Config, opts: &CutoverOptions) -> Result<CutoverReport> {
    let started_ms = now_ms();
    let t0 = Instant::now();
    let store = open_store(config).await?;
    let src = build_clients("source", &config.source).await?;
    let dst = build_clients("destination", &config.destination).await?;
    let rollback = opts.switch == Some(Direction::Forward);
    let mut report = CutoverReport::new(fmt_ms(started_ms), opts.dry_run, rollback);
    let flags = (opts.enable_streams, opts.dry_run);
    let _switching = match opts.switch {
        Some(to) => Some(switch::prepare(config, store.as_ref(), (&src, &dst), to, flags).await?),
        None => None,
    };

    let waited = if opts.dry_run {
        check_once(config, store.as_ref(), opts).await.map(|_| ())
    } else {
        wait_ready(config, store.as_ref(), opts).await
    };
    report.timings.wait_seconds = t0.elapsed().as_secs_f64();
    report.tables = table_rows(config, store.as_ref()).await?;
    if let Err(e) = waited {
        report.outcome = if opts.dry_run {
            format!("dry run: not ready now: {e}")
        } else {
            e.to_string()
        };
        return finish(report, config, opts, t0);
    }

    if opts.dry_run {
        report.outcome = "dry run".into();
    } else if !verify_all(config, &src, &dst, store.as_ref(), opts, &mut report).await? {
        report.outcome = "stopped: verify did not find the tables equal (nothing was changed; see the tables)".into();
        return finish(report, config, opts, t0);
    }

    let s0 = Instant::now();
    // Rolling back enables nothing: the source's settings were never deferred.
    if opts.switch != Some(Direction::Forward) {
        report.settings = enable_settings(config, (&src, &dst), opts).await?;
    }
    report.timings.settings_seconds = s0.elapsed().as_secs_f64();
    if let (Some(to), false) = (opts.switch, opts.dry_run) {
        let w0 = Instant::now();
        let switched = switch::carry_out(config, store.as_ref(), to, opts.timeout).await;
        report.timings.switch_seconds = Some(w0.elapsed().as_secs_f64());
        match switched {
            Ok(s) => report.switch = Some(s),
            Err(e) => {
                report.outcome = format!("stopped: {e}");
                return finish(report, config, opts, t0);
            }
        }
    }
    if !opts.dry_run {
        report.outcome = "complete".into();
    }
    finish(report, config, opts, t0)
}

/// The destination's deferred settings: deletion protection, the plan's Lambda mappings.
async fn enable_settings(
    config: &Config,
    (src, dst): (&Clients, &Clients),
    opts: &CutoverOptions,
) -> Result<Vec<settings::SettingApplied>> {
    let mut applied = Vec::new();
    for t in &config.tables {
        applied.extend(settings::deletion_protection(src, dst, t, opts.dry_run).await?);
    }
    applied.extend(settings::enable_lambda_mappings(config, dst, opts.plan.as_deref(), opts.dry_run).await?);
    Ok(applied)
}

/// The state store the running daemon publishes to: the cutover cannot proceed without it.
async fn open_store(config: &Config) -> Result<Arc<dyn StateStore>> {
    backend::existing(&config.state).await?.ok_or_else(|| {
        Error::fatal(format!(
            "no {}: start `ferry sync` first (the cutover needs it running)",
            backend::describe(&config.state)
        ))
    })
}

/// One report row per table, with its lag and progress as the daemon last published them.
async fn table_rows(config: &Config, store: &dyn StateStore) -> Result<Vec<TableCutover>> {
    let mut rows = Vec::new();
    for t in &config.tables {
        let st = table_status(store, &t.source).await?;
        rows.push(TableCutover {
            table: t.source.clone(),
            destination: t.destination.clone(),
            lag_seconds: st.as_ref().and_then(|s| s.lag_seconds),
            records_applied: st.map_or(0, |s| s.records_applied),
            verify: None,
        });
    }
    Ok(rows)
}

/// Verifies every table into its report row; whether all were equal.
async fn verify_all(
    config: &Config,
    src: &Clients,
    dst: &Clients,
    store: &dyn StateStore,
    opts: &CutoverOptions,
    report: &mut CutoverReport,
) -> Result<bool> {
    let v0 = Instant::now();
    let mut equal = true;
    for (i, t) in config.tables.iter().enumerate() {
        let r = verify::verify_table(src, dst, t, Some(store), &opts.verify).await?;
        equal &= r.equal;
        report.tables[i].verify = Some(r);
    }
    report.timings.verify_seconds = v0.elapsed().as_secs_f64();
    Ok(equal)
}

fn finish(mut report: CutoverReport, config: &Config, opts: &CutoverOptions, t0: Instant) -> Result<CutoverReport> {
    report.finished = fmt_ms(now_ms());
    report.timings.total_seconds = t0.elapsed().as_secs_f64();
    if !opts.dry_run {
        let dir = opts.report_dir.clone().unwrap_or_else(|| config.home());
        report.write(&dir)?;
    }
    Ok(report)
}

/// Where the wait stands for one poll.
struct Readiness {
    /// Tables not yet within the bounds, with the reason.
    waiting: Vec<String>,
}

/// One look at every table: running, streaming, lag within the bound.
async fn check_once(config: &Config, store: &dyn StateStore, opts: &CutoverOptions) -> Result<Readiness> {
    let mut waiting = Vec::new();
    for t in &config.tables {
        let Some(st) = table_status(store, &t.source).await? else {
            return Err(Error::fatal(format!(
                "table {}: not in the state store (has `ferry sync` run?)",
                t.source
            )));
        };
        if let Some(e) = &st.error {
            return Err(Error::fatal(format!("table {}: stopped with an error: {e}", t.source)));
        }
        if !st.daemon_running {
            return Err(Error::fatal(format!(
                "table {}: `ferry sync` is not running; the cutover needs it running to keep the destination in sync",
                t.source
            )));
        }
        if st.phase != "streaming" {
            waiting.push(format!("{}: {}", t.source, st.phase));
        } else {
            match st.lag_seconds {
                Some(l) if l <= opts.max_lag.as_secs_f64() => {}
                l => waiting.push(format!(
                    "{}: lag {}",
                    t.source,
                    l.map_or("unknown".into(), |l| format!("{l:.1}s"))
                )),
            }
        }
    }
    if opts.dry_run && !waiting.is_empty() {
        return Err(Error::fatal(format!("waiting for {}", waiting.join(", "))));
    }
    Ok(Readiness { waiting })
}

/// Polls until every table is within the lag bound and, if asked, nothing new has been applied
/// for `quiet_for`, or the timeout passes.
async fn wait_ready(config: &Config, store: &dyn StateStore, opts: &CutoverOptions) -> Result<()> {
    let deadline = Instant::now() + opts.timeout;
    let mut last_counts: HashMap<String, i64> = HashMap::new();
    let mut quiet_since = Instant::now();
    let mut last_log = Instant::now();
    loop {
        let r = check_once(config, store, opts).await?;
        let mut changed = false;
        for t in &config.tables {
            let n = store.table(&t.source).await?.map_or(0, |row| row.records_applied);
            let caught_up = store.table(&t.source).await?.is_some_and(|row| row.caught_up);
            changed |= last_counts.insert(t.source.clone(), n) != Some(n) || !caught_up;
        }
        if changed {
            quiet_since = Instant::now();
        }
        let quiet = opts.quiet_for.is_none_or(|q| quiet_since.elapsed() >= q);
        if r.waiting.is_empty() && quiet {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::fatal(format!(
                "cutover timed out after {:?}: {}",
                opts.timeout,
                if r.waiting.is_empty() {
                    "the source never went quiet".to_string()
                } else {
                    format!("waiting for {}", r.waiting.join(", "))
                }
            )));
        }
        if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = Instant::now();
            tracing::info!(waiting = ?r.waiting, quiet = quiet, "cutover: waiting");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
