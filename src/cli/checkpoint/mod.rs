//! `ferry checkpoint list | set`: reading ([`list`]) and moving ([`set`]) a table's checkpoints by
//! hand. The state store only keeps rows; deciding what a move means lives here, with the command.

mod list;
mod set;

use std::path::Path;
use std::process::ExitCode;

use super::{CheckpointCommand, print_json, sqlite_store};
use crate::config::{ChangeSource, Config};
use crate::error::{Error, Result};
use set::Target;

pub(super) async fn run(command: CheckpointCommand) -> Result<ExitCode> {
    match command {
        CheckpointCommand::List { config, json } => list(&config, json),
        CheckpointCommand::Set {
            config,
            table,
            at,
            trim_horizon,
            latest,
            yes,
        } => {
            // The configuration is read before the time is parsed, as it always was.
            let config = Config::load(&config)?;
            let target = match (at, trim_horizon, latest) {
                (Some(t), _, _) => Target::At(super::commands::parse_time(&t)?),
                (None, true, _) => Target::TrimHorizon,
                _ => Target::Latest,
            };
            set(&config, &table, target, yes).await
        }
    }
}

fn list(config: &Path, json: bool) -> Result<ExitCode> {
    let config = Config::load(config)?;
    let store = sqlite_store(&config)?;
    let names: Vec<String> = config.tables.iter().map(|t| t.source.clone()).collect();
    let list = list::list(&store, &names)?;
    if json {
        print_json(&list)?;
    } else {
        print!("{}", list::render_list(&list));
    }
    Ok(ExitCode::SUCCESS)
}

async fn set(config: &Config, table: &str, target: Target, yes: bool) -> Result<ExitCode> {
    let Some(t) = config.table(table) else {
        return Err(Error::fatal(format!(
            "table {table:?} is not in {}",
            config.path.display()
        )));
    };
    let store = sqlite_store(config)?;
    if matches!(t.change_source, ChangeSource::Sqs(_)) {
        let plan = set::plan_set_queue(&store, table, target)?;
        print!("{}", plan.describe());
        if !yes && !confirm()? {
            println!("nothing changed");
            return Ok(ExitCode::FAILURE);
        }
        plan.apply(&store)?;
        println!("done: the next `ferry sync` drops queued records before that point");
        return Ok(ExitCode::SUCCESS);
    }
    let src = crate::config::build_clients("source", &config.source).await?;
    let api = crate::source::streams::api::SdkStreams(src.streams.clone());
    let plan = set::plan_set(&store, &api, table, target).await?;
    print!("{}", plan.describe());
    if !yes && !confirm()? {
        println!("nothing changed");
        return Ok(ExitCode::FAILURE);
    }
    plan.apply(&store)?;
    println!("done: the next `ferry sync` resumes from there");
    Ok(ExitCode::SUCCESS)
}

fn confirm() -> Result<bool> {
    use std::io::Write;
    print!("apply? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
