//! The `ferry` binary: parses the command line, runs it, and is the only place that exits.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ferry::cli::{Cli, Command};
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
            metrics,
            no_progress,
            plan,
            parallel_tables,
        } => {
            let (config, plan) = match plan {
                None => (Config::load(&config)?, None),
                Some(dir) => {
                    let mut config = Config::load_for_plan(&config)?;
                    let plan = ferry::plan::Plan::load(&dir)?;
                    plan.select_tables(&mut config);
                    anyhow::ensure!(
                        !config.tables.is_empty(),
                        "the plan in {} moves no table (every row of tables.csv says move = no)",
                        dir.display()
                    );
                    (config, Some(std::sync::Arc::new(plan)))
                }
            };
            if let Some(addr) = metrics {
                ferry::telemetry::metrics::serve(addr)?;
            }
            let stop = CancellationToken::new();
            tokio::spawn(on_signal(stop.clone()));
            let opts = ferry::sync::SyncOptions {
                checks: ferry::discover::check::CheckOptions {
                    enable_streams,
                    allow_nonempty,
                },
                progress: !no_progress && std::io::stderr().is_terminal(),
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
    }
}

/// First SIGINT/SIGTERM: stop reading, drain, flush, exit 0. A second one exits at once (a
/// checkpoint is never ahead of durable writes, so even that loses nothing).
async fn on_signal(stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("stopping: draining in-flight writes and flushing checkpoints (signal again to exit now)");
    stop.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    std::process::exit(130);
}
