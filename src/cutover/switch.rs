//! `ferry cutover --switch` and `ferry rollback`: after the usual waits and verify, ask the
//! running daemon to switch each pair's direction, wait until the new direction has applied
//! past its switch point S, and only then tell the operator to move the application's writes.
//!
//! The command holds the switch lock while it waits: the daemon carries out a request only while
//! it is held, so a command that died or timed out leaves no switch behind that nobody announces.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::checkpoint::{DaemonLock, Direction, Phase, StateStore, SwitchRequest, TableRow};
use crate::clock::{fmt_ms, now_ms};
use crate::config::{Clients, Config, StateConfig};
use crate::discover::{self, create};
use crate::error::{Error, Result};
use crate::retry::Policy;

/// The switch as the report records it.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchReport {
    /// The direction entered.
    pub to: Direction,
    pub tables: Vec<TableSwitch>,
}

impl SwitchReport {
    /// The latest table's S: every pair replicates the new way from then on.
    fn at(&self) -> &str {
        self.tables.iter().map(|t| t.at.as_str()).max().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TableSwitch {
    pub table: String,
    /// S (RFC 3339): the new direction replays every change after it.
    pub at: String,
    pub at_ms: i64,
}

/// Refuses what cannot switch, before anything waits or changes; the switch lock, held until the
/// command ends. With `enable_streams`, turns on the stream the new direction reads where off.
pub async fn prepare(
    config: &Config,
    store: &dyn StateStore,
    (src, dst): (&Clients, &Clients),
    to: Direction,
    (enable_streams, dry_run): (bool, bool),
) -> Result<DaemonLock> {
    let StateConfig::Sqlite(path) = &config.state else {
        return Err(Error::fatal(
            "switching direction needs the SQLite state for now ([state] in DynamoDB shares shard leases between workers)",
        ));
    };
    let mut problems = Vec::new();
    for t in &config.tables {
        let row = store.table(&t.source).await?;
        let have = row.as_ref().map_or(Direction::Forward, |r| r.direction);
        if have == to {
            problems.push(format!(
                "table {}: already replicates {} ({})",
                t.source,
                to.as_str(),
                to.arrow()
            ));
        } else if let Err(e) = t.reversed() {
            problems.push(e.to_string());
        } else if let Err(e) = stream_for(t, (src, dst), to, (enable_streams, dry_run)).await {
            problems.push(format!("table {}: {e}", t.source));
        }
    }
    if !problems.is_empty() {
        return Err(Error::fatal(problems.join("\n")));
    }
    DaemonLock::acquire_switch(path)
}

/// The table the new direction reads must have a stream, on before S.
async fn stream_for(
    t: &crate::config::TableConfig,
    (src, dst): (&Clients, &Clients),
    to: Direction,
    (enable, dry_run): (bool, bool),
) -> Result<()> {
    let (clients, name, side) = match to {
        Direction::Reverse => (dst, &t.destination, "destination"),
        Direction::Forward => (src, &t.source, "source"),
    };
    let d = discover::describe(clients, name, Policy::STARTUP)
        .await?
        .ok_or_else(|| Error::fatal(format!("{side} table {name:?} does not exist")))?;
    if d.stream_specification.is_some_and(|s| s.stream_enabled) {
        return Ok(());
    }
    if !enable {
        return Err(Error::fatal(format!(
            "{side} table {name:?} has no stream, and the {} direction reads it: pass --enable-streams \
             (ferry enables NEW_AND_OLD_IMAGES), or enable one yourself",
            to.as_str()
        )));
    }
    if dry_run {
        return Ok(()); // it would be enabled
    }
    create::enable_stream(clients, name).await?;
    tracing::info!(table = %name, "enabled a NEW_AND_OLD_IMAGES stream on the {side} table for the {} direction", to.as_str());
    Ok(())
}

/// Asks the daemon to switch every table to `to`, and waits until each one has, and has applied
/// past its switch point.
pub async fn carry_out(
    config: &Config,
    store: &dyn StateStore,
    to: Direction,
    timeout: Duration,
) -> Result<SwitchReport> {
    let asked_ms = now_ms();
    for t in &config.tables {
        store.request_switch(&t.source, SwitchRequest { to, asked_ms }).await?;
    }
    let deadline = Instant::now() + timeout;
    let mut last_log = Instant::now();
    loop {
        let mut tables = Vec::new();
        let mut waiting = Vec::new();
        for t in &config.tables {
            let row = store
                .table(&t.source)
                .await?
                .ok_or_else(|| Error::fatal(format!("table {}: gone from the state store", t.source)))?;
            if let Some(e) = &row.error {
                return Err(Error::fatal(format!("table {}: stopped with an error: {e}", t.source)));
            }
            match switched(&row, to, asked_ms) {
                Some(at_ms) => tables.push(TableSwitch {
                    table: t.source.clone(),
                    at: fmt_ms(at_ms),
                    at_ms,
                }),
                None => waiting.push(format!(
                    "{} ({}, {})",
                    t.source,
                    row.direction.as_str(),
                    row.phase.as_str()
                )),
            }
        }
        if waiting.is_empty() {
            return Ok(SwitchReport { to, tables });
        }
        if Instant::now() >= deadline {
            return Err(Error::fatal(format!(
                "timed out after {timeout:?} waiting for the switch to {}: {} (see `ferry status`: the \
                 direction there is the one ferry runs)",
                to.as_str(),
                waiting.join(", ")
            )));
        }
        if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = Instant::now();
            tracing::info!(waiting = ?waiting, "switch: waiting for the daemon");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// S, once `row` replicates `to` since a switch after `asked_ms` and has applied past S.
fn switched(row: &TableRow, to: Direction, asked_ms: i64) -> Option<i64> {
    let point = row
        .switches
        .last()
        .filter(|p| p.direction == to && p.at_ms >= asked_ms)?;
    let past = row.applied_as_of_ms.is_some_and(|a| a > point.at_ms);
    (row.direction == to && row.phase == Phase::Streaming && past).then_some(point.at_ms)
}

/// Runs the operator's `--then` command through `sh -c`, told the direction and S.
pub fn run_then(cmd: &str, switch: &SwitchReport) -> Result<()> {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("FERRY_DIRECTION", switch.to.as_str())
        .env("FERRY_SWITCH_AT", switch.at())
        .status()
        .map_err(|e| Error::fatal(format!("--then {cmd:?}: cannot run it: {e}")))?;
    if !status.success() {
        return Err(Error::fatal(format!(
            "--then {cmd:?} failed ({status}); the switch itself is done"
        )));
    }
    Ok(())
}

/// The line that tells the operator what to do now.
pub fn announce(switch: &SwitchReport) -> String {
    let at = switch.at();
    match switch.to {
        Direction::Reverse => format!(
            "switched: ferry now replicates destination → source (from {at}); point the application's writes at the destination now"
        ),
        Direction::Forward => format!(
            "rolled back: ferry now replicates source → destination (from {at}); point the application's writes back at the source now"
        ),
    }
}
