//! What each command does: load the config (and plan), call the library, print, pick the exit
//! code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::args::{CutoverArgs, RollbackArgs, SyncArgs, VerifyArgs, WaitArgs};
use super::{Cli, Command, code, existing_store, print_json};
use crate::checkpoint::Direction;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::verify::report::Verdict;

/// Installs the daemon's signal handlers and returns the token the first signal cancels. It is
/// given by `main.rs`, which owns the process (a second signal exits at once), and called only by
/// the commands that run until stopped.
pub type Signals = fn() -> Result<CancellationToken>;

pub async fn run(cli: Cli, signals: Signals) -> Result<ExitCode> {
    match cli.command {
        Command::Sync(args) => sync(args, signals).await,
        Command::Discover { config, out, force } => discover(&config, &out, force).await,
        Command::Plan { config, plan } => preview(&config, &plan).await,
        Command::Status { config, json } => status(&config, json).await,
        Command::Verify(args) => verify(args).await,
        Command::Checkpoint { command } => super::checkpoint::run(command).await,
        Command::Cutover(args) => cutover(args).await,
        Command::Rollback(args) => rollback(args).await,
    }
}

async fn sync(args: SyncArgs, signals: Signals) -> Result<ExitCode> {
    let (config, plan) = load_with_plan(&args.config, args.plan)?;
    if let Some(addr) = args.metrics {
        crate::page::serve(addr, &config).await?;
    }
    let stop = signals()?;
    let opts = crate::sync::SyncOptions {
        checks: crate::discover::check::CheckOptions {
            enable_streams: args.enable_streams,
            allow_nonempty: args.allow_nonempty,
        },
        progress: !args.no_progress && std::io::stderr().is_terminal(),
        from_ms: args.from.as_deref().map(parse_time).transpose()?,
        enable_pitr: args.enable_pitr,
        plan,
        parallel_tables: args.parallel_tables.map(|n| n as usize),
        direction: args.reverse.then_some(Direction::Reverse),
        ..Default::default()
    };
    crate::sync::run(&config, opts, stop).await?;
    Ok(ExitCode::SUCCESS)
}

async fn discover(config: &Path, out: &Path, force: bool) -> Result<ExitCode> {
    let config = Config::load_for_plan(config)?;
    let d = crate::plan::discover::run(&config, out, force).await?;
    println!(
        "discovered {} table(s) and {} Lambda mapping(s) into {}: review tables.csv, lambda-map.csv and \
         schemas/, then run `ferry plan --plan {}`",
        d.tables,
        d.mappings,
        out.display(),
        out.display()
    );
    for line in &d.transforms {
        println!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `ferry plan`.
async fn preview(config: &Path, plan: &Path) -> Result<ExitCode> {
    let config = Config::load_for_plan(config)?;
    let plan = crate::plan::Plan::load(plan)?;
    let src = crate::config::build_clients("source", &config.source).await?;
    let dst = crate::config::build_clients("destination", &config.destination).await?;
    let preview = crate::plan::preview::run(&config, &plan, &src, &dst).await?;
    print!("{}", preview.text);
    if !preview.ok {
        eprintln!(
            "error: a precondition fails (FAIL above): fix the plan or the destination before `ferry sync --plan`"
        );
    }
    Ok(code(preview.ok))
}

async fn status(config: &Path, json: bool) -> Result<ExitCode> {
    // Only the state path matters here (a plan-driven config may list no tables).
    let config = Config::load_for_plan(config)?;
    let store = existing_store(&config).await?;
    let list = crate::status::all(store.as_ref()).await?;
    if json {
        print_json(&list)?;
    } else {
        let workers = crate::status::workers(store.as_ref()).await?;
        print!("{}", crate::status::render(&list, &workers));
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let opts = crate::verify::VerifyOptions {
        table: args.table,
        sample: args.sample,
        segments: args.segments,
        read_units_per_second: args.max_read_units_per_second,
        consistent: args.consistent,
        examples: args.examples,
        repair: args.repair,
        recheck_wait: args.recheck_wait,
        ..Default::default()
    };
    let reports = crate::verify::run(&config, &opts).await?;
    if args.json {
        print_json(&reports)?;
    } else {
        reports.iter().for_each(|r| print!("{}", r.render()));
    }
    let verdicts: Vec<Verdict> = reports.iter().map(|r| r.verdict()).collect();
    Ok(if verdicts.iter().all(|v| *v == Verdict::Equal) {
        ExitCode::SUCCESS
    } else if verdicts.contains(&Verdict::Different) {
        ExitCode::from(3)
    } else {
        ExitCode::from(4)
    })
}

async fn cutover(args: CutoverArgs) -> Result<ExitCode> {
    let (config, plan) = load_with_plan(&args.wait.config, args.plan)?;
    let to = args.switch.then_some(Direction::Reverse);
    switch_and_report(&config, args.wait, plan, to).await
}

async fn rollback(args: RollbackArgs) -> Result<ExitCode> {
    let config = Config::load(&args.wait.config)?;
    switch_and_report(&config, args.wait, None, Some(Direction::Forward)).await
}

/// `--quiet-for` of a switch when none is given.
const SWITCH_QUIET: std::time::Duration = std::time::Duration::from_secs(10);

/// The cutover (with a switch to `to`, if any): its report printed, then what to do now.
async fn switch_and_report(
    config: &Config,
    wait: WaitArgs,
    plan: Option<Arc<crate::plan::Plan>>,
    to: Option<Direction>,
) -> Result<ExitCode> {
    let opts = crate::cutover::CutoverOptions {
        max_lag: wait.max_lag,
        // A switch never skips the quiet wait: a write to the old side after S would be lost.
        quiet_for: wait.quiet_for.or(to.map(|_| SWITCH_QUIET)),
        timeout: wait.timeout,
        report_dir: wait.report_dir,
        dry_run: wait.dry_run,
        verify: Default::default(),
        plan,
        switch: to,
        enable_streams: wait.enable_streams,
        then: wait.then,
    };
    let report = crate::cutover::run(config, &opts).await?;
    print!("{}", report.markdown());
    let Some(switch) = report.switch.as_ref().filter(|_| report.ok()) else {
        return Ok(code(report.ok()));
    };
    println!("{}", crate::cutover::switch::announce(switch));
    if let Some(cmd) = &opts.then {
        crate::cutover::switch::run_then(cmd, switch)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// An RFC 3339 time as milliseconds since the epoch.
pub(super) fn parse_time(text: &str) -> Result<i64> {
    let t = humantime::parse_rfc3339_weak(text)
        .map_err(|_| Error::fatal(format!("{text:?} is not an RFC 3339 time (e.g. 2026-11-21T17:00:00Z)")))?;
    let since = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Error::fatal(format!("{text:?}: times before 1970 are not supported")))?;
    Ok(since.as_millis() as i64)
}

/// The config, narrowed to the tables a plan folder moves (with their planned names) when one
/// is given.
fn load_with_plan(config: &Path, plan: Option<PathBuf>) -> Result<(Config, Option<Arc<crate::plan::Plan>>)> {
    let Some(dir) = plan else {
        return Ok((Config::load(config)?, None));
    };
    let mut config = Config::load_for_plan(config)?;
    let plan = crate::plan::Plan::load(&dir)?;
    plan.select_tables(&mut config);
    if config.tables.is_empty() {
        return Err(Error::fatal(format!(
            "the plan in {} moves no table (every row of tables.csv says move = no)",
            dir.display()
        )));
    }
    Ok((config, Some(Arc::new(plan))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_and_named_when_not() {
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z").unwrap(), 1_500);
        let e = parse_time("yesterday").unwrap_err().to_string();
        assert!(e.contains("\"yesterday\" is not an RFC 3339 time"), "{e}");
    }
}
