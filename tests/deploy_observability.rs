//! The monitoring kit against promtool and the code: the alert rules (`deploy/prometheus/`) pass
//! `promtool check rules` and their unit tests, every alert has a firing and a quiet case, the
//! Grafana dashboard (`deploy/grafana/ferry.json`) has the structure Grafana's JSON model needs and
//! valid PromQL, and the Kubernetes kustomization (`deploy/kustomization.yaml`) provisions those
//! same files.
//!
//! The metric names are derived from the code, like the IAM check of `deploy_kit.rs`: every
//! `ferry_…` series the dashboard, the rules and the rules' tests name must be a string literal in
//! `src/` (outside test code), and every metric the code records (the `ferry_…` literals of the
//! files that call the `metrics` macros) must be on the dashboard or in [`NOT_ON_DASHBOARD`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const DASHBOARD: &str = "deploy/grafana/ferry.json";
const RULES: &str = "deploy/prometheus/ferry-rules.yaml";
const RULE_TESTS: &str = "deploy/prometheus/ferry-rules.test.yaml";
const KUSTOMIZATION: &str = "deploy/kustomization.yaml";

/// Metrics ferry records that the dashboard leaves out on purpose, with the reason.
const NOT_ON_DASHBOARD: &[(&str, &str)] = &[];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// `promtool` from `FERRY_PROMTOOL` or the PATH. Missing is a failure, not a skip: CI installs it.
fn promtool(args: &[&str]) -> Output {
    let bin = std::env::var_os("FERRY_PROMTOOL").unwrap_or_else(|| "promtool".into());
    match Command::new(&bin).args(args).current_dir(repo()).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool not found ({bin:?}): install Debian's `prometheus` package, e.g. as root \
             `FERRY_RIG_APT=1 bash deploy/local/install.sh`, or set FERRY_PROMTOOL to its path"
        ),
        Err(e) => panic!("cannot run {bin:?}: {e}"),
    }
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Rust files under `dir`, with their code outside `#[cfg(test)]` and test-only files.
fn code_files(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for e in std::fs::read_dir(dir).expect("src dir").filter_map(|e| e.ok()) {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            code_files(&path, out);
        } else if name.ends_with(".rs") && name != "tests.rs" && !name.ends_with("_tests.rs") {
            let text = std::fs::read_to_string(&path).expect("source file");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
            out.push((path, code));
        }
    }
}

fn src_code() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    code_files(&repo().join("src"), &mut files);
    assert!(
        files.len() > 20,
        "found too few source files under src/: {}",
        files.len()
    );
    files
}

/// The string literals `"ferry_…"` in a piece of code (a name: lowercase, digits, `_`).
fn ferry_literals(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("\"ferry_") {
        let rest = &code[at + 1..];
        let len = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(rest.len());
        if rest[len..].starts_with('"') {
            out.insert(rest[..len].to_string());
        }
    }
    out
}

/// The `ferry_…` metric names a PromQL expression (or any text) names, histogram suffixes removed.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = BTreeSet::new();
    for (at, _) in expr.match_indices("ferry_") {
        if expr[..at].chars().next_back().is_some_and(ident) {
            continue;
        }
        let len = expr[at..].find(|c: char| !ident(c)).unwrap_or(expr.len() - at);
        let name = &expr[at..at + len];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(base.to_string());
    }
    out
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("dashboard panels") {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// (where, expr) of every query of the dashboard: panel targets and template variables.
fn dashboard_exprs(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default().to_string();
            out.push((format!("panel {} {:?} {}", p["id"], p["title"], t["refId"]), expr));
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "datasource" {
            continue;
        }
        let query = v["query"]["query"].as_str().or(v["query"].as_str()).unwrap_or_default();
        out.push((format!("variable {}", v["name"]), query.to_string()));
        if let Some(def) = v["definition"].as_str() {
            out.push((format!("variable {} definition", v["name"]), def.to_string()));
        }
    }
    out
}

/// The `expr:` values of a rules file: inline, or a `|`/`>` block of more-indented lines.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if !value.starts_with(['|', '>']) {
            out.push(value.trim_matches(['"', '\'']).to_string());
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .map(|l| l.trim())
            .collect();
        out.push(block.join("\n"));
    }
    out
}

/// The text of a YAML file without its comment lines.
fn without_comments(yaml: &str) -> String {
    yaml.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn promtool_checks_the_rules() {
    let out = promtool(&["check", "rules", RULES]);
    assert_success(&format!("promtool check rules {RULES}"), &out);
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn promtool_unit_tests_of_the_rules_pass() {
    let out = promtool(&["test", "rules", RULE_TESTS]);
    assert_success(&format!("promtool test rules {RULE_TESTS}"), &out);
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

/// Each alert of the rules file, with the lines of its block.
fn alerts(yaml: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in yaml.lines() {
        if let Some(name) = line.trim_start().strip_prefix("- alert:") {
            out.extend(current.take());
            current = Some((name.trim().to_string(), String::new()));
        } else if let Some((_, block)) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out.extend(current);
    out
}

/// For each alert name of the rules' tests: (cases expecting no alert, cases expecting some).
fn test_cases(yaml: &str) -> BTreeMap<String, (usize, usize)> {
    let lines: Vec<&str> = yaml.lines().map(str::trim).collect();
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.strip_prefix("alertname:") else {
            continue;
        };
        let entry = out.entry(name.trim().to_string()).or_default();
        match lines.get(i + 1).copied() {
            Some("exp_alerts: []") => entry.0 += 1,
            Some("exp_alerts:") => entry.1 += 1,
            other => panic!("{RULE_TESTS}: alertname {name} is followed by {other:?}, not exp_alerts"),
        }
    }
    out
}

#[test]
fn every_alert_has_a_severity_guidance_and_a_firing_and_a_quiet_test() {
    let rules = alerts(&read(RULES));
    assert!(rules.len() >= 7, "too few alerts found in {RULES}: {:?}", rules.keys());
    for (name, block) in &rules {
        assert!(
            block.contains("severity: critical") || block.contains("severity: warning"),
            "{name}: no severity label (critical or warning)"
        );
        for key in ["summary:", "description:"] {
            assert!(block.contains(key), "{name}: no {key} annotation");
        }
    }
    let cases = test_cases(&read(RULE_TESTS));
    for name in rules.keys() {
        let (quiet, firing) = cases.get(name).copied().unwrap_or_default();
        assert!(
            quiet > 0 && firing > 0,
            "{RULE_TESTS}: {name} needs a case where it fires and a near miss where it does not \
             (has {firing} firing, {quiet} quiet)"
        );
    }
    let unknown: Vec<_> = cases.keys().filter(|n| !rules.contains_key(*n)).collect();
    assert!(
        unknown.is_empty(),
        "{RULE_TESTS} tests alerts the rules lack: {unknown:?}"
    );
}

#[test]
fn every_metric_the_dashboard_and_the_rules_query_is_one_ferry_exports() {
    let exported: BTreeSet<String> = src_code().iter().flat_map(|(_, code)| ferry_literals(code)).collect();
    assert!(
        exported.contains("ferry_records_applied_total"),
        "the scan of src/ found too little: {exported:?}"
    );
    let d = dashboard();
    let mut queried: Vec<(String, String)> = dashboard_exprs(&d)
        .into_iter()
        .map(|(at, e)| (format!("{DASHBOARD} {at}"), e))
        .collect();
    queried.extend(rule_exprs(&read(RULES)).into_iter().map(|e| (RULES.to_string(), e)));
    // The tests' synthetic series must be real series too, or they test nothing.
    queried.push((RULE_TESTS.to_string(), without_comments(&read(RULE_TESTS))));
    let mut missing = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (at, expr) in &queried {
        for name in metric_names(expr) {
            if !exported.contains(&name) {
                missing.insert(format!("{name} ({at})"));
            }
            seen.insert(name);
        }
    }
    eprintln!(
        "ferry metrics queried: {}",
        seen.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    assert!(
        seen.contains("ferry_lag_seconds") && seen.contains("ferry_table_phase"),
        "the scan of the queries found too little: {seen:?}"
    );
    assert!(
        missing.is_empty(),
        "queried, but no \"ferry_…\" literal in src/ exports them:\n  {}",
        missing.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

/// The metrics the code records: the `ferry_…` literals of the files that call a `metrics` macro.
fn recorded_metrics() -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for (path, code) in src_code() {
        if ["metrics::counter!", "metrics::gauge!", "metrics::histogram!"]
            .iter()
            .any(|m| code.contains(m))
        {
            for name in ferry_literals(&code) {
                out.insert(name, path.strip_prefix(repo()).unwrap_or(&path).to_path_buf());
            }
        }
    }
    out
}

#[test]
fn every_metric_ferry_records_is_on_the_dashboard() {
    let recorded = recorded_metrics();
    for file in ["src/telemetry/metrics.rs", "src/source/streams/shard_metrics.rs"] {
        assert!(
            recorded.values().any(|p| p == Path::new(file)),
            "no metric found in {file}: {recorded:?}"
        );
    }
    let shown: BTreeSet<String> = dashboard_exprs(&dashboard())
        .iter()
        .flat_map(|(_, e)| metric_names(e))
        .collect();
    let allowed: BTreeSet<&str> = NOT_ON_DASHBOARD.iter().map(|(name, _)| *name).collect();
    let stale: Vec<_> = allowed.iter().filter(|n| !recorded.contains_key(**n)).collect();
    assert!(
        stale.is_empty(),
        "NOT_ON_DASHBOARD names metrics ferry no longer records: {stale:?}"
    );
    let absent: Vec<String> = recorded
        .iter()
        .filter(|(name, _)| !shown.contains(*name) && !allowed.contains(name.as_str()))
        .map(|(name, file)| format!("{name} (recorded in {})", file.display()))
        .collect();
    assert!(
        absent.is_empty(),
        "metrics ferry records that {DASHBOARD} never queries (add a panel, or list them in \
         NOT_ON_DASHBOARD with a reason):\n  {}",
        absent.join("\n  ")
    );
}

/// The panel's `gridPos` as (x, y, w, h), checked to be whole, non-negative and within 24 columns.
fn grid(p: &Value) -> (u64, u64, u64, u64) {
    let g = &p["gridPos"];
    let n = |k: &str| {
        g[k].as_u64()
            .unwrap_or_else(|| panic!("panel {} gridPos.{k} must be a whole number >= 0: {g}", p["id"]))
    };
    let (x, y, w, h) = (n("x"), n("y"), n("w"), n("h"));
    assert!(
        w > 0 && h > 0 && x + w <= 24,
        "panel {} gridPos out of the 24 columns: {g}",
        p["id"]
    );
    (x, y, w, h)
}

fn check_panel(p: &Value) {
    let id = &p["id"];
    assert!(
        p["type"].as_str().is_some_and(|t| !t.is_empty()),
        "panel {id} has no type"
    );
    assert!(p["title"].is_string(), "panel {id} has no title");
    if p["type"] == "row" {
        return;
    }
    let targets = p["targets"].as_array().filter(|t| !t.is_empty());
    let targets = targets.unwrap_or_else(|| panic!("panel {id} {} has no targets", p["title"]));
    let mut refs = BTreeSet::new();
    for t in targets {
        assert!(
            t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
            "panel {id}: a target without expr"
        );
        let r = t["refId"]
            .as_str()
            .unwrap_or_else(|| panic!("panel {id}: a target without refId"));
        assert!(refs.insert(r), "panel {id}: refId {r} twice");
    }
}

/// Every `datasource` reference in the dashboard: the variable, never a fixed UID.
fn check_datasources(v: &Value, at: &str) {
    match v {
        Value::Object(map) => {
            if let Some(ds) = map.get("datasource") {
                let uid = ds["uid"].as_str().or(ds.as_str());
                assert!(
                    matches!(uid, Some("${datasource}" | "$datasource")),
                    "{at}: datasource {ds} is not the $datasource variable"
                );
            }
            for (k, child) in map {
                check_datasources(child, &format!("{at}.{k}"));
            }
        }
        Value::Array(list) => {
            for (i, child) in list.iter().enumerate() {
                check_datasources(child, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

#[test]
fn the_dashboard_has_the_structure_grafanas_json_model_needs() {
    let d = dashboard();
    for key in ["title", "uid"] {
        assert!(d[key].as_str().is_some_and(|s| !s.is_empty()), "{key} missing");
    }
    assert!(
        d["uid"].as_str().unwrap().len() <= 40,
        "Grafana takes UIDs of at most 40 characters"
    );
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 39),
        "schemaVersion must be >= 39"
    );
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name}"))
    };
    let ds = var("datasource");
    assert_eq!(
        (&ds["type"], &ds["query"]),
        (&"datasource".into(), &"prometheus".into())
    );
    let table = var("table");
    let tables = table["query"]["query"].as_str().unwrap_or_default();
    assert!(
        tables.starts_with("label_values(ferry_lag_seconds") && tables.ends_with(", table)"),
        "$table should list the tables of ferry_lag_seconds: {tables}"
    );
    check_datasources(&d["panels"], "panels");
    check_datasources(&d["templating"], "templating");

    let all = panels(&d);
    let mut ids = BTreeSet::new();
    for p in &all {
        let id = p["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("panel without a whole-number id: {}", p["title"]));
        assert!(ids.insert(id), "panel id {id} twice");
        check_panel(p);
    }
    let top: Vec<_> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].clone(), grid(p)))
        .collect();
    for (i, (a, (ax, ay, aw, ah))) in top.iter().enumerate() {
        for (b, (bx, by, bw, bh)) in &top[i + 1..] {
            let apart = ax + aw <= *bx || bx + bw <= *ax || ay + ah <= *by || by + bh <= *ay;
            assert!(apart, "panels {a} and {b} overlap");
        }
    }
    // The per-worker panels: several workers are told apart by Prometheus's `instance` label.
    let per_worker = dashboard_exprs(&d)
        .iter()
        .filter(|(_, e)| e.contains("by (instance)"))
        .count();
    assert!(
        per_worker >= 2,
        "expected per-worker panels (sum by (instance)), found {per_worker}"
    );
}

/// The phases ferry reports: the strings of the `Phase::X => "x"` arms in src/.
fn phases_in_code() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, code) in src_code() {
        for line in code.lines().map(str::trim) {
            let Some(arm) = line.strip_prefix("Phase::") else {
                continue;
            };
            let Some((_, value)) = arm.split_once("=> \"") else {
                continue;
            };
            if let Some((phase, ",")) = value.split_once('"') {
                out.insert(phase.to_string());
            }
        }
    }
    out
}

/// Phases named in the queries (`phase="…"`) are ones ferry reports.
#[test]
fn the_phases_queried_are_phases_ferry_reports() {
    let known = phases_in_code();
    assert!(
        known.contains("streaming") && known.len() >= 5,
        "the scan of src/ found too few phases: {known:?}"
    );
    let mut texts: Vec<String> = dashboard_exprs(&dashboard()).into_iter().map(|(_, e)| e).collect();
    texts.extend(rule_exprs(&read(RULES)));
    texts.push(without_comments(&read(RULE_TESTS)));
    let queried = phase_matchers(&texts);
    assert!(queried.contains("stopped"), "found no phase matcher: {queried:?}");
    let unknown: Vec<_> = queried.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "phases ferry does not report ({known:?}): {unknown:?}"
    );
    // The dashboard's phase timeline maps every phase to a name and colour.
    let shown = phase_matchers(
        &dashboard_exprs(&dashboard())
            .into_iter()
            .map(|(_, e)| e)
            .collect::<Vec<_>>(),
    );
    let unshown: Vec<_> = known.difference(&shown).collect();
    assert!(
        unshown.is_empty(),
        "phases missing from the dashboard's phase panels: {unshown:?}"
    );
}

/// The values of the `phase="…"` matchers in some queries.
fn phase_matchers(texts: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for text in texts {
        for (at, _) in text.match_indices("phase=\"") {
            let rest = &text[at + 7..];
            out.insert(rest[..rest.find('"').expect("closing quote")].to_string());
        }
    }
    out
}

/// A Grafana query made plain PromQL: its variables replaced by values of their kind.
fn plain_promql(expr: &str) -> String {
    let e = [
        ("$__rate_interval", "5m"),
        ("$__interval", "1m"),
        ("$__range", "1h"),
        ("$table", ".+"),
        ("$job", ".+"),
    ]
    .iter()
    .fold(expr.to_string(), |e, (var, value)| e.replace(var, value));
    assert!(!e.contains('$'), "an unknown Grafana variable in {expr}");
    e
}

#[test]
fn the_dashboards_queries_are_valid_promql() {
    let d = dashboard();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for p in panels(&d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = plain_promql(t["expr"].as_str().expect("expr"));
            let quoted = serde_json::to_string(&expr).unwrap();
            rules += &format!(
                "      - record: dashboard:panel_{}_{}\n",
                p["id"],
                t["refId"].as_str().unwrap()
            );
            rules += &format!("        expr: {quoted}\n");
            n += 1;
        }
    }
    assert!(n > 10, "too few queries found: {n}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-queries.yaml");
    std::fs::write(&path, &rules).unwrap();
    let out = promtool(&["check", "rules", path.to_str().unwrap()]);
    assert_success(
        &format!("promtool check rules on the dashboard's queries:\n{rules}"),
        &out,
    );
}

/// The list items under each `files:` key of a kustomization.
fn generated_files(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() == "files:" {
            let items = lines[i + 1..].iter().map_while(|l| l.trim().strip_prefix("- "));
            out.extend(items.map(|f| f.trim().to_string()));
        }
    }
    out
}

/// Files under `dir` (recursively), relative to the repository.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("dir").filter_map(|e| e.ok()) {
        let path = e.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path.strip_prefix(repo()).unwrap().to_path_buf());
        }
    }
}

/// The value of a `key: |` block scalar in YAML output, its indentation removed.
fn block_scalar(yaml: &str, key: &str) -> Option<String> {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let head = lines.next()?;
    let indent = head.len() - head.trim_start().len() + 2;
    let body: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect();
    Some(body.join("\n") + "\n")
}

#[test]
fn kubernetes_provisions_the_same_files_not_copies() {
    let k = read(KUSTOMIZATION);
    let files = generated_files(&k);
    assert_eq!(
        files,
        ["grafana/ferry.json", "prometheus/ferry-rules.yaml"],
        "{KUSTOMIZATION} should generate its ConfigMaps from the dashboard and the rules"
    );
    assert!(
        k.contains("grafana_dashboard: \"1\""),
        "the dashboard needs the Grafana sidecar's label"
    );
    // No second copy anywhere in deploy/ (a PrometheusRule or ConfigMap pasted by hand).
    let mut all = Vec::new();
    files_under(&repo().join("deploy"), &mut all);
    for f in &all {
        let Ok(text) = std::fs::read_to_string(repo().join(f)) else {
            continue;
        };
        let rules_copy = f != Path::new(RULES) && text.contains("alert: FerryTableStopped");
        let dashboard_copy = f != Path::new(DASHBOARD) && text.contains("\"schemaVersion\"");
        assert!(
            !rules_copy && !dashboard_copy,
            "{} holds a copy of the rules or the dashboard",
            f.display()
        );
    }
    // Where kubectl is at hand, build it: kustomize's load restrictor and the generated content.
    let built = match Command::new("kubectl")
        .args(["kustomize", "deploy"])
        .current_dir(repo())
        .output()
    {
        Ok(out) => out,
        Err(_) => {
            eprintln!("kubectl not found: `kubectl kustomize deploy` not run (the file references were checked)");
            return;
        }
    };
    assert_success("kubectl kustomize deploy", &built);
    let yaml = String::from_utf8(built.stdout).unwrap();
    assert_eq!(
        block_scalar(&yaml, "ferry.json").as_deref(),
        Some(read(DASHBOARD).as_str())
    );
    assert_eq!(
        block_scalar(&yaml, "ferry-rules.yaml").as_deref(),
        Some(read(RULES).as_str())
    );
}
