//! The `ferry` binary: parses the command line, runs it, and is the only place that exits.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ferry::cli::{Cli, LogFormat};
use tokio_util::sync::CancellationToken;

// The apply path allocates per attribute; mimalloc spends far fewer cycles on it than glibc.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging(cli.log_format);
    let run = || -> anyhow::Result<ExitCode> {
        let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        Ok(rt.block_on(ferry::cli::run(cli, stop_on_signal))?)
    };
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (above the progress bars), filtered by `FERRY_LOG`. The SDK's crates are
/// held at debug whatever it asks: their trace lines carry whole request and response bodies,
/// and so item values.
fn logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| "info,aws=warn".into());
    let no_bodies = tracing_subscriber::filter::filter_fn(|m| {
        !(m.target().starts_with("aws_") && *m.level() == tracing::Level::TRACE)
    });
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ferry::telemetry::progress::LogWriter);
    match format {
        LogFormat::Text => fmt
            .with_ansi(std::io::stderr().is_terminal())
            .finish()
            .with(no_bodies)
            .init(),
        // One object per line, the event's fields at the top level beside level and message.
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .finish()
            .with(no_bodies)
            .init(),
    }
}

/// First SIGINT/SIGTERM: stop reading, drain, flush, exit 0. A second one exits at once (a
/// checkpoint is never ahead of durable writes, so even that loses nothing). The handlers are
/// installed before this returns, so a signal that comes during start-up is not lost.
fn stop_on_signal() -> ferry::error::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| ferry::error::Error::fatal(format!("installing the SIGTERM handler: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| ferry::error::Error::fatal(format!("installing the SIGINT handler: {e}")))?;
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
