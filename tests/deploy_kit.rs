//! The deploy kit (`deploy/`) against the code: every AWS action ferry calls is allowed by the
//! policies, the source role can write no item, `cfn-lint` passes on every template, and the
//! Kubernetes examples' `ferry.toml` parses (with the DynamoDB state where replicas share it).
//!
//! The list of actions is derived from the code: every `.operation()` call in `src/` whose name is
//! an operation of an AWS SDK crate in `Cargo.lock` (operation names come from those crates' own
//! `src/operation/` folders), mapped to its IAM action.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn policy(name: &str) -> Value {
    let path = repo().join("deploy/aws/iam").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The actions a policy allows (Effect Allow), as written.
fn allowed(policy: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for st in policy["Statement"].as_array().expect("Statement list") {
        if st["Effect"] != "Allow" {
            continue;
        }
        match &st["Action"] {
            Value::String(a) => {
                out.insert(a.clone());
            }
            Value::Array(list) => out.extend(list.iter().filter_map(|a| a.as_str().map(str::to_string))),
            other => panic!("Action must be a string or a list, got {other}"),
        }
    }
    out
}

fn allows(actions: &BTreeSet<String>, action: &str) -> bool {
    let service = action.split(':').next().unwrap_or_default();
    actions.contains(action) || actions.contains(&format!("{service}:*"))
}

/// The `service:Action` entries of one resource's block in a CloudFormation template.
fn template_actions(template: &str, resource: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("deploy/aws").join(template)).expect("template");
    let start = text
        .find(&format!("\n  {resource}:\n"))
        .unwrap_or_else(|| panic!("{template} has no resource {resource}"));
    // The block ends where a line is indented by less than four spaces (the next resource or section).
    let block: Vec<&str> = text[start + 1..]
        .lines()
        .skip(1)
        .take_while(|l| l.trim().is_empty() || l.starts_with("    ") || l.trim_start().starts_with('#'))
        .collect();
    block
        .into_iter()
        .map(|l| l.trim().trim_start_matches("- ").trim_start_matches("Action: ").trim())
        .filter(|t| {
            let mut parts = t.split(':');
            matches!((parts.next(), parts.next(), parts.next()),
                (Some(s), Some(a), None) if !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && a.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && a.chars().all(|c| c.is_ascii_alphanumeric()))
        })
        .map(str::to_string)
        .collect()
}

/// AWS SDK crates in Cargo.lock: (crate suffix, version).
fn sdk_crates() -> Vec<(String, String)> {
    let lock: toml::Table = std::fs::read_to_string(repo().join("Cargo.lock"))
        .expect("Cargo.lock")
        .parse()
        .expect("Cargo.lock is TOML");
    lock["package"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| {
            let name = p["name"].as_str()?;
            let svc = name.strip_prefix("aws-sdk-")?;
            Some((svc.to_string(), p["version"].as_str()?.to_string()))
        })
        .collect()
}

fn crate_source(name: &str, version: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cargo"));
    let registry = home.join("registry/src");
    let dir = format!("{name}-{version}");
    std::fs::read_dir(&registry)
        .unwrap_or_else(|e| panic!("{}: {e}", registry.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(&dir))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("source of {dir} not found under {}", registry.display()))
}

/// Operation names (snake_case) of one SDK crate.
fn operations(svc: &str, version: &str) -> BTreeSet<String> {
    let dir = crate_source(&format!("aws-sdk-{svc}"), version).join("src/operation");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The IAM action of an SDK operation.
fn iam_action(svc: &str, op: &str) -> Option<String> {
    let pascal: String = op
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let action = match (svc, op) {
        // Calls that need no permission.
        ("sts", "get_caller_identity") => return None,
        ("s3", "list_objects_v2" | "list_objects" | "head_bucket") => "ListBucket".to_string(),
        ("s3", "head_object") => "GetObject".to_string(),
        ("s3", "create_multipart_upload" | "upload_part" | "complete_multipart_upload") => "PutObject".to_string(),
        ("sqs", _) => pascal.trim_end_matches("Batch").to_string(),
        // A transaction needs the actions it is made of; ferry's only adds a ConditionCheck to
        // puts (PutItem is checked where ferry calls it).
        ("dynamodb", "transact_write_items") => "ConditionCheckItem".to_string(),
        _ => pascal,
    };
    let prefix = match svc {
        "dynamodbstreams" => "dynamodb",
        "applicationautoscaling" => "application-autoscaling",
        s => s,
    };
    Some(format!("{prefix}:{action}"))
}

/// Where an operation is called, and on which client when the code names it (`x.lambda.tag_resource()`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Call {
    file: String,
    /// The SDK crate suffix of the client field the call is chained on, if it is one of ferry's.
    client: Option<&'static str>,
}

/// The client a call is chained on: the identifier before the dot, if it names one of the
/// `Clients` fields (`dynamodb`, `streams`, `s3`, `lambda`, `sqs`, `autoscaling`).
fn client_before(before: &str) -> Option<&'static str> {
    let t = before.trim_end();
    let ident: String = t
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<String>()
        .chars()
        .rev()
        .collect();
    match ident.as_str() {
        "dynamodb" => Some("dynamodb"),
        "streams" => Some("dynamodbstreams"),
        "s3" => Some("s3"),
        "lambda" => Some("lambda"),
        "sqs" => Some("sqs"),
        "autoscaling" => Some("applicationautoscaling"),
        _ => None,
    }
}

/// `.name(` calls in the Rust files under `dir`, outside test code and the test rig.
fn calls(dir: &Path, out: &mut BTreeMap<String, BTreeSet<Call>>) {
    for e in std::fs::read_dir(dir).expect("src dir").filter_map(|e| e.ok()) {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "rig" {
                calls(&path, out);
            }
            continue;
        }
        if !name.ends_with(".rs") || name == "tests.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source file");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let bytes = code.as_bytes();
        let mut i = 0;
        while let Some(off) = code[i..].find('.') {
            let start = i + off + 1;
            let mut end = start;
            while end < bytes.len()
                && (bytes[end].is_ascii_lowercase() || bytes[end].is_ascii_digit() || bytes[end] == b'_')
            {
                end += 1;
            }
            if end > start && bytes.get(end) == Some(&b'(') {
                let rel = path.strip_prefix(repo()).unwrap_or(&path).display().to_string();
                let call = Call {
                    file: rel,
                    client: client_before(&code[..start - 1]),
                };
                out.entry(code[start..end].to_string()).or_default().insert(call);
            }
            i = start;
        }
    }
}

#[test]
fn every_aws_action_ferry_calls_is_allowed_by_the_policies() {
    let mut allowed_all = allowed(&policy("source-role-policy.json"));
    allowed_all.extend(allowed(&policy("destination-role-policy.json")));
    allowed_all.extend(allowed(&policy("state-table-policy.json")));
    let forwarder = template_actions("forwarder.yaml", "ForwarderRole");
    assert!(
        forwarder.contains("sqs:SendMessage"),
        "forwarder role actions not found: {forwarder:?}"
    );
    let mut called = BTreeMap::new();
    calls(&repo().join("src"), &mut called);

    let mut checked = Vec::new();
    let mut missing = Vec::new();
    let crates: Vec<(String, BTreeSet<String>)> = sdk_crates()
        .into_iter()
        // SSO crates serve aws-config's logins, not ferry's code.
        .filter(|(svc, _)| !matches!(svc.as_str(), "sso" | "ssooidc"))
        .map(|(svc, version)| {
            let ops = operations(&svc, &version);
            (svc, ops)
        })
        .collect();
    for (svc, ops) in &crates {
        for op in ops {
            let Some(sites) = called.get(op) else { continue };
            // An operation several SDKs have (TagResource) counts for this one unless every call
            // names another client.
            let shared = crates.iter().filter(|(_, o)| o.contains(op)).count() > 1;
            if shared && sites.iter().all(|c| c.client.is_some_and(|k| k != svc)) {
                continue;
            }
            let files: BTreeSet<String> = sites.iter().map(|c| c.file.clone()).collect();
            let Some(action) = iam_action(svc, op) else { continue };
            // The forwarder runs under its own role, from deploy/aws/forwarder.yaml; an action both
            // it and ferry call needs both roles.
            let in_forwarder = files.iter().any(|f| f.contains("forwarder"));
            let elsewhere = files.iter().any(|f| !f.contains("forwarder"));
            let ok = (!in_forwarder || allows(&forwarder, &action)) && (!elsewhere || allows(&allowed_all, &action));
            checked.push(format!(
                "{action} ({})",
                files.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
            if !ok {
                missing.push(format!("{action}, called in {files:?}"));
            }
        }
    }
    eprintln!("AWS actions called by ferry's code:\n  {}", checked.join("\n  "));
    assert!(
        checked.iter().any(|a| a.starts_with("dynamodb:BatchWriteItem"))
            && checked.iter().any(|a| a.starts_with("dynamodb:GetRecords")),
        "the scan of the code found too little: {checked:?}"
    );
    assert!(
        missing.is_empty(),
        "actions the deploy/aws/iam policies do not allow:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_source_role_can_write_no_item() {
    let source = allowed(&policy("source-role-policy.json"));
    for write in [
        "dynamodb:PutItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
        "dynamodb:TransactWriteItems",
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
        "dynamodb:DeleteTable",
        "dynamodb:RestoreTableFromBackup",
        "dynamodb:*",
    ] {
        assert!(!source.contains(write), "the source role allows {write}");
    }
}

#[test]
fn every_statement_names_its_need_and_scopes_its_resources() {
    for name in [
        "source-role-policy.json",
        "destination-role-policy.json",
        "state-table-policy.json",
        "export-bucket-policy.json",
        "trust-ferry-roles.json",
    ] {
        let p = policy(name);
        assert_eq!(p["Version"], "2012-10-17", "{name}");
        for st in p["Statement"].as_array().expect("statements") {
            let sid = st["Sid"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: a statement without Sid: {st}"));
            assert!(matches!(st["Effect"].as_str(), Some("Allow" | "Deny")), "{name} {sid}");
            let all_resources = st["Resource"] == "*";
            let actions = allowed(&serde_json::json!({ "Statement": [st] }));
            // Only actions that cannot be scoped may use Resource "*" (Application Auto Scaling's
            // Describe actions have no resource-level permissions).
            if all_resources && st["Effect"] == "Allow" && !st["Condition"].is_object() {
                for a in &actions {
                    assert!(
                        matches!(
                            a.as_str(),
                            "dynamodb:ListTables"
                                | "dynamodb:ListStreams"
                                | "lambda:ListEventSourceMappings"
                                | "lambda:GetEventSourceMapping"
                                | "application-autoscaling:DescribeScalableTargets"
                        ),
                        "{name} {sid}: {a} on every resource"
                    );
                }
            }
        }
    }
    // Both principals of a cross-account export are needed (a missing one is an unexplained AccessDenied).
    let bucket = policy("export-bucket-policy.json").to_string();
    assert!(bucket.contains("dynamodb.amazonaws.com") && bucket.contains("aws:SourceAccount"));
    assert!(bucket.contains(":role/${SOURCE_ROLE_NAME}"));
}

/// cfn-lint from `deploy/local/install.sh` (`$FERRY_RIG_CACHE/tools-venv`), or `FERRY_CFN_LINT`.
fn cfn_lint() -> PathBuf {
    if let Some(p) = std::env::var_os("FERRY_CFN_LINT") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("FERRY_RIG_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/ferry-rig"));
    let bin = cache.join("tools-venv/bin/cfn-lint");
    assert!(
        bin.exists(),
        "{} is missing: run `bash deploy/local/install.sh` (it installs cfn-lint)",
        bin.display()
    );
    bin
}

#[test]
fn cfn_lint_passes_on_every_template() {
    let templates: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/aws"))
        .expect("deploy/aws")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    assert!(!templates.is_empty(), "no templates in deploy/aws");
    let out = Command::new(cfn_lint())
        .args(&templates)
        .output()
        .expect("run cfn-lint");
    assert!(
        out.status.success(),
        "cfn-lint failed on {templates:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `deploy/Dockerfile` where a Docker daemon answers; says why it does not otherwise.
#[test]
fn docker_image_builds_where_docker_is_available() {
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match info {
        Ok(o) if o.status.success() => {}
        _ => {
            eprintln!("SKIPPED: no Docker daemon here (`docker info` failed); deploy/Dockerfile not built");
            return;
        }
    }
    if std::env::var_os("FERRY_DOCKER_BUILD").is_none() {
        eprintln!("SKIPPED: Docker is available; set FERRY_DOCKER_BUILD=1 to build deploy/Dockerfile (minutes)");
        return;
    }
    let out = Command::new("docker")
        .args(["build", "-f", "deploy/Dockerfile", "-t", "ferry:test", "."])
        .current_dir(repo())
        .output()
        .expect("docker build");
    assert!(
        out.status.success(),
        "docker build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `ferry.toml` embedded in a Kubernetes ConfigMap (the block under `ferry.toml: |`).
fn embedded_config(manifest: &str) -> String {
    let text = std::fs::read_to_string(repo().join("deploy/kubernetes").join(manifest)).unwrap();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("ferry.toml: |"));
    lines.next().unwrap_or_else(|| panic!("no ferry.toml in {manifest}"));
    lines
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect()
}

#[test]
fn the_kubernetes_examples_carry_a_valid_ferry_toml() {
    for (manifest, several) in [("ferry.yaml", false), ("ferry-workers.yaml", true)] {
        let text = embedded_config(manifest);
        let config = ferry::config::Config::parse(Path::new(manifest), &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            matches!(config.state, ferry::config::StateConfig::Dynamo(_)),
            several,
            "{manifest}: several replicas need the DynamoDB state"
        );
    }
}
