//! The scenario fixture: the set-up most live tests repeat. Two fresh accounts on the shared
//! DynamoDB Local, a source table (the rig's hash+range table with a GSI and an LSI) holding rich
//! items, a ferry folder with its `ferry.toml`, and, when asked, a running `ferry sync` that has
//! caught up with the stream.
//!
//! ```ignore
//! let s = Scenario::setup(ferry_bin!()).items(400, 3).keys("p", 13).build().await;
//! let child = s.sync_caught_up(&[]).await;
//! ```

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::StreamViewType;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::compare::Diff;
use crate::data::{big_item, create_table, enable_stream, load, rich_item};
use crate::process::{FerryDir, Running};
use crate::wait::{wait_caught_up, wait_equal};
use crate::{Account, DynamoLocal};

/// The source table's stream.
#[derive(Debug, Clone)]
pub enum Stream {
    /// No stream at all.
    Off,
    /// On from creation: the loaded items are in the stream too.
    AtCreate(StreamViewType),
    /// Turned on after the load: only a snapshot can copy the loaded items.
    AfterLoad(StreamViewType),
}

/// What [`Setup::build`] creates; every part has a default (see [`Scenario::setup`]).
pub struct Setup {
    bin: PathBuf,
    labels: (String, String),
    table: String,
    stream: Stream,
    items: i64,
    seed: u64,
    /// Item `i` gets the partition key `{prefix}{i % groups}` (just `{prefix}` without groups).
    keys: (String, Option<i64>),
    big_item: bool,
    tables: String,
}

/// A set-up scenario. The fields keep the names the tests used for them.
pub struct Scenario {
    pub ddb: &'static DynamoLocal,
    pub src_account: Account,
    pub dst_account: Account,
    pub src: Client,
    pub dst: Client,
    /// The source table's name.
    pub table: String,
    pub ferry: FerryDir,
    /// The generator that made the loaded items, where the load left it (a test's later items
    /// continue the same sequence).
    pub rng: StdRng,
    _dir: tempfile::TempDir,
}

impl Scenario {
    /// Defaults: accounts labelled "src" and "dst", a table "Orders" with a NEW_AND_OLD_IMAGES
    /// stream from creation, no items, and `ferry.toml` copying "Orders" with default settings.
    pub fn setup(bin: PathBuf) -> Setup {
        Setup {
            bin,
            labels: ("src".into(), "dst".into()),
            table: "Orders".into(),
            stream: Stream::AtCreate(StreamViewType::NewAndOldImages),
            items: 0,
            seed: 0,
            keys: ("p".into(), None),
            big_item: false,
            tables: "[[table]]\nsource = \"Orders\"\n".into(),
        }
    }

    /// Starts `ferry sync <extra>` and waits (up to 120 s) until the table streams, caught up.
    pub async fn sync_caught_up(&self, extra: &[&str]) -> Running {
        let child = self.ferry.spawn_sync(extra);
        self.wait_caught_up(Duration::from_secs(120)).await;
        child
    }

    /// Waits until `ferry status` shows the table streaming and caught up.
    pub async fn wait_caught_up(&self, timeout: Duration) {
        wait_caught_up(&self.ferry, &self.table, timeout).await;
    }

    /// Waits until the destination table (same name) equals the source table.
    pub async fn wait_equal(&self, timeout: Duration) -> Diff {
        wait_equal(&self.src, &self.table, &self.dst, &self.table, timeout, || {
            self.ferry.logs()
        })
        .await
    }
}

impl Setup {
    /// Labels of the two fresh accounts (they show in DynamoDB Local's database names).
    pub fn accounts(mut self, src: &str, dst: &str) -> Self {
        self.labels = (src.into(), dst.into());
        self
    }

    pub fn stream(mut self, stream: Stream) -> Self {
        self.stream = stream;
        self
    }

    /// `count` rich items (`data::rich_item`) from a generator seeded with `seed`.
    pub fn items(mut self, count: i64, seed: u64) -> Self {
        (self.items, self.seed) = (count, seed);
        self
    }

    /// Item `i`'s partition key is `{prefix}{i % groups}` (default: "p" for every item).
    pub fn keys(mut self, prefix: &str, groups: i64) -> Self {
        self.keys = (prefix.into(), Some(groups));
        self
    }

    /// One more item of about 390 KB (`data::big_item`), made after the others.
    pub fn big_item(mut self) -> Self {
        self.big_item = true;
        self
    }

    /// The `[[table]]` entries of `ferry.toml`.
    pub fn tables(mut self, toml: &str) -> Self {
        self.tables = toml.into();
        self
    }

    /// Creates the accounts, the table and its items, and the ferry folder.
    pub async fn build(self) -> Scenario {
        let ddb = DynamoLocal::shared();
        let (src_account, dst_account) = (Account::fresh(&self.labels.0), Account::fresh(&self.labels.1));
        let (src, dst) = (ddb.client(&src_account), ddb.client(&dst_account));
        let at_create = match &self.stream {
            Stream::AtCreate(view) => Some(view.clone()),
            Stream::Off | Stream::AfterLoad(_) => None,
        };
        create_table(&src, &self.table, at_create).await;
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut items: Vec<_> = (0..self.items)
            .map(|i| {
                let pk = match self.keys.1 {
                    Some(groups) => format!("{}{}", self.keys.0, i % groups),
                    None => self.keys.0.clone(),
                };
                rich_item(&pk, i, &mut rng)
            })
            .collect();
        if self.big_item {
            items.push(big_item("big", 1, 390, &mut rng));
        }
        load(&src, &self.table, items).await;
        if let Stream::AfterLoad(view) = self.stream {
            enable_stream(&src, &self.table, view).await;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let ferry = FerryDir::new(&self.bin, dir.path(), ddb, &src_account, &dst_account, &self.tables);
        Scenario {
            ddb,
            src_account,
            dst_account,
            src,
            dst,
            table: self.table,
            ferry,
            rng,
            _dir: dir,
        }
    }
}
