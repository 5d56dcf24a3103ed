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
        /// Serve Prometheus metrics at http://ADDR/metrics.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
        /// Never draw progress bars (they are drawn only on a terminal anyway).
        #[arg(long)]
        no_progress: bool,
        /// Follow a plan folder (from `ferry discover`, checked by `ferry plan`): its tables,
        /// destination names and schemas, then restore each table's settings and Lambda mappings.
        #[arg(long, value_name = "DIR")]
        plan: Option<PathBuf>,
        /// At most N tables create, bulk-load and restore settings at once (streaming tables do
        /// not count). Default: all at once.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        parallel_tables: Option<u32>,
    },
    /// Read every source table (read-only) and write a plan folder to review and edit.
    Discover {
        #[arg(short, long, default_value = "ferry.toml")]
        config: PathBuf,
        #[arg(long, value_name = "DIR", default_value = "plan")]
        out: PathBuf,
        /// Overwrite an existing plan (it may hold edits).
        #[arg(long)]
        force: bool,
    },
    /// Check an edited plan and print what `ferry sync --plan` would do, with every precondition.
    /// Writes nothing; exits non-zero when the plan is invalid or a precondition fails.
    Plan {
        #[arg(short, long, default_value = "ferry.toml")]
        config: PathBuf,
        #[arg(long, value_name = "DIR", default_value = "plan")]
        plan: PathBuf,
    },
    /// Show each table's phase, progress and lag from the state store (works while sync runs).
    Status {
        #[arg(short, long, default_value = "ferry.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}
