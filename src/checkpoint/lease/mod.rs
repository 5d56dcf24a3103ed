//! Leases: which worker does which unit of work (a snapshot segment, an export file, a stream
//! shard, an SQS table), kept in the state table beside the positions and moved only by
//! DynamoDB's conditional writes, as in the Kinesis Client Library's lease protocol.
//!
//! A lease is the item `pk = "leases"`, `sk = <unit>` with an `owner` (absent while free) and a
//! `counter` that every take, renewal and release adds one to. Each write is conditional on the
//! counter (and owner) the writer last read or wrote, so two workers can never both believe they
//! won, and a worker that lost a lease learns it at its next write.
//!
//! ```text
//!             create                 take (counter as read)
//!   (none) ───────────▶ free ─────────────────────────────────▶ held by W ──┐ renew (owner W,
//!                        ▲                                        │   ▲      │ counter as held)
//!                        │  release (owner W, counter as held)    │   └──────┘
//!                        └────────────────────────────────────────┘
//!   held by W ── take by V, once the counter stood still a whole lease duration on V's clock ──▶ held by V
//! ```
//!
//! Time is judged only on each worker's own monotonic clock ([`watch`]): V takes W's lease after
//! seeing its counter unchanged for the lease duration; W sends no write under a lease whose last
//! renewal was sent more than the lease duration minus a margin ago; and every position a worker
//! saves under a lease is checked against the lease in the same transaction
//! ([`super::dynamo::DynamoStore::hold`]), so a worker that stalled past its lease
//! (a GC pause, SIGSTOP, a partition) can neither write a stale item nor move a checkpoint.

pub mod keeper;
pub mod keeping;
pub mod share;
pub mod units;
pub mod watch;
pub mod workers;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue as Av, ReturnValue};
use tokio_util::sync::CancellationToken;

use super::dynamo::{conditional, query_all};
use crate::error::{Error, Result};
use crate::retry::{Policy, Retrier};
pub use units::{Mark, Unit, file_key, segment_key, shard_key};

/// The partition of the leases in the state table.
pub const LEASES: &str = "leases";

/// The key of a table's lease (the unit of work each worker takes).
pub fn table_key(table: &str) -> String {
    format!("table#{table}")
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lease {
    pub key: String,
    /// The worker holding it; `None` while free.
    pub owner: Option<String>,
    pub counter: i64,
    /// A worker that asked the holder to hand the lease over.
    pub claim: Option<String>,
    /// A unit's lease (a segment, file or shard): what its holder reported and how it ended
    /// ([`units`]).
    pub unit: units::UnitLease,
}

impl Lease {
    /// Whether the work under it is over (a finished or failed unit): never taken again.
    pub fn ended(&self) -> bool {
        self.unit.done.is_some() || self.unit.failed.is_some()
    }
}

/// A renewal's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Renewed {
    pub fence: Fence,
    /// Another worker asked for the lease ([`Leases::claim`]): its holder hands it over (drains,
    /// then releases).
    pub claimed: bool,
}

/// A lease as this worker holds it: what its writes under the lease are conditional on.
#[derive(Debug, Clone, PartialEq)]
pub struct Fence {
    pub key: String,
    pub owner: String,
    pub counter: i64,
}

/// One worker's view of the leases in the state table `table`.
pub struct Leases {
    client: Client,
    table: String,
    worker: String,
    /// Ends every call's retries (the daemon's stop request).
    stop: CancellationToken,
    policy: Policy,
}

impl Leases {
    /// `client` must have the SDK's retries off (ferry's own driver retries); retries end on
    /// `stop`.
    pub fn new(client: Client, table: &str, worker: &str, stop: &CancellationToken) -> Leases {
        Leases {
            client,
            table: table.to_string(),
            worker: worker.to_string(),
            stop: stop.clone(),
            policy: Policy::DAEMON,
        }
    }

    /// Retries at most `cap` apart: after an outage of the state table, a renewal must land
    /// well within the lease duration, or another worker would take a lease whose holder lives.
    pub fn retrying_within(mut self, cap: std::time::Duration) -> Leases {
        self.policy.cap = cap;
        self
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    fn retrier(&self, what: &str) -> Retrier {
        Retrier::new(self.policy, format!("{what} (lease table {})", self.table)).stop_on(&self.stop)
    }

    /// Every lease, by key (strongly consistent).
    pub async fn list(&self) -> Result<Vec<Lease>> {
        let items = query_all(&self.client, &self.table, LEASES, self.retrier("listing leases")).await?;
        items.iter().map(|item| lease_of(item, &self.table)).collect()
    }

    /// One lease, read consistently; `None` when there is none.
    pub async fn read(&self, key: &str) -> Result<Option<Lease>> {
        let item = self
            .retrier("reading a lease")
            .run(|| async {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", Av::S(LEASES.into()))
                    .key("sk", Av::S(key.into()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("GetItem", e))?;
                Ok(out.item)
            })
            .await?;
        item.map(|i| lease_of(&i, &self.table)).transpose()
    }

    /// Creates `key`'s lease, free, unless it exists.
    pub async fn create(&self, key: &str) -> Result<()> {
        self.offer(key, None, None).await
    }

    /// Asks `lease`'s holder to hand it over (a fair share: see [`Renewed::claimed`]); `false`
    /// when it has another holder by now. The counter does not move: the holder keeps renewing
    /// while it drains.
    pub async fn claim(&self, lease: &Lease) -> Result<bool> {
        let Some(owner) = &lease.owner else {
            return Ok(false);
        };
        let update = self
            .update(&lease.key)
            .update_expression("SET #claim = :me")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#claim", "claim")
            .expression_attribute_values(":me", Av::S(self.worker.clone()))
            .expression_attribute_values(":owner", Av::S(owner.clone()));
        let sent = conditional(self.retrier("claiming a lease"), "UpdateItem", || update.clone().send()).await?;
        Ok(sent.is_some())
    }

    /// Takes `lease` as it was read (free, or expired on this worker's clock). `None` when
    /// another worker wrote it since: the race is lost, nothing changed.
    pub async fn take(&self, lease: &Lease) -> Result<Option<Fence>> {
        let update = self
            .update(&lease.key)
            .update_expression("SET #owner = :me, #counter = :next REMOVE #claim")
            .condition_expression("#counter = :read")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#counter", "counter")
            .expression_attribute_names("#claim", "claim")
            .expression_attribute_values(":me", Av::S(self.worker.clone()))
            .expression_attribute_values(":read", Av::N(lease.counter.to_string()))
            .expression_attribute_values(":next", Av::N((lease.counter + 1).to_string()));
        let sent = conditional(self.retrier("taking a lease"), "UpdateItem", || update.clone().send()).await?;
        let won = match sent {
            Some(_) => true,
            None => self
                .landed(&lease.key, Some(&self.worker), lease.counter + 1)
                .await?
                .is_some(),
        };
        Ok(won.then(|| Fence {
            key: lease.key.clone(),
            owner: self.worker.clone(),
            counter: lease.counter + 1,
        }))
    }

    /// After a refused write that should have left the lease `key` with `owner` at `counter`: the
    /// lease, when it shows exactly that. An attempt whose answer was lost (a timeout) may have
    /// landed, and then its retry is refused; only this worker's own write leaves its lease so.
    async fn landed(&self, key: &str, owner: Option<&str>, counter: i64) -> Result<Option<Lease>> {
        let lease = self.read(key).await?;
        Ok(lease.filter(|l| l.owner.as_deref() == owner && l.counter == counter))
    }

    /// Renews a held lease; `None` when it was lost (taken by another worker).
    pub async fn renew(&self, fence: &Fence) -> Result<Option<Renewed>> {
        self.renew_marked(fence, None).await
    }

    /// [`Leases::renew`], recording how far the work under the lease got (a shard's [`Mark`],
    /// read by the table's coordinator: it costs no write of its own).
    pub async fn renew_marked(&self, fence: &Fence, mark: Option<Mark>) -> Result<Option<Renewed>> {
        let next = fence.counter + 1;
        let (expression, values) = match mark {
            Some(m) => {
                let (set, values) = m.set();
                (format!("SET #counter = :next, {set}"), values)
            }
            None => ("SET #counter = :next".to_string(), vec![]),
        };
        let held = self
            .held_write(fence, (&expression, values), next, "renewing a lease")
            .await?;
        Ok(held.map(|lease| Renewed {
            fence: Fence {
                counter: next,
                ..fence.clone()
            },
            claimed: lease.claim.is_some(),
        }))
    }

    /// Frees a held lease (a graceful hand-off); `false` when it was already lost.
    pub async fn release(&self, fence: &Fence) -> Result<bool> {
        let next = fence.counter + 1;
        let out = self
            .held_write(
                fence,
                ("SET #counter = :next REMOVE #owner, #claim", vec![]),
                next,
                "releasing a lease",
            )
            .await?;
        Ok(out.is_some())
    }

    /// An update of the lease `key`.
    fn update(&self, key: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", Av::S(LEASES.into()))
            .key("sk", Av::S(key.into()))
    }

    /// An update of a lease this worker holds (an expression and its values beyond `:next`),
    /// conditional on owner and counter: the lease as written, or `None` when it was lost. A write
    /// that removes the owner ends the lease.
    async fn held_write(
        &self,
        fence: &Fence,
        (expression, values): (&str, Vec<(&str, Av)>),
        next: i64,
        what: &str,
    ) -> Result<Option<Lease>> {
        let mut update = self
            .update(&fence.key)
            .update_expression(expression)
            .condition_expression("#owner = :me AND #counter = :held")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#counter", "counter")
            .expression_attribute_values(":me", Av::S(fence.owner.clone()))
            .expression_attribute_values(":held", Av::N(fence.counter.to_string()))
            .expression_attribute_values(":next", Av::N(next.to_string()))
            .return_values(ReturnValue::AllNew);
        if expression.contains("#claim") {
            update = update.expression_attribute_names("#claim", "claim");
        }
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        match conditional(self.retrier(what), "UpdateItem", || update.clone().send()).await? {
            Some(out) => match out.attributes {
                Some(a) => lease_of(&a, &self.table).map(Some),
                // ALL_NEW always answers the item; a written lease is this one in any case.
                None => Ok(Some(Lease {
                    key: fence.key.clone(),
                    counter: next,
                    ..Lease::default()
                })),
            },
            None => {
                let ends = expression.contains("REMOVE #owner");
                let owner = (!ends).then_some(fence.owner.as_str());
                self.landed(&fence.key, owner, next).await
            }
        }
    }
}

/// A lease item of the state table `table`.
pub(crate) fn lease_of(item: &std::collections::HashMap<String, Av>, table: &str) -> Result<Lease> {
    let bad = |what: &str| Error::fatal(format!("lease table {table}: a lease item without {what}"));
    Ok(Lease {
        key: text(item, "sk").ok_or_else(|| bad("a key"))?,
        owner: text(item, "owner"),
        claim: text(item, "claim"),
        counter: number(item, "counter").ok_or_else(|| bad("a counter"))?,
        unit: units::UnitLease::of(item),
    })
}

/// A string attribute of a lease or worker item.
fn text(item: &std::collections::HashMap<String, Av>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// A number attribute of a lease or worker item.
fn number(item: &std::collections::HashMap<String, Av>, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}
