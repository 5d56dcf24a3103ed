//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    version,
    about = "Move live DynamoDB tables to another account, Region, name or endpoint with no downtime"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Copy the tables and keep them in sync from their streams until stopped (SIGINT/SIGTERM).
    Sync {
        #[arg(short, long, default_value = "ferry.toml")]
        config: PathBuf,
        /// Enable a NEW_AND_OLD_IMAGES stream on source tables that have none. An existing stream
        /// is never changed or disabled.
        #[arg(long)]
        enable_streams: bool,
        /// Accept destination tables that already hold items.
        #[arg(long)]
        allow_nonempty: bool,
        /// Enable point-in-time recovery on source tables with `snapshot = "export"` that have it
        /// off (the export needs it), and wait until exports are accepted.
        #[arg(long)]
        enable_pitr: bool,
        /// Serve Prometheus metrics at http://ADDR/metrics.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
        /// Never draw progress bars (they are drawn only on a terminal anyway).
        #[arg(long)]
        no_progress: bool,
    },
    /// Show each table's phase, progress and lag from the state store (works while sync runs).
    Status {
        #[arg(short, long, default_value = "ferry.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}
