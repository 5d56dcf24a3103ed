//! `ferry checkpoint list | set`: reading ([`list`]) and moving ([`set`]) a table's checkpoints by
//! hand. The state store only keeps rows; deciding what a move means lives here, with the command.

mod guard;
mod list;
mod set;

use std::path::Path;
use std::process::ExitCode;

use super::{CheckpointCommand, existing_store, print_json};
use crate::checkpoint::Direction;
use crate::config::{ChangeSource, Config};
use crate::error::{Error, Result};
use set::Target;

pub(super) async fn run(command: CheckpointCommand) -> Result<ExitCode> {
    match command {
        CheckpointCommand::List { config, json } => list(&config, json).await,
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

async fn list(config: &Path, json: bool) -> Result<ExitCode> {
    let config = Config::load(config)?;
    let store = existing_store(&config).await?;
    let names: Vec<String> = config.tables.iter().map(|t| t.source.clone()).collect();
    let list = list::list(store.as_ref(), &names).await?;
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
    // Held from planning to writing: no daemon may run the table meanwhile.
    let guarded = guard::take(config, table).await?;
    let store = guarded.store.as_ref();
    let done = async {
        // After `cutover --switch` the pair reads the destination's stream.
        let reverse = store
            .table(table)
            .await?
            .is_some_and(|r| r.direction == Direction::Reverse);
        if !reverse && matches!(t.change_source, ChangeSource::Sqs(_)) {
            let plan = set::plan_set_queue(store, table, target).await?;
            print!("{}", plan.describe());
            if !(yes || confirm()?) {
                return Ok("");
            }
            plan.apply(store).await?;
            return Ok("the next `ferry sync` drops queued records before that point");
        }
        let (label, side) = match reverse {
            true => ("destination", &config.destination),
            false => ("source", &config.source),
        };
        let read = crate::config::build_clients(label, side).await?;
        let api = crate::source::streams::api::SdkStreams(read.streams.clone(), Default::default());
        let plan = set::plan_set(store, &api, table, target).await?;
        print!("{}", plan.describe());
        if !(yes || confirm()?) {
            return Ok("");
        }
        plan.apply(store).await?;
        Ok::<_, Error>("the next `ferry sync` resumes from there")
    }
    .await;
    guarded.release().await;
    match done? {
        "" => {
            println!("nothing changed");
            Ok(ExitCode::FAILURE)
        }
        next => {
            println!("done: {next}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn confirm() -> Result<bool> {
    use std::io::Write;
    print!("apply? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
