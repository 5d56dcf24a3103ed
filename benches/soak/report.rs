//! The soak's figures: samples grouped into windows, growth after the warm-up window, the printed
//! table and verdict, and `<target>/ferry-bench/soak.json` (figures, windows and every sample).

use std::collections::BTreeSet;

use ferry_rig::compare::Diff;
use serde_json::{Value, json};

/// Growth allowed after the first window (the limit), for the verdict's words only.
const GROWTH_LIMIT_PCT: f64 = 10.0;

pub struct Args {
    pub secs: f64,
    pub rollover_secs: f64,
    pub kill_secs: f64,
    pub wps: u64,
    pub window_secs: f64,
}

/// One look at the running ferry (`life` counts ferry processes: 1, then +1 per restart).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    pub t: f64,
    pub life: u32,
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub fds: u64,
    /// `records_applied` of `ferry status` (kept in the state store, so it spans lives).
    pub applied: i64,
    pub lag: Option<f64>,
    /// Source operations made so far.
    pub writes: u64,
}

#[derive(Default)]
pub struct Run {
    pub samples: Vec<Sample>,
    pub kills: Vec<f64>,
    pub rollovers: Vec<f64>,
    /// ferry exits nobody asked for, and table errors `ferry status` showed.
    pub incidents: Vec<String>,
}

/// How the run ended.
pub struct End {
    pub operations: u64,
    /// Seconds from the writes' stop until `ferry status` said caught up (None: it never did).
    pub catch_up_s: Option<f64>,
    pub diff: Diff,
    /// `ferry verify --json` (Null if it printed none) and whether it found the tables equal.
    pub verify: Value,
    pub verify_equal: bool,
}

/// Figures of one window of the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Window {
    pub from_s: f64,
    pub to_s: f64,
    pub lives: BTreeSet<u32>,
    pub samples: usize,
    pub max_rss_mb: f64,
    pub max_hwm_mb: f64,
    pub max_fds: u64,
    pub writes: u64,
    pub applied: i64,
    pub max_lag_s: Option<f64>,
    pub kills: usize,
    pub rollovers: usize,
}

fn windows(run: &Run, args: &Args) -> Vec<Window> {
    let n = (args.secs / args.window_secs).ceil() as usize;
    let (mut prev_writes, mut prev_applied) = (0u64, 0i64);
    (0..n)
        .map(|i| {
            let from = i as f64 * args.window_secs;
            let to = (from + args.window_secs).min(args.secs);
            let inside = |t: f64| t >= from && t < to;
            let s: Vec<&Sample> = run.samples.iter().filter(|s| inside(s.t)).collect();
            let (writes, applied) = s.last().map_or((prev_writes, prev_applied), |l| (l.writes, l.applied));
            let w = Window {
                from_s: from,
                to_s: to,
                lives: s.iter().map(|s| s.life).collect(),
                samples: s.len(),
                max_rss_mb: s.iter().map(|s| s.rss_kb).max().unwrap_or(0) as f64 / 1024.0,
                max_hwm_mb: s.iter().map(|s| s.hwm_kb).max().unwrap_or(0) as f64 / 1024.0,
                max_fds: s.iter().map(|s| s.fds).max().unwrap_or(0),
                writes: writes - prev_writes,
                applied: applied - prev_applied,
                max_lag_s: s.iter().filter_map(|s| s.lag).reduce(f64::max),
                kills: run.kills.iter().filter(|t| inside(**t)).count(),
                rollovers: run.rollovers.iter().filter(|t| inside(**t)).count(),
            };
            (prev_writes, prev_applied) = (writes, applied);
            w
        })
        .collect()
}

/// Growth in % of the last window's figure over the first window after the warm-up one.
fn growth(ws: &[Window], figure: impl Fn(&Window) -> f64) -> Option<f64> {
    let (first, last) = (ws.get(1)?, ws.last()?);
    (figure(first) > 0.0).then(|| (figure(last) / figure(first) - 1.0) * 100.0)
}

fn pct(g: Option<f64>) -> String {
    g.map_or("n/a".into(), |g| format!("{g:+.1}%"))
}

fn mmss(secs: f64) -> String {
    let s = secs.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

fn print_table(ws: &[Window]) {
    println!(
        "| window | lives | max RSS MB | max VmHWM MB | max fds | writes/s | applied | max lag s | kills | rollovers |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for w in ws {
        let lives: Vec<String> = w.lives.iter().map(u32::to_string).collect();
        println!(
            "| {}–{} | {} | {:.1} | {:.1} | {} | {:.0} | {} | {} | {} | {} |",
            mmss(w.from_s),
            mmss(w.to_s),
            lives.join(","),
            w.max_rss_mb,
            w.max_hwm_mb,
            w.max_fds,
            w.writes as f64 / (w.to_s - w.from_s),
            w.applied,
            w.max_lag_s.map_or("-".into(), |l| format!("{l:.1}")),
            w.kills,
            w.rollovers
        );
    }
}

/// Prints the table and the verdict and writes the JSON; true when the tables are equal.
pub fn report(args: &Args, run: &Run, end: &End) -> Result<bool, String> {
    let ws = windows(run, args);
    let rss = growth(&ws, |w| w.max_rss_mb);
    let fds = growth(&ws, |w| w.max_fds as f64);
    let equal = end.diff.is_equal() && end.verify_equal;
    println!(
        "\nsoak: {:.1} min, {} writes/s asked, {} operations made, {} kills, {} rollovers, {} ferry lives",
        args.secs / 60.0,
        args.wps,
        end.operations,
        run.kills.len(),
        run.rollovers.len(),
        run.samples.last().map_or(0, |s| s.life)
    );
    print_table(&ws);
    match end.catch_up_s {
        Some(s) => println!("caught up {s:.1} s after the writes stopped; compare: {}", end.diff),
        None => println!("NOT caught up 600 s after the writes stopped; compare: {}", end.diff),
    }
    println!(
        "ferry verify: equal {} ({} source items, {} destination items)",
        end.verify_equal, end.verify[0]["source_items"], end.verify[0]["destination_items"]
    );
    for i in &run.incidents {
        println!("incident: {i}");
    }
    let judge = |g: Option<f64>| match g {
        Some(g) if g <= GROWTH_LIMIT_PCT => "ok",
        Some(_) => "OVER 10%",
        None => "n/a: no window after the first",
    };
    println!(
        "verdict: RSS growth after the first window {} ({}), fd growth {} ({}), tables equal: {}{}",
        pct(rss),
        judge(rss),
        pct(fds),
        judge(fds),
        if equal { "yes" } else { "NO" },
        if run.incidents.is_empty() {
            ""
        } else {
            "; see incidents"
        }
    );
    ferry_rig::bench::write_report(
        "soak",
        &json!({
            "minutes": args.secs / 60.0,
            "writes_per_second": args.wps,
            "rollover_secs": args.rollover_secs,
            "kill_secs": args.kill_secs,
            "window_secs": args.window_secs,
            "operations": end.operations,
            "kills": run.kills.len(),
            "rollovers": run.rollovers.len(),
            "windows": ws,
            "rss_growth_pct": rss,
            "fd_growth_pct": fds,
            "catch_up_secs": end.catch_up_s,
            "compare": end.diff.to_string(),
            "verify": end.verify,
            "tables_equal": equal,
            "incidents": run.incidents,
            "samples": run.samples,
        }),
    )?;
    Ok(equal)
}
