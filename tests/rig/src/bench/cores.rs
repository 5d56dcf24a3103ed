//! The machine's cores split between the destination under measurement and everything else.
//!
//! Why: DynamoDB Local is CPU-bound, and on this rig it shares two cores with whatever else runs.
//! A ceiling's writer runs alone beside it, while in ferry's run the source JVM serves GetRecords
//! (and moto serves S3 in an export load) on the same cores, so the destination ferry faces is
//! slower than the one the ceiling measured. A real destination does not lose capacity when ferry
//! reads a stream in another account. With the split, the destination runs on cores of its own in
//! every phase, and every other process (the bench with its writers and proxy, the source JVM,
//! moto, ferry) on the rest: the ceiling and ferry face the same destination.
//!
//! `FERRY_BENCH_SHARED_CORES=1` keeps every process on every core (the layout before 2026-12-06).

use std::process::Command;

use crate::DynamoLocal;

/// Which cores the destination has, and which the rest.
#[derive(Debug, Clone)]
pub struct Cores {
    pub destination: String,
    pub rest: String,
}

impl Cores {
    /// Half the cores (rounded down, at least one) for the destination, the others for the rest;
    /// `None` with one core or `FERRY_BENCH_SHARED_CORES=1`.
    pub fn split() -> Option<Cores> {
        if std::env::var("FERRY_BENCH_SHARED_CORES").as_deref() == Ok("1") {
            return None;
        }
        let n = machine_cores();
        let half = n / 2;
        (half >= 1).then(|| Cores {
            destination: list(0, half),
            rest: list(half, n),
        })
    }

    /// Moves every thread of this process to the rest's cores; servers and children it starts
    /// afterwards inherit them.
    pub fn pin_self(&self) -> Result<(), String> {
        pin(std::process::id(), &self.rest)
    }

    /// Puts this process and `servers` back on every core (a phase whose load, not the
    /// destination's ceiling, is the point: the lag workload's writes to the source need more
    /// than the rest's cores).
    pub fn share(&self, servers: &[Option<u32>]) -> Result<(), String> {
        let all = list(0, machine_cores());
        for pid in servers.iter().flatten().copied().chain([std::process::id()]) {
            pin(pid, &all)?;
        }
        Ok(())
    }
}

/// The destination DynamoDB Local: started on its own cores after this process moved to the rest
/// (so the servers and children it starts later run there), or a plain one without a split.
pub fn start_destination(cores: &Option<Cores>) -> Result<DynamoLocal, String> {
    match cores {
        Some(c) => {
            c.pin_self()?;
            DynamoLocal::start_on(Some(&c.destination))
        }
        None => DynamoLocal::start(),
    }
}

/// The layout, for a bench's report.
pub fn layout(cores: &Option<Cores>) -> String {
    match cores {
        Some(c) => format!(
            "destination JVM on cores {}, everything else on cores {}",
            c.destination, c.rest
        ),
        None => "every process on every core (FERRY_BENCH_SHARED_CORES=1 or one core)".into(),
    }
}

/// Every thread of `pid` onto the cores `cpus`.
fn pin(pid: u32, cpus: &str) -> Result<(), String> {
    let out = Command::new("taskset")
        .args(["--all-tasks", "--cpu-list", "--pid", cpus, &pid.to_string()])
        .output()
        .map_err(|e| format!("running taskset (util-linux): {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("taskset: {}", String::from_utf8_lossy(&out.stderr))),
    }
}

/// The machine's online cores, whatever this process's own affinity (once pinned, the standard
/// library counts only the cores it may run on).
pub fn machine_cores() -> usize {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    match count(&online) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// The cores in a kernel CPU list like `0-1,4` (0 for what is not one).
fn count(cpus: &str) -> usize {
    cpus.trim()
        .split(',')
        .filter_map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().ok()?.checked_sub(a.parse().ok()?).map(|n| n + 1),
            None => r.parse::<usize>().ok().map(|_| 1),
        })
        .sum()
}

fn list(from: usize, to: usize) -> String {
    match to - from {
        1 => from.to_string(),
        _ => format!("{from}-{}", to - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_their_cores_and_ranges_print_as_taskset_reads_them() {
        assert_eq!(count("0-1\n"), 2);
        assert_eq!(count("0-3,6,8-9"), 7);
        assert_eq!(count(""), 0);
        assert_eq!(count("3-1"), 0);
        assert_eq!(
            (list(0, 1), list(1, 2), list(2, 4)),
            ("0".into(), "1".into(), "2-3".into())
        );
    }
}
