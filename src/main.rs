//! The `ferry` binary: parses the command line, runs it, and is the only place that exits.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ferry::cli::{CheckpointCommand, Cli, Command};
use ferry::config::Config;
use tokio_util::sync::CancellationToken;

// The apply path allocates per attribute; mimalloc spends far fewer cycles on it than glibc.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| "info,aws=warn".into()),
        )
        .with_writer(ferry::telemetry::progress::LogWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Sync {
            config,
            enable_streams,
            allow_nonempty,
            enable_pitr,
            metrics,
            no_progress,
            from,
            plan,
            parallel_tables,
        } => {
            let (config, plan) = load_with_plan(&config, plan)?;
            if let Some(addr) = metrics {
                ferry::telemetry::metrics::serve(addr)?;
            }
            let stop = stop_on_signal()?;
            let opts = ferry::sync::SyncOptions {
                checks: ferry::discover::check::CheckOptions {
                    enable_streams,
                    allow_nonempty,
                },
                progress: !no_progress && std::io::stderr().is_terminal(),
                from_ms: from.as_deref().map(parse_time).transpose()?,
                enable_pitr,
                plan,
                parallel_tables: parallel_tables.map(|n| n as usize),
                ..Default::default()
            };
            ferry::sync::run(&config, opts, stop).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Discover { config, out, force } => {
            let config = Config::load_for_plan(&config)?;
            let d = ferry::plan::discover::run(&config, &out, force).await?;
            println!(
                "discovered {} table(s) and {} Lambda mapping(s) into {}: review tables.csv, lambda-map.csv and \
                 schemas/, then run `ferry plan --plan {}`",
                d.tables,
                d.mappings,
                out.display(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { config, plan } => {
            let config = Config::load_for_plan(&config)?;
            let plan = ferry::plan::Plan::load(&plan)?;
            let src = ferry::config::build_clients("source", &config.source).await?;
            let dst = ferry::config::build_clients("destination", &config.destination).await?;
            let preview = ferry::plan::preview::run(&config, &plan, &src, &dst).await?;
            print!("{}", preview.text);
            if preview.ok {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "error: a precondition fails (FAIL above): fix the plan or the destination before `ferry sync --plan`"
                );
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Status { config, json } => {
            // Only the state path matters here (a plan-driven config may list no tables).
            let config = Config::load_for_plan(&config)?;
            let store = ferry::checkpoint::Store::open_existing(&config.state_path)?.with_context(|| {
                format!(
                    "no state store at {} (has `ferry sync` run?)",
                    config.state_path.display()
                )
            })?;
            let list = ferry::status::all(&store)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", ferry::status::render(&list));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            config,
            table,
            sample,
            json,
            repair,
            max_read_units_per_second,
            consistent,
            segments,
            examples,
            recheck_wait,
        } => {
            let config = Config::load(&config)?;
            let opts = ferry::verify::VerifyOptions {
                table,
                sample,
                segments,
                read_units_per_second: max_read_units_per_second,
                consistent,
                examples,
                repair,
                recheck_wait,
                ..Default::default()
            };
            let reports = ferry::verify::run(&config, &opts).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                reports.iter().for_each(|r| print!("{}", r.render()));
            }
            Ok(if reports.iter().all(|r| r.equal) {
                ExitCode::SUCCESS
            } else if reports
                .iter()
                .all(|r| r.verdict() != ferry::verify::report::Verdict::Different)
            {
                ExitCode::from(4)
            } else {
                ExitCode::from(3)
            })
        }
        Command::Checkpoint { command } => checkpoint(command).await,
        Command::Cutover {
            config,
            max_lag,
            quiet_for,
            timeout,
            report_dir,
            dry_run,
            plan,
        } => {
            let (config, plan) = load_with_plan(&config, plan)?;
            let opts = ferry::cutover::CutoverOptions {
                max_lag,
                quiet_for,
                timeout,
                report_dir,
                dry_run,
                verify: Default::default(),
                plan,
            };
            let report = ferry::cutover::run(&config, &opts).await?;
            print!("{}", report.markdown());
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn checkpoint(command: CheckpointCommand) -> anyhow::Result<ExitCode> {
    use ferry::checkpoint::control::{self, Target};
    match command {
        CheckpointCommand::List { config, json } => {
            let config = Config::load(&config)?;
            let store = ferry::checkpoint::Store::open_existing(&config.state_path)?
                .with_context(|| format!("no state store at {}", config.state_path.display()))?;
            let names: Vec<String> = config.tables.iter().map(|t| t.source.clone()).collect();
            let list = control::list(&store, &names)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", control::render_list(&list));
            }
            Ok(ExitCode::SUCCESS)
        }
        CheckpointCommand::Set {
            config,
            table,
            at,
            trim_horizon,
            latest,
            yes,
        } => {
            let config = Config::load(&config)?;
            let target = match (at, trim_horizon, latest) {
                (Some(t), _, _) => Target::At(parse_time(&t)?),
                (None, true, _) => Target::TrimHorizon,
                _ => Target::Latest,
            };
            anyhow::ensure!(
                config.table(&table).is_some(),
                "table {table:?} is not in {}",
                config.path.display()
            );
            let store = ferry::checkpoint::Store::open_existing(&config.state_path)?
                .with_context(|| format!("no state store at {}", config.state_path.display()))?;
            if config
                .table(&table)
                .is_some_and(|t| matches!(t.change_source, ferry::config::ChangeSource::Sqs(_)))
            {
                let plan = control::plan_set_queue(&store, &table, target)?;
                print!("{}", plan.describe());
                if !yes && !confirm()? {
                    println!("nothing changed");
                    return Ok(ExitCode::FAILURE);
                }
                plan.apply(&store)?;
                println!("done: the next `ferry sync` drops queued records before that point");
                return Ok(ExitCode::SUCCESS);
            }
            let src = ferry::config::build_clients("source", &config.source).await?;
            let api = ferry::source::streams::api::SdkStreams(src.streams.clone());
            let plan = control::plan_set(&store, &api, &table, target).await?;
            print!("{}", plan.describe());
            if !yes && !confirm()? {
                println!("nothing changed");
                return Ok(ExitCode::FAILURE);
            }
            plan.apply(&store)?;
            println!("done: the next `ferry sync` resumes from there");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn confirm() -> anyhow::Result<bool> {
    use std::io::Write;
    print!("apply? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn parse_time(text: &str) -> anyhow::Result<i64> {
    let t = humantime::parse_rfc3339_weak(text)
        .with_context(|| format!("{text:?} is not an RFC 3339 time (e.g. 2026-11-21T17:00:00Z)"))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .context("times before 1970 are not supported")?
        .as_millis() as i64)
}

/// First SIGINT/SIGTERM: stop reading, drain, flush, exit 0. A second one exits at once (a
/// checkpoint is never ahead of durable writes, so even that loses nothing).
/// The config, narrowed to the tables a plan folder moves (with their planned names) when one
/// is given.
fn load_with_plan(
    config: &std::path::Path,
    plan: Option<std::path::PathBuf>,
) -> anyhow::Result<(Config, Option<std::sync::Arc<ferry::plan::Plan>>)> {
    let Some(dir) = plan else {
        return Ok((Config::load(config)?, None));
    };
    let mut config = Config::load_for_plan(config)?;
    let plan = ferry::plan::Plan::load(&dir)?;
    plan.select_tables(&mut config);
    anyhow::ensure!(
        !config.tables.is_empty(),
        "the plan in {} moves no table (every row of tables.csv says move = no)",
        dir.display()
    );
    Ok((config, Some(std::sync::Arc::new(plan))))
}

/// A token cancelled by the first SIGINT/SIGTERM; a second one exits at once. The handlers are
/// installed before this returns, so a signal that comes during start-up is not lost.
fn stop_on_signal() -> anyhow::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("stopping: draining in-flight writes and flushing checkpoints (signal again to exit now)");
        token.cancel();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        std::process::exit(130);
    });
    Ok(stop)
}
