//! Progress on a terminal: one bar per table, redrawn every second with the line the caller gives
//! (the daemon gives `ferry status`'s line, so both always agree; this
//! module knows nothing of the state store, which keeps telemetry below status).

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::TableStats;
use crate::error::Result;

pub struct Progress {
    bars: Vec<(String, ProgressBar)>,
    _multi: Option<MultiProgress>,
}

impl Progress {
    pub fn new(enabled: bool, tables: &[(String, String, Arc<TableStats>)]) -> Progress {
        if !enabled {
            return Progress {
                bars: Vec::new(),
                _multi: None,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template("{spinner} {prefix:<24} {wide_msg}").expect("valid template");
        let bars = tables
            .iter()
            .map(|(name, _, _)| {
                let b = multi.add(
                    ProgressBar::new_spinner()
                        .with_style(style.clone())
                        .with_prefix(name.clone()),
                );
                b.enable_steady_tick(Duration::from_millis(250));
                (name.clone(), b)
            })
            .collect();
        let _ = BARS.set(multi.clone());
        Progress {
            bars,
            _multi: Some(multi),
        }
    }

    /// Redraws every bar with `line(table)`; a table without a line keeps its last one.
    /// The tables that have a bar.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.bars.iter().map(|(name, _)| name.as_str())
    }

    pub fn update(&self, line: impl Fn(&str) -> Result<Option<String>>) -> Result<()> {
        for (name, bar) in &self.bars {
            if let Some(s) = line(name)? {
                bar.set_message(s);
            }
        }
        Ok(())
    }

    pub fn finish(&self) {
        for (_, b) in &self.bars {
            b.finish();
        }
    }
}

/// The bars on screen, if any: log lines must be printed above them, not through them.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// A `tracing` writer for stderr that keeps log lines from tearing the progress bars.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

/// One log event, buffered and printed whole.
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        match BARS.get() {
            Some(multi) if !multi.is_hidden() => {
                let _ = multi.println(String::from_utf8_lossy(&self.0).trim_end_matches('\n'));
            }
            _ => {
                let _ = std::io::stderr().write_all(&self.0);
            }
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::with_capacity(256))
    }
}
