//! The command line: its arguments ([`args`]) and what each command does with them
//! ([`commands`], [`checkpoint`]). Handlers return an exit code; only `main.rs` exits.

mod args;
mod checkpoint;
mod commands;

pub use args::{CheckpointCommand, Cli, Command, CutoverArgs, LogFormat, SyncArgs, VerifyArgs};
pub use commands::{Signals, run};

use std::process::ExitCode;

use std::sync::Arc;

use crate::checkpoint::{StateStore, backend};
use crate::config::Config;
use crate::error::{Error, Result};

/// Prints `v` as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::fatal(format!("cannot print JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// The state store a daemon wrote; an error naming it if there is none yet.
async fn existing_store(config: &Config) -> Result<Arc<dyn StateStore>> {
    backend::existing(&config.state).await?.ok_or_else(|| no_store(config))
}

fn no_store(config: &Config) -> Error {
    Error::fatal(format!(
        "no {} (has `ferry sync` run?)",
        backend::describe(&config.state)
    ))
}

/// 0 when `ok`, else 1.
fn code(ok: bool) -> ExitCode {
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
