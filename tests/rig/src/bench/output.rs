//! Where a bench writes its JSON report: `<target dir>/ferry-bench/<name>.json`.

use std::path::PathBuf;

/// The report's path (a bench runs as `<target>/release/deps/<bench>-HASH`).
pub fn report_path(name: &str) -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .ok_or("cannot find the target directory")?;
    Ok(target.join("ferry-bench").join(format!("{name}.json")))
}

/// Writes the report, pretty-printed, and says where.
pub fn write_report(name: &str, report: &serde_json::Value) -> Result<(), String> {
    let path = report_path(name)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// A bench setting from the environment (`FERRY_BENCH_N=20000`), or `default`; a value that is not
/// a number stops the bench with its name.
pub fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}
