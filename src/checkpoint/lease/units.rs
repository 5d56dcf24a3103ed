//! Leases below the table: while a table bulk-loads, each segment of its scan or each data file
//! of its export is a lease of its own, and while it streams, each stream shard; so the work of
//! one table spreads over the workers, as KCL spreads a stream's shards.
//!
//! The table's coordinator (the holder of the table's lease: [`crate::source::streams`] and
//! [`crate::snapshot::spread`]) offers a unit through [`Offers`] once it may start (a shard once its
//! parents are finished): it creates the unit's lease, free, with what a shard's reader needs to
//! prove that nothing it reads from the trim horizon was trimmed. The holder reports in each
//! renewal how far a shard is applied (a [`Mark`]: no write of its own), and ends the lease when
//! the unit is finished (after the unit's row says so, durably) or when it fails. An ended lease
//! is never taken again; the coordinator removes a finished one once it has taken it in.
//!
//! ```text
//!   offered (free) ──take──▶ held ──renew (a shard: with its mark)──┐
//!                             │ ▲                                   │
//!                             │ └───────────────────────────────────┘
//!                             ├── finished, its row done ──▶ done ──coordinator──▶ removed
//!                             └── an error retrying cannot fix ──▶ failed (the table fails)
//! ```

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as Av;
use futures::future::BoxFuture;

use super::{Fence, LEASES, Leases, number, text};
use crate::checkpoint::dynamo::conditional;
use crate::error::Result;

/// The key of a shard's lease.
pub fn shard_key(table: &str, shard: &str) -> String {
    format!("shard#{table}#{shard}")
}

/// The key of a snapshot segment's lease.
pub fn segment_key(table: &str, segment: &str) -> String {
    format!("segment#{table}#{segment}")
}

/// The key of an export data file's lease (the file's index in the export's manifest).
pub fn file_key(table: &str, file: &str) -> String {
    format!("file#{table}#{file}")
}

/// The seam between a table's coordinator and the leases of its units (one kind of unit each).
///
/// Contract: `offer` creates a unit's lease unless it exists (offering twice is harmless);
/// `reports` is the table's leases of that kind as the worker last listed them (strongly
/// consistent, at most a coordination round old), by unit id; `remove_done` deletes a finished
/// unit's lease.
pub trait Offers: Send + Sync {
    fn offer<'a>(
        &'a self,
        id: &'a str,
        born_after_ms: Option<i64>,
        first_seq: Option<&'a str>,
    ) -> BoxFuture<'a, Result<()>>;
    fn reports(&self) -> HashMap<String, UnitLease>;
    fn remove_done<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>>;
}

/// The unit of work a lease key names (`#` cannot occur in a table's name).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit<'a> {
    Table(&'a str),
    Shard { table: &'a str, shard: &'a str },
    Segment { table: &'a str, segment: &'a str },
    File { table: &'a str, file: &'a str },
}

impl Unit<'_> {
    pub fn of(key: &str) -> Option<Unit<'_>> {
        if let Some(table) = key.strip_prefix("table#") {
            return Some(Unit::Table(table));
        }
        if let Some(rest) = key.strip_prefix("segment#") {
            let (table, segment) = rest.split_once('#')?;
            return Some(Unit::Segment { table, segment });
        }
        if let Some(rest) = key.strip_prefix("file#") {
            let (table, file) = rest.split_once('#')?;
            return Some(Unit::File { table, file });
        }
        let (table, shard) = key.strip_prefix("shard#")?.split_once('#')?;
        Some(Unit::Shard { table, shard })
    }

    /// For people: "table T", "shard S of table T", "snapshot segment 3 of table T"...
    pub fn label(key: &str) -> String {
        match Unit::of(key) {
            Some(Unit::Table(t)) => format!("table {t}"),
            Some(Unit::Shard { table, shard }) => format!("shard {shard} of table {table}"),
            Some(Unit::Segment { table, segment }) => format!("snapshot segment {segment} of table {table}"),
            Some(Unit::File { table, file }) => format!("export file {file} of table {table}"),
            None => format!("lease {key}"),
        }
    }

    pub fn table(&self) -> &str {
        match self {
            Unit::Table(t)
            | Unit::Shard { table: t, .. }
            | Unit::Segment { table: t, .. }
            | Unit::File { table: t, .. } => t,
        }
    }
}

/// How far a shard is applied, as its holder last renewed its lease.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark {
    /// Every record of the shard up to this time is applied.
    pub applied_ms: i64,
    /// At the shard's tip with nothing in flight.
    pub idle: bool,
    /// Records applied from the shard (its row's count).
    pub records: i64,
    /// The time of the last record applied.
    pub last_ms: Option<i64>,
}

impl Mark {
    /// The lease attributes a renewal sets, and their values.
    pub(super) fn set(&self) -> (String, Vec<(&'static str, Av)>) {
        let mut set = "applied_ms = :applied, idle = :idle, records = :records".to_string();
        let mut values = vec![
            (":applied", Av::N(self.applied_ms.to_string())),
            (":idle", Av::Bool(self.idle)),
            (":records", Av::N(self.records.to_string())),
        ];
        if let Some(ms) = self.last_ms {
            set.push_str(", last_ms = :ms");
            values.push((":ms", Av::N(ms.to_string())));
        }
        (set, values)
    }
}

/// A finished unit: a shard read to its end, with its last applied position (none for an empty
/// shard), or a loaded segment or file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Done {
    pub seq: Option<String>,
    pub time_ms: Option<i64>,
    /// Records applied from the shard, items copied from the segment.
    pub records: i64,
}

/// What a unit's lease carries beyond owner and counter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnitLease {
    /// Created after this time (from the coordinator's listings).
    pub born_after_ms: Option<i64>,
    /// The shard's first sequence number, from the listing.
    pub first_seq: Option<String>,
    pub mark: Option<Mark>,
    pub done: Option<Done>,
    /// Why its holder stopped it for good.
    pub failed: Option<String>,
}

impl UnitLease {
    pub(super) fn of(item: &HashMap<String, Av>) -> UnitLease {
        let flag = |name: &str| item.get(name).and_then(|v| v.as_bool().ok()).copied();
        UnitLease {
            born_after_ms: number(item, "born_after_ms"),
            first_seq: text(item, "first_seq"),
            mark: number(item, "applied_ms").map(|applied_ms| Mark {
                applied_ms,
                idle: flag("idle").unwrap_or(false),
                records: number(item, "records").unwrap_or(0),
                last_ms: number(item, "last_ms"),
            }),
            done: flag("done").filter(|d| *d).map(|_| Done {
                seq: text(item, "last_seq"),
                time_ms: number(item, "last_ms"),
                records: number(item, "records").unwrap_or(0),
            }),
            failed: text(item, "failed"),
        }
    }
}

impl Leases {
    /// Offers a unit that may start: creates its lease, free, unless it exists.
    pub async fn offer(&self, key: &str, born_after_ms: Option<i64>, first_seq: Option<&str>) -> Result<()> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", Av::S(LEASES.into()))
            .item("sk", Av::S(key.into()))
            .item("counter", Av::N("0".into()))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(b) = born_after_ms {
            put = put.item("born_after_ms", Av::N(b.to_string()));
        }
        if let Some(f) = first_seq {
            put = put.item("first_seq", Av::S(f.into()));
        }
        conditional(self.retrier("offering a unit of work"), "PutItem", || {
            put.clone().send()
        })
        .await
        .map(|_| ())
    }

    /// Ends a held lease as finished at `done` (written only after the unit's row says done);
    /// `false` when the lease was lost first.
    pub async fn end_done(&self, fence: &Fence, done: &Done) -> Result<bool> {
        let mut set = vec!["done = :true", "records = :records"];
        let mut values = vec![(":true", Av::Bool(true)), (":records", Av::N(done.records.to_string()))];
        if let Some(seq) = &done.seq {
            set.push("last_seq = :seq");
            values.push((":seq", Av::S(seq.clone())));
        }
        if let Some(ms) = done.time_ms {
            set.push("last_ms = :ms");
            values.push((":ms", Av::N(ms.to_string())));
        }
        self.end(fence, &set.join(", "), values).await
    }

    /// Ends a held lease as failed for `why`; `false` when the lease was lost first.
    pub async fn end_failed(&self, fence: &Fence, why: &str) -> Result<bool> {
        self.end(fence, "failed = :why", vec![(":why", Av::S(why.into()))])
            .await
    }

    async fn end(&self, fence: &Fence, set: &str, values: Vec<(&str, Av)>) -> Result<bool> {
        let expression = format!("SET #counter = :next, {set} REMOVE #owner, #claim");
        let out = self
            .held_write(fence, (&expression, values), fence.counter + 1, "ending a lease")
            .await?;
        Ok(out.is_some())
    }

    /// Removes a finished unit's lease (its coordinator has taken it in).
    pub async fn remove_done(&self, key: &str) -> Result<()> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", Av::S(LEASES.into()))
            .key("sk", Av::S(key.into()))
            .condition_expression("done = :true")
            .expression_attribute_values(":true", Av::Bool(true));
        conditional(self.retrier("removing a finished unit's lease"), "DeleteItem", || {
            delete.clone().send()
        })
        .await
        .map(|_| ())
    }

    /// Removes a lease this worker holds (`ferry checkpoint set` clears a table's unit leases:
    /// the table's coordinator offers the units again from the moved positions).
    pub async fn remove_held(&self, fence: &Fence) -> Result<bool> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", Av::S(LEASES.into()))
            .key("sk", Av::S(fence.key.clone()))
            .condition_expression("#owner = :me AND #counter = :held")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#counter", "counter")
            .expression_attribute_values(":me", Av::S(fence.owner.clone()))
            .expression_attribute_values(":held", Av::N(fence.counter.to_string()));
        let out = conditional(self.retrier("removing a lease"), "DeleteItem", || delete.clone().send()).await?;
        Ok(out.is_some())
    }
}

/// A lease table for tests of the coordinators: each unit's lease and the worker holding it.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;

    use futures::future::BoxFuture;

    use super::{Offers, UnitLease};
    use crate::error::Result;

    #[derive(Default)]
    pub struct Board(pub Mutex<BTreeMap<String, (Option<usize>, UnitLease)>>);

    impl Offers for Board {
        fn offer<'a>(
            &'a self,
            id: &'a str,
            born_after_ms: Option<i64>,
            first_seq: Option<&'a str>,
        ) -> BoxFuture<'a, Result<()>> {
            let lease = UnitLease {
                born_after_ms,
                first_seq: first_seq.map(str::to_string),
                ..UnitLease::default()
            };
            self.0.lock().unwrap().entry(id.into()).or_insert((None, lease));
            Box::pin(async { Ok(()) })
        }

        fn reports(&self) -> HashMap<String, UnitLease> {
            let board = self.0.lock().unwrap();
            board.iter().map(|(id, (_, l))| (id.clone(), l.clone())).collect()
        }

        fn remove_done<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
            self.0.lock().unwrap().remove(id);
            Box::pin(async { Ok(()) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_keys_name_their_unit() {
        assert_eq!(Unit::of("table#orders"), Some(Unit::Table("orders")));
        let key = shard_key("orders", "shardId-0001-abc");
        assert_eq!(
            Unit::of(&key),
            Some(Unit::Shard {
                table: "orders",
                shard: "shardId-0001-abc"
            })
        );
        assert_eq!(Unit::of(&key).unwrap().table(), "orders");
        assert_eq!(
            Unit::of(&segment_key("orders", "7")),
            Some(Unit::Segment {
                table: "orders",
                segment: "7"
            })
        );
        assert_eq!(
            Unit::of(&file_key("orders", "2")),
            Some(Unit::File {
                table: "orders",
                file: "2"
            })
        );
        assert_eq!(Unit::of("migration"), None);
        assert_eq!(Unit::of("shard#orders"), None, "a shard key names its shard");
    }
}
