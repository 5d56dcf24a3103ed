//! The e2e bench's output: the table printed, `e2e.json`, and the chart `docs/bench/e2e.png`.

use super::*;

pub(super) fn print_table(title: &str, ceiling: f64, mixes: &[MixResult], lag: &Lag, args: &Args) {
    let row = |label: &str, f: &dyn Fn(&MixResult) -> String| {
        let cells: Vec<String> = mixes.iter().map(|m| format!("{:<12}", f(m))).collect();
        println!("{label:<31}{}", cells.join(" "));
    };
    println!("\n{title}");
    row("metric", &|m| m.name.to_string());
    row("ceiling, fresh puts /s", &|_| format!("{ceiling:.0}"));
    row("ceiling, this mix /s", &|m| format!("{:.0}", m.ceiling));
    row("  before / after ferry", &|m| {
        format!("{:.0} / {:.0}", m.ceiling_before, m.ceiling_after)
    });
    row("source stream writes /s", &|m| format!("{:.0}", m.source_write_rate));
    row("naive baseline /s (prefix)", &|m| format!("{:.0}", m.naive_rate));
    row("ferry /s", &|m| format!("{:.0}", m.ferry.rate()));
    row("ferry: first applied seen (s)", &|m| {
        format!("{:.1}", m.ferry.first_secs)
    });
    row("ferry / ceiling (this mix)", &|m| {
        format!("{:.2}", m.ferry.rate() / m.ceiling)
    });
    row("ferry / ceiling (fresh puts)", &|m| {
        format!("{:.2}", m.ferry.rate() / ceiling)
    });
    row("ferry / naive", &|m| format!("{:.1}x", m.ferry.rate() / m.naive_rate));
    row("peak RSS (MB)", &|m| {
        format!("{:.0}", m.ferry.peak_rss_kb as f64 / 1024.0)
    });
    row("CPU s per 100k records", &|m| format!("{:.2}", m.ferry.cpu_per_100k()));
    let q = |p| bench::quantile(&lag.sorted_ms, p);
    println!(
        "{:<31}{:.0} / {:.0} / {:.0}   (steady {} writes/s for {} s; {} writes, {:.0}/s achieved)",
        "lag p50 / p99 / max (ms)",
        q(0.5),
        q(0.99),
        q(1.0),
        args.rate,
        args.lag_secs,
        lag.report.writes,
        lag.report.writes as f64 / lag.report.write_secs
    );
    let steady = |p| bench::quantile(&lag.steady_sorted_ms, p);
    println!(
        "{:<31}{:.0} / {:.0} / {:.0}   (the writes after the first {} s)",
        "  steady p50 / p99 / max (ms)",
        steady(0.5),
        steady(0.99),
        steady(1.0),
        super::lag::LAG_RAMP.as_secs()
    );
    let achieved = lag.report.writes as f64 / lag.report.write_secs;
    if achieved < 0.95 * args.rate as f64 {
        println!(
            "NOTE: the lag workload reached only {achieved:.0} of {} writes/s: the endpoint could not \
             take more PutItems alongside ferry on this machine.",
            args.rate
        );
    }
    let prefix = mixes.first().map_or(0, |m| m.naive_records);
    println!(
        "\nceiling, fresh puts: N new ~1 KB items, tuned concurrent BatchWriteItem (best of {CEILING_WRITERS:?} writers).\n\
         ceiling, this mix: the same N changes ferry replays, written by a tuned concurrent BatchWriteItem load that knows \
         them in advance (best of {MIX_CEILING_WRITERS:?} writers; no coalescing), before ferry's run and again \
         after it with the same writers; ferry is judged on the mean.\n\
         naive baseline: sequential GetRecords + one PutItem/DeleteItem per record, measured on the \
         first {prefix} records of each stream.\nferry /s: from spawn until ferry_records_applied_total = N \
         (ferry publishes metrics every 100 ms, so up to ~0.1 s is included in the time)."
    );
}

pub(super) fn json_report(title: &str, ceiling: f64, mixes: &[MixResult], lag: &Lag, args: &Args) -> serde_json::Value {
    let mix = |m: &MixResult| {
        json!({
            "source_write_rate_per_s": m.source_write_rate,
            "naive_prefix_records": m.naive_records,
            "naive_records_per_s": m.naive_rate,
            "ferry_records": m.ferry.records,
            "ferry_seconds": m.ferry.secs,
            "ferry_first_applied_seen_seconds": m.ferry.first_secs,
            "ferry_records_per_s": m.ferry.rate(),
            "ceiling_this_mix_per_s": m.ceiling,
            "ceiling_this_mix_before_after_per_s": [m.ceiling_before, m.ceiling_after],
            "ferry_over_ceiling": m.ferry.rate() / m.ceiling,
            "ferry_over_fresh_puts_ceiling": m.ferry.rate() / ceiling,
            "ferry_over_naive": m.ferry.rate() / m.naive_rate,
            "ferry_peak_rss_kb": m.ferry.peak_rss_kb,
            "ferry_cpu_seconds": m.ferry.cpu_secs,
            "ferry_cpu_seconds_per_100k_records": m.ferry.cpu_per_100k(),
            "compare": m.ferry.compare,
        })
    };
    let q = |p| bench::quantile(&lag.sorted_ms, p);
    json!({
        "title": title,
        "n": args.n,
        "item_bytes": bench::ITEM_BYTES,
        "ceiling_fresh_puts_items_per_s": ceiling,
        "mixes": mixes.iter().map(|m| (m.name.to_string(), mix(m))).collect::<serde_json::Map<_, _>>(),
        "lag": {
            "rate_per_s": args.rate,
            "seconds": args.lag_secs,
            "writes": lag.report.writes,
            "achieved_rate_per_s": lag.report.writes as f64 / lag.report.write_secs,
            "probe_keys_read_per_s": lag.report.probe_keys as f64 / lag.report.write_secs,
            "probe_calls_per_s": lag.report.probe_calls as f64 / lag.report.write_secs,
            "steady_after_s": super::lag::LAG_RAMP.as_secs(),
            "steady_p50_ms": bench::quantile(&lag.steady_sorted_ms, 0.5),
            "steady_p99_ms": bench::quantile(&lag.steady_sorted_ms, 0.99),
            "steady_max_ms": bench::quantile(&lag.steady_sorted_ms, 1.0),
            "p50_ms": q(0.5),
            "p99_ms": q(0.99),
            "max_ms": q(1.0),
            "per_second": lag.per_second.iter()
                .map(|(s, p50, p99)| json!({"second": s, "p50_ms": p50, "p99_ms": p99}))
                .collect::<Vec<_>>(),
        },
    })
}

/// The PNG chart, from the JSON report (skipped, with a message, when the font is missing).
pub(super) fn draw(report: &serde_json::Value) {
    if let Err(e) = register_font(Path::new(FONT)) {
        println!("no chart: cannot load the font ({e}); apt-get install fonts-dejavu-core");
        return;
    }
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let mut mixes: Vec<(&String, &serde_json::Value)> = report["mixes"]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    mixes.sort_by_key(|(name, _)| *name != "uniform");
    let short = |name: &str| name.trim_end_matches("-key").to_string();
    let mut bars = vec![("ceil. puts".to_string(), num(&report["ceiling_fresh_puts_items_per_s"]))];
    for (field, label) in [
        ("ceiling_this_mix_per_s", "ceil."),
        ("naive_records_per_s", "naive"),
        ("ferry_records_per_s", "ferry"),
    ] {
        bars.extend(
            mixes
                .iter()
                .map(|(name, m)| (format!("{label} {}", short(name)), num(&m[field]))),
        );
    }
    let lag: Vec<(u64, f64, f64)> = report["lag"]["per_second"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| (s["second"].as_u64().unwrap_or(0), num(&s["p50_ms"]), num(&s["p99_ms"])))
                .collect()
        })
        .unwrap_or_default();
    let title = report["title"].as_str().unwrap_or("ferry e2e benchmark");
    let dir = ferry_rig::repo_dir().join("docs/bench");
    let path = dir.join("e2e.png");
    let res = std::fs::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|_| chart(&path, title, &bars, &lag));
    match res {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => println!("no chart: {e}"),
    }
}

/// Registers the TTF at `font` as plotters' "sans-serif".
pub fn register_font(font: &std::path::Path) -> Result<(), String> {
    let bytes = std::fs::read(font).map_err(|e| format!("{}: {e}", font.display()))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
        .map_err(|_| format!("{}: not a usable font", font.display()))
}

/// A 1400x600 PNG: records/s per bar on the left, per-second lag p50/p99 on the right.
pub fn chart(
    path: &std::path::Path,
    title: &str,
    bars: &[(String, f64)],
    lag: &[(u64, f64, f64)],
) -> Result<(), String> {
    use plotters::prelude::*;
    let root = BitMapBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root.titled(title, ("sans-serif", 18)).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(800);
    bar_panel(&left, bars).map_err(|e| e.to_string())?;
    lag_panel(&right, lag).map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

type Area<'a> = plotters::drawing::DrawingArea<plotters::prelude::BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn bar_panel(area: &Area, bars: &[(String, f64)]) -> DrawResult {
    use plotters::prelude::*;
    let top = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.15;
    let mut ch = ChartBuilder::on(area)
        .caption("records (items) per second", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..bars.len() as f64, 0f64..top)?;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    ch.configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (x - 0.5).round();
            if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 13))
        .draw()?;
    let colors = [
        RGBColor(130, 130, 130),
        RGBColor(215, 130, 60),
        RGBColor(50, 100, 200),
        RGBColor(40, 150, 90),
    ];
    ch.draw_series(bars.iter().enumerate().map(|(i, (name, v))| {
        let color = colors[color_index(name, i)];
        Rectangle::new([(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)], color.filled())
    }))?;
    ch.draw_series(
        bars.iter()
            .enumerate()
            .map(|(i, (_, v))| Text::new(format!("{v:.0}"), (i as f64 + 0.3, *v + top * 0.02), ("sans-serif", 14))),
    )?;
    Ok(())
}

fn color_index(name: &str, i: usize) -> usize {
    match name {
        n if n.starts_with("ceil") => 0,
        n if n.starts_with("naive") => 1,
        n if n.contains("uniform") => 2,
        n if n.contains("hot") => 3,
        _ => i % 4,
    }
}

fn lag_panel(area: &Area, lag: &[(u64, f64, f64)]) -> DrawResult {
    use plotters::prelude::*;
    let x_max = lag.last().map_or(1, |l| l.0 + 1) as f64;
    let y_max = lag.iter().map(|l| l.2).fold(1.0, f64::max) * 1.15;
    let mut ch = ChartBuilder::on(area)
        .caption("replication lag per second of the run", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    ch.configure_mesh()
        .x_desc("seconds into the steady workload")
        .y_desc("lag (ms)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 13))
        .draw()?;
    let p50 = lag.iter().map(|l| (l.0 as f64 + 0.5, l.1));
    let p99 = lag.iter().map(|l| (l.0 as f64 + 0.5, l.2));
    ch.draw_series(LineSeries::new(p50, BLUE.stroke_width(2)))?
        .label("p50")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    ch.draw_series(LineSeries::new(p99, RED.stroke_width(2)))?
        .label("p99")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
    ch.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// `java -jar DynamoDBLocal.jar -version` from the rig's cache.
pub(super) fn ddb_version() -> String {
    let cache = std::env::var("FERRY_RIG_CACHE")
        .unwrap_or_else(|_| format!("{}/.cache/ferry-rig", std::env::var("HOME").unwrap_or_default()));
    std::process::Command::new("java")
        .args(["-jar", "DynamoDBLocal.jar", "-version"])
        .current_dir(Path::new(&cache).join("ddb-local"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty() && v.len() < 20)
        .unwrap_or_else(|| "(version unknown)".into())
}

pub(super) fn now_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
