//! `ferry` as a child process on the rig: its config, credential profiles and state in one
//! working folder, started, signalled and killed the way an operator (or a crash) would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use super::{Account, DynamoLocal, profile, write_profiles};

pub struct FerryDir {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub config: PathBuf,
    aws_config: PathBuf,
    runs: std::cell::Cell<u32>,
}

impl FerryDir {
    /// Writes `ferry.toml` (source profile "src", destination profile "dst", both on `ddb`) with
    /// the given `[[table]]` entries, and the AWS profiles for the two accounts.
    pub fn new(bin: &Path, dir: &Path, ddb: &DynamoLocal, src: &Account, dst: &Account, tables: &str) -> FerryDir {
        Self::between(bin, dir, (ddb, src), (ddb, dst), tables)
    }

    /// Like [`FerryDir::new`], with the source and destination on their own endpoints.
    pub fn between(
        bin: &Path,
        dir: &Path,
        (src_ddb, src): (&DynamoLocal, &Account),
        (dst_ddb, dst): (&DynamoLocal, &Account),
        tables: &str,
    ) -> FerryDir {
        std::fs::create_dir_all(dir).expect("work dir");
        let aws_config = write_profiles(dir, &[("src", src), ("dst", dst)]).expect("profiles");
        std::fs::write(dir.join("aws-credentials"), "").expect("credentials file");
        let config = dir.join("ferry.toml");
        let text = format!(
            "[source]\nprofile = \"src\"\nendpoint_url = \"{s}\"\n\n[destination]\nprofile = \"dst\"\nendpoint_url = \"{d}\"\n\n\
             [state]\npath = \"state/ferry.db\"\n\n{tables}\n",
            s = src_ddb.endpoint,
            d = dst_ddb.endpoint
        );
        std::fs::write(&config, text).expect("ferry.toml");
        FerryDir {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            config,
            aws_config,
            runs: Default::default(),
        }
    }

    /// A folder with a hand-written `ferry.toml` (`config` may use any endpoints) and profiles
    /// "src" and "dst" for the two accounts.
    pub fn custom(bin: &Path, dir: &Path, src: &Account, dst: &Account, config: &str) -> FerryDir {
        std::fs::create_dir_all(dir).expect("work dir");
        let aws_config = write_profiles(dir, &[("src", src), ("dst", dst)]).expect("profiles");
        std::fs::write(dir.join("aws-credentials"), "").expect("credentials file");
        let path = dir.join("ferry.toml");
        std::fs::write(&path, config).expect("ferry.toml");
        FerryDir {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            config: path,
            aws_config,
            runs: Default::default(),
        }
    }

    /// Moves the state to a DynamoDB table in `account` (profile "state", on the destination's
    /// endpoint), so that several `ferry sync` workers can share the migration.
    pub fn state_in_dynamodb(&self, account: &Account, failover_seconds: u64) {
        self.state_in_dynamodb_via(account, failover_seconds, None);
    }

    /// [`FerryDir::state_in_dynamodb`], reaching the state table through `endpoint` when given (a
    /// counting proxy).
    pub fn state_in_dynamodb_via(&self, account: &Account, failover_seconds: u64, endpoint: Option<&str>) {
        let config = std::fs::read_to_string(&self.config).expect("ferry.toml");
        let sqlite = "[state]\npath = \"state/ferry.db\"\n";
        assert!(config.contains(sqlite), "a ferry.toml written by FerryDir::new");
        let mut dynamo =
            format!("[state]\nbackend = \"dynamodb\"\nprofile = \"state\"\nfailover_seconds = {failover_seconds}\n");
        if let Some(url) = endpoint {
            dynamo.push_str(&format!("endpoint_url = \"{url}\"\n"));
        }
        std::fs::write(&self.config, config.replacen(sqlite, &dynamo, 1)).expect("ferry.toml");
        let mut profiles = std::fs::read_to_string(&self.aws_config).expect("aws-config");
        profiles.push_str(&profile("state", account));
        std::fs::write(&self.aws_config, profiles).expect("aws-config");
    }

    /// The log of the `n`th `ferry sync` started here (from 1).
    pub fn log(&self, n: u32) -> String {
        std::fs::read_to_string(self.dir.join(format!("sync-{n}.log"))).unwrap_or_default()
    }

    /// A `ferry` command with only this folder's AWS profiles visible.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args).current_dir(&self.dir);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                c.env_remove(k);
            }
        }
        c.env("AWS_CONFIG_FILE", &self.aws_config)
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.join("aws-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env(
                "FERRY_LOG",
                std::env::var("FERRY_LOG").unwrap_or_else(|_| "info,aws=warn".into()),
            );
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().expect("run ferry")
    }

    /// Starts `ferry sync -c ferry.toml <extra>` in the background, logging to `sync-N.log`.
    pub fn spawn_sync(&self, extra: &[&str]) -> Running {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let log = std::fs::File::create(self.dir.join(format!("sync-{n}.log"))).expect("log file");
        let mut args = vec!["sync", "-c", "ferry.toml"];
        args.extend_from_slice(extra);
        self.command(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .map(Running)
            .expect("spawn ferry sync")
    }

    /// `ferry status --json`, parsed.
    /// `ferry verify -c ferry.toml --json <extra>`: its exit code and the first table's report.
    pub fn verify(&self, extra: &[&str]) -> (i32, serde_json::Value) {
        let mut args = vec!["verify", "-c", "ferry.toml", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let json = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "verify printed no JSON ({e}); stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), json[0].clone())
    }

    pub fn status(&self) -> serde_json::Value {
        let out = self.run(&["status", "-c", "ferry.toml", "--json"]);
        if !out.status.success() {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// The status entry of one table.
    pub fn table_status(&self, table: &str) -> Option<serde_json::Value> {
        self.status().as_array()?.iter().find(|t| t["table"] == table).cloned()
    }

    /// Every sync log so far, whole: what a test looks for a line in (a retry storm under load
    /// can push any line out of [`Self::logs`]' tails).
    pub fn all_logs(&self) -> String {
        (1..=self.runs.get())
            .map(|n| self.log(n))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Benches: copies the first sync log to `$FERRY_BENCH_LOGS/ferry-<name>.log` when that
    /// variable names a folder (with `FERRY_LOG=info,ferry::apply::concurrency=debug`, the
    /// concurrency limit's every window).
    pub fn keep_log(&self, name: &str) {
        if let Ok(logs) = std::env::var("FERRY_BENCH_LOGS") {
            let _ = std::fs::copy(
                self.dir.join("sync-1.log"),
                Path::new(&logs).join(format!("ferry-{name}.log")),
            );
        }
    }

    /// The tail of every sync log so far, for failure messages.
    pub fn logs(&self) -> String {
        (1..=self.runs.get())
            .map(|n| {
                let text = self.log(n);
                let tail: Vec<&str> = text
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                format!("--- sync-{n}.log (tail) ---\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Sends SIGTERM (the operator's stop).
pub fn terminate(child: &Child) {
    signal(child, "TERM");
}

/// Sends the signal `name` ("TERM", "STOP", "CONT"...).
pub fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status();
}

/// A running `ferry sync`, killed if still running when dropped (a failing test or demo never
/// leaves one behind).
pub struct Running(pub Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The example keys of `kind` (missing, extra, differing) in a verify report, as `pk/<sort>`
/// sorted, where the sort key attribute is named `sort`.
pub fn example_keys(report: &serde_json::Value, kind: &str, sort: &str) -> Vec<String> {
    let mut v: Vec<String> = report["examples"]
        .as_array()
        .expect("examples")
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| {
            let key = &e["key"];
            format!(
                "{}/{}",
                key["pk"]["S"].as_str().unwrap(),
                key[sort]["N"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}
