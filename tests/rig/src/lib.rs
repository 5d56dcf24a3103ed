//! The local rig, as code: DynamoDB Local started through the project's own scripts
//! (`deploy/local/start.sh`), one database ("account") per access key id, clients, forced shard
//! rollovers, test data, a random workload, full-table comparison and a `ferry` child process.
//!
//! Also the fault-injecting proxy ([`faults`]), the plan tests' set-up ([`plan`]), polling helpers
//! ([`wait`]) and the scenario fixture ([`scenario`]): fresh accounts, a table with rich items, a
//! config, a running sync, caught up.
//!
//! A dev-only crate: ferry's integration tests, benches and examples use it (a path
//! dev-dependency); the product library never links it, and ferry's own unit tests do not use it.

pub mod bench;
pub mod compare;
pub mod convert;
pub mod data;
pub mod faults;
pub mod moto;
mod moto_regions;
mod moto_sqs;
pub mod plan;
pub mod process;
pub mod pump;
pub mod scenario;
pub mod state_contract;
pub mod wait;
pub mod workload;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_credential_types::Credentials;

/// A running DynamoDB Local.
#[derive(Debug, Clone)]
pub struct DynamoLocal {
    pub endpoint: String,
    /// The launcher's admin endpoint (`/rollover`).
    pub admin: String,
    /// The server's JVM, when this process started it (benches read its CPU time).
    pub pid: Option<u32>,
}

/// Region used on the rig; with the access key id it selects the database.
pub const REGION: &str = "us-east-1";

static DDB: OnceLock<DynamoLocal> = OnceLock::new();

/// Runs `deploy/local/start.sh <server>` owned by this process (the server stops when it exits)
/// and returns the `KEY=value` lines it printed.
/// `cpus` (a `taskset` list) confines the server to those cores.
pub(crate) fn start_server(
    server: &str,
    cpus: Option<&str>,
) -> Result<std::collections::HashMap<String, String>, String> {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_dir().join("deploy/local/start.sh"))
        .args([server, "--owner-pid", &std::process::id().to_string()]);
    if let Some(cpus) = cpus {
        cmd.args(["--cpus", cpus]);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("running deploy/local/start.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "deploy/local/start.sh {server} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The repository root (for `deploy/local/*.sh` and `docs/`): this crate lives in `tests/rig/`.
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `ferry` binary under test: `FERRY_BIN` when set (a binary built apart from a target folder
/// shared by several checkouts), else `built`, the one cargo built with the calling test.
pub fn ferry_bin_or(built: &str) -> PathBuf {
    std::env::var_os("FERRY_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(built))
}

/// The `ferry` binary under test, as a `PathBuf` (see [`ferry_bin_or`]). A macro because only
/// ferry's own integration tests, benches and examples see `CARGO_BIN_EXE_ferry`: `env!` must be
/// expanded in the caller.
#[macro_export]
macro_rules! ferry_bin {
    () => {
        $crate::ferry_bin_or(env!("CARGO_BIN_EXE_ferry"))
    };
}

impl DynamoLocal {
    /// The process-wide DynamoDB Local: the one named by `FERRY_DDB_ENDPOINT` and
    /// `FERRY_DDB_ADMIN`, or one started now that exits when this process does.
    pub fn shared() -> &'static DynamoLocal {
        DDB.get_or_init(
            || match (std::env::var("FERRY_DDB_ENDPOINT"), std::env::var("FERRY_DDB_ADMIN")) {
                (Ok(endpoint), Ok(admin)) => DynamoLocal {
                    endpoint,
                    admin,
                    pid: None,
                },
                _ => Self::start().unwrap_or_else(|e| panic!("cannot start DynamoDB Local: {e}")),
            },
        )
    }

    /// Starts a new server owned by this process (the launcher halts when this process exits,
    /// however it exits).
    pub fn start() -> Result<DynamoLocal, String> {
        Self::start_on(None)
    }

    /// [`Self::start`], on the cores `cpus` (a `taskset` list) when given.
    pub fn start_on(cpus: Option<&str>) -> Result<DynamoLocal, String> {
        let out = start_server("ddb", cpus)?;
        let var = |k: &str| out.get(k).cloned().ok_or(format!("start.sh printed no {k}"));
        Ok(DynamoLocal {
            endpoint: var("FERRY_DDB_ENDPOINT")?,
            admin: var("FERRY_DDB_ADMIN")?,
            pid: out.get("FERRY_DDB_PID").and_then(|p| p.parse().ok()),
        })
    }

    /// Closes every open shard of every stream in every database and opens a child shard
    /// (DynamoDB Local never rolls shards over on its own). Returns the databases rolled.
    pub fn rollover(&self) -> Result<u32, String> {
        let body = http_post(&self.admin, "/rollover")?;
        body.trim()
            .parse()
            .map_err(|_| format!("unexpected /rollover answer: {body:?}"))
    }

    pub fn client(&self, account: &Account) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(account.credentials())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    pub fn streams_client(&self, account: &Account) -> aws_sdk_dynamodbstreams::Client {
        let conf = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodbstreams::config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(account.credentials())
            .build();
        aws_sdk_dynamodbstreams::Client::from_conf(conf)
    }
}

/// One DynamoDB Local database: an access key id of its own.
#[derive(Debug, Clone)]
pub struct Account {
    pub access_key_id: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Account {
    /// A fresh, never-used account (unique per process and call), so tests never share a
    /// database (and never pay for another test's stream records).
    pub fn fresh(label: &str) -> Account {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            % 1_000_000;
        Account {
            access_key_id: format!("{label}{}x{n}x{nonce}", std::process::id()),
        }
    }

    pub fn credentials(&self) -> Credentials {
        Credentials::new(&self.access_key_id, "rig-secret", None, None, "ferry-rig")
    }
}

/// Writes an AWS shared config file with one profile per account (for a `ferry` child process).
pub fn write_profiles(dir: &Path, profiles: &[(&str, &Account)]) -> std::io::Result<PathBuf> {
    let path = dir.join("aws-config");
    let text: String = profiles.iter().map(|(name, acct)| profile(name, acct)).collect();
    std::fs::write(&path, text)?;
    Ok(path)
}

/// One profile of an AWS shared config file, for `acct`.
pub fn profile(name: &str, acct: &Account) -> String {
    format!(
        "[profile {name}]\nregion = {REGION}\naws_access_key_id = {}\naws_secret_access_key = rig-secret\n\n",
        acct.access_key_id
    )
}

fn http_post(base: &str, path: &str) -> Result<String, String> {
    let hostport = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(hostport).map_err(|e| format!("connecting to {hostport}: {e}"))?;
    let req = format!("POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let (head, body) = resp.split_once("\r\n\r\n").ok_or("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("POST {path}: {}", head.lines().next().unwrap_or("")));
    }
    Ok(body.to_string())
}
