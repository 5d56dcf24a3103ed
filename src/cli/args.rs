//! The command line: what each command and option means (clap definitions).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    version,
    about = "Move live DynamoDB tables to another account, Region, name or endpoint with no downtime"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines as text, or as one JSON object per line (timestamp, level, message, table,
    /// shard and the other fields), for log collectors.
    #[arg(long, global = true, value_enum, env = "FERRY_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Copy the tables and keep them in sync from their streams until stopped (SIGINT/SIGTERM).
    Sync(SyncArgs),
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
    /// Compare the source and destination tables item by item (exit 0 only when equal; 3 when they
    /// differ; 4 when nothing differs for sure but keys could not be re-checked behind a lagging
    /// sync). Safe while `ferry sync` runs: differences are re-checked after its lag has passed.
    Verify(VerifyArgs),
    /// Show or move stream checkpoints.
    Checkpoint {
        #[command(subcommand)]
        command: CheckpointCommand,
    },
    /// Wait until the destination is caught up (and the source quiet), verify, apply the deferred
    /// destination settings and write a cutover report. The daemon keeps running.
    Cutover(CutoverArgs),
    /// After `ferry cutover --switch`: wait until the reverse direction is caught up and the
    /// destination quiet, verify, and switch back to replicating the source onto the destination.
    /// Prints `rolled back:` when the application may write to the source again.
    Rollback(RollbackArgs),
}

#[derive(Subcommand, Debug)]
pub enum CheckpointCommand {
    /// Per table and shard: position, time of the last applied record, phase.
    List {
        #[arg(short, long, default_value = "ferry.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Move a table's stream position (refused while `ferry sync` runs). Replaying from an earlier
    /// point is safe: full images applied in order converge to the source.
    #[command(group(clap::ArgGroup::new("to").required(true)))]
    Set {
        #[arg(short, long, default_value = "ferry.toml")]
        config: PathBuf,
        #[arg(long)]
        table: String,
        /// Resume at the first record at or after this time (RFC 3339), in every shard.
        #[arg(long, value_name = "RFC3339", group = "to")]
        at: Option<String>,
        /// Resume from the oldest record the stream still holds.
        #[arg(long, group = "to")]
        trim_horizon: bool,
        /// Skip everything in the stream now.
        #[arg(long, group = "to")]
        latest: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

// The options of `ferry sync` (no doc comment: clap would take it as the command's about).
#[derive(Args, Debug)]
pub struct SyncArgs {
    #[arg(short, long, default_value = "ferry.toml")]
    pub config: PathBuf,
    /// Run the reverse direction (destination → source), as `ferry cutover --switch` left it:
    /// refused for any table that was not switched. Without it, each table runs the way its
    /// state says.
    #[arg(long)]
    pub reverse: bool,
    /// Enable a NEW_AND_OLD_IMAGES stream on source tables that have none. An existing stream
    /// is never changed or disabled.
    #[arg(long)]
    pub enable_streams: bool,
    /// Accept destination tables that already hold items.
    #[arg(long)]
    pub allow_nonempty: bool,
    /// Enable point-in-time recovery on source tables with `snapshot = "export"` that have it
    /// off (the export needs it), and wait until exports are accepted.
    #[arg(long)]
    pub enable_pitr: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Never draw progress bars (they are drawn only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// For tables starting fresh: replay the stream from this time (RFC 3339) instead of the
    /// capture point (with a snapshot, the earlier of the two).
    #[arg(long, value_name = "RFC3339")]
    pub from: Option<String>,
    /// Follow a plan folder (from `ferry discover`, checked by `ferry plan`): its tables,
    /// destination names and schemas, then restore each table's settings and Lambda mappings.
    #[arg(long, value_name = "DIR")]
    pub plan: Option<PathBuf>,
    /// At most N tables create, bulk-load and restore settings at once (streaming tables do
    /// not count). Default: all at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel_tables: Option<u32>,
}

// The options of `ferry verify` (no doc comment: clap would take it as the command's about).
#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[arg(short, long, default_value = "ferry.toml")]
    pub config: PathBuf,
    /// Only this source table.
    #[arg(long)]
    pub table: Option<String>,
    /// Compare a random fraction of the table (e.g. 0.01), picked by key hash.
    #[arg(long, value_name = "FRACTION")]
    pub sample: Option<f64>,
    #[arg(long)]
    pub json: bool,
    /// Rewrite differing and missing keys from the source, and delete extra ones.
    #[arg(long)]
    pub repair: bool,
    /// Read budget per side, in read units per second (0 = unlimited).
    #[arg(long, default_value_t = 0, value_name = "UNITS")]
    pub max_read_units_per_second: u32,
    /// Strongly consistent scans (twice the read units).
    #[arg(long)]
    pub consistent: bool,
    /// TotalSegments of the comparison scans (default: the table's scan_segments, or one per
    /// ~4,000 items when that is more).
    #[arg(long)]
    pub segments: Option<u32>,
    /// Example keys to list per kind of difference.
    #[arg(long, default_value_t = 10)]
    pub examples: usize,
    /// Longest wait, per re-check round, for a running sync to apply what the source held
    /// at the moment of a read.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub recheck_wait: std::time::Duration,
}

// The options of `ferry cutover` (no doc comment: clap would take it as the command's about).
#[derive(Args, Debug)]
pub struct CutoverArgs {
    #[command(flatten)]
    pub wait: WaitArgs,
    /// Then switch: once the source is quiet and verified, ferry stops forward replication and
    /// replicates the destination back onto the source (the old table stays a live fallback;
    /// `ferry rollback` returns). Needs `ferry sync` running; prints `switched:` when the
    /// application may write to the destination.
    #[arg(long)]
    pub switch: bool,
    /// The plan folder `ferry sync --plan` followed: its Lambda mappings are enabled.
    #[arg(long, value_name = "DIR")]
    pub plan: Option<PathBuf>,
}

// The options of `ferry rollback`.
#[derive(Args, Debug)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub wait: WaitArgs,
}

// What `cutover` and `rollback` share.
#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(short, long, default_value = "ferry.toml")]
    pub config: PathBuf,
    /// Largest replication lag accepted, per table.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub max_lag: std::time::Duration,
    /// Also wait until no new change has arrived for this long (stop the application's writes
    /// first). With a switch (`--switch`, `rollback`) it is never skipped: 10s when not given.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub quiet_for: Option<std::time::Duration>,
    /// Give up after this long.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Where to write the report (default: next to the state store).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Show what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With a switch: enable a NEW_AND_OLD_IMAGES stream on the table the new direction reads
    /// when it has none.
    #[arg(long)]
    pub enable_streams: bool,
    /// With a switch: run this command (through `sh -c`) once it is done, with FERRY_DIRECTION
    /// and FERRY_SWITCH_AT set (e.g. the deploy that points the application at the other table).
    #[arg(long, value_name = "CMD")]
    pub then: Option<String>,
}
