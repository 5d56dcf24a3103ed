//! Where a phase's CPU goes: the destination's and the source's DynamoDB Local JVMs, the writer
//! (this process, for a ceiling) and ferry. Every process shares the machine's cores, so a phase
//! that keeps them all busy is bound by the CPU each change costs across all of them, not by any
//! one process: the split says which part of that cost is ferry's.

use std::time::Instant;

use crate::bench;

/// CPU times at the start of a phase.
pub struct Meter {
    parts: Vec<(&'static str, u32, f64)>,
    t0: Instant,
}

/// CPU seconds per process over a phase, and the phase's wall time.
pub struct Split {
    parts: Vec<(&'static str, f64)>,
    wall: f64,
}

impl Meter {
    /// Processes without a pid (a server this bench did not start) are left out.
    pub fn start(pids: &[(&'static str, Option<u32>)]) -> Meter {
        let parts = pids
            .iter()
            .filter_map(|(name, pid)| {
                let pid = (*pid)?;
                Some((*name, pid, bench::cpu_seconds(pid)?))
            })
            .collect();
        Meter {
            parts,
            t0: Instant::now(),
        }
    }

    /// `extra`: processes started during the phase, with all their CPU time.
    pub fn stop(self, extra: &[(&'static str, f64)]) -> Split {
        let mut parts: Vec<_> = self
            .parts
            .iter()
            .filter_map(|(name, pid, at_start)| Some((*name, bench::cpu_seconds(*pid)? - at_start)))
            .collect();
        parts.extend_from_slice(extra);
        Split {
            parts,
            wall: self.t0.elapsed().as_secs_f64(),
        }
    }
}

impl Split {
    /// CPU seconds of the process named `name` over the phase (NaN if it was not measured).
    pub fn of(&self, name: &str) -> f64 {
        self.parts
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(f64::NAN, |(_, c)| *c)
    }

    /// The phase's wall time, seconds.
    pub fn wall(&self) -> f64 {
        self.wall
    }

    /// "destination JVM 1.20 s, writer 0.40 s = 1.60 s CPU per 100k changes; 1.9 of 2 cores busy".
    pub fn describe(&self, changes: usize) -> String {
        let per = 100_000.0 / changes.max(1) as f64;
        let total: f64 = self.parts.iter().map(|(_, c)| c).sum();
        let list: Vec<String> = self
            .parts
            .iter()
            .map(|(name, c)| format!("{name} {:.2} s", c * per))
            .collect();
        let cores = bench::machine_cores();
        format!(
            "{} = {:.2} s CPU per 100k changes; {:.2} of {cores} cores busy",
            list.join(", "),
            total * per,
            total / self.wall.max(1e-9)
        )
    }
}
