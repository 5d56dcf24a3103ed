//! The command line: its arguments ([`args`]) and what each command does with them
//! ([`commands`], [`checkpoint`]). Handlers return an exit code; only `main.rs` exits.

mod args;
mod checkpoint;
mod commands;

pub use args::{CheckpointCommand, Cli, Command, CutoverArgs, SyncArgs, VerifyArgs};
pub use commands::{Signals, run};

use std::process::ExitCode;

use crate::checkpoint::Store;
use crate::config::Config;
use crate::error::{Error, Result};

/// Prints `v` as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::fatal(format!("cannot print JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// The state store a daemon wrote; an error naming its path if there is none yet.
fn existing_store(config: &Config) -> Result<Store> {
    Store::open_existing(&config.state_path)?.ok_or_else(|| {
        Error::fatal(format!(
            "no state store at {} (has `ferry sync` run?)",
            config.state_path.display()
        ))
    })
}

/// 0 when `ok`, else 1.
fn code(ok: bool) -> ExitCode {
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
