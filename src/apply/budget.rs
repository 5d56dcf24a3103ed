//! The destination's write budget: how many write units per second a table's writes (bulk load,
//! stream replay, `verify --repair`) may spend, and where that figure comes from (for the log and
//! `ferry plan`).
//!
//! `max_write_units_per_second` wins when set (0 = unlimited). Unset, the budget is
//! [`DEFAULT_WRITE_SHARE`] of what the destination can take: its provisioned write capacity (the
//! auto-scaling maximum when Application Auto Scaling manages it), or on demand the smaller of its
//! maximum write request units and its warm throughput. A destination that does not exist yet is
//! judged by the schema ferry creates it from. A write costs one unit per started KB of the item
//! ([`crate::apply::Limiter`] enforces the budget).
//!
//! Only the table's own capacity is read: a GSI with less write capacity than its table throttles
//! writes below this budget, which the apply path then retries.

use aws_sdk_dynamodb::types::{BillingMode, TableDescription};

use crate::discover::schema::TableSchema;

/// Share of the destination's write capacity ferry takes when `max_write_units_per_second` is
/// not set. Until cutover ferry is usually the destination's only writer, so it may take most of
/// it; the rest is headroom for writers that start before cutover (or the application right
/// after it while ferry still drains) and for the item-size estimate being off, and throttles
/// beyond it are backed off and retried, never dropped.
pub const DEFAULT_WRITE_SHARE: f64 = 0.8;
/// Bytes per write unit: a write costs one unit per started KB of its item.
pub const BYTES_PER_UNIT: f64 = 1024.0;

/// The budget in force for one table's writes, and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBudget {
    /// Write units per second; 0 = unlimited.
    pub units_per_second: u32,
    pub basis: String,
}

impl std::fmt::Display for WriteBudget {
    /// "40 write units/s (80% of …)", or the basis alone when unlimited (it says so).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.units_per_second {
            0 => f.write_str(&self.basis),
            n => write!(f, "{n} write units/s ({})", self.basis),
        }
    }
}

/// What is known of the destination's write capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    /// Whether the table exists (its description) or is the one ferry will create (its schema).
    pub planned: bool,
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Provisioned write capacity units, and the auto-scaling of that capacity.
    Provisioned { wcu: i64, scaling: Scaling },
    /// On demand: the maximum write request units (a hard cap) and the warm write throughput (what
    /// the table takes at once), each when the table reports it.
    OnDemand {
        max_write: Option<i64>,
        warm_write: Option<i64>,
    },
}

/// Application Auto Scaling of a provisioned table's write capacity.
#[derive(Debug, Clone, PartialEq)]
pub enum Scaling {
    /// No scalable target that may scale out (none registered, scale-out suspended, or a table
    /// ferry creates, which has none).
    None,
    /// The registered maximum of `dynamodb:table:WriteCapacityUnits`.
    Max(i64),
    /// It could not be read (AccessDenied, an endpoint without the API...): why.
    Unreadable(String),
}

impl Capacity {
    /// The capacity of an existing table, `scaling` as read for it (ignored on demand).
    pub fn of_description(d: &TableDescription, scaling: Scaling) -> Capacity {
        let mode = if on_demand(d) {
            Mode::OnDemand {
                max_write: d.on_demand_throughput.as_ref().and_then(|o| o.max_write_request_units),
                warm_write: d.warm_throughput.as_ref().and_then(|w| w.write_units_per_second),
            }
        } else {
            let wcu = d.provisioned_throughput.as_ref().and_then(|p| p.write_capacity_units);
            Mode::Provisioned {
                wcu: wcu.unwrap_or(0),
                scaling,
            }
        };
        Capacity { planned: false, mode }
    }

    /// The capacity of the table ferry creates from `s` (the plan's schema, or one like the
    /// source): no auto-scaling, and a warm throughput only DescribeTable can tell.
    pub fn of_schema(s: &TableSchema) -> Capacity {
        let mode = if s.billing_mode == BillingMode::PayPerRequest.as_str() {
            Mode::OnDemand {
                max_write: s.on_demand_throughput.as_ref().and_then(|o| o.max_write_request_units),
                warm_write: None,
            }
        } else {
            Mode::Provisioned {
                wcu: s.provisioned_throughput.as_ref().map_or(0, |p| p.write_capacity_units),
                scaling: Scaling::None,
            }
        };
        Capacity { planned: true, mode }
    }
}

/// A table described without a billing summary is provisioned (older tables, DynamoDB Local).
fn on_demand(d: &TableDescription) -> bool {
    d.billing_mode_summary
        .as_ref()
        .and_then(|b| b.billing_mode.as_ref())
        .is_some_and(|m| *m == BillingMode::PayPerRequest)
}

/// The budget for `max_write_units_per_second = configured` on a destination of capacity `c`.
pub fn resolve(configured: Option<u32>, c: &Capacity) -> WriteBudget {
    if let Some(n) = configured {
        return self::configured(n);
    }
    let created = if c.planned { ", as ferry creates it" } else { "" };
    match &c.mode {
        Mode::Provisioned { wcu, scaling } => provisioned(*wcu, scaling, created),
        Mode::OnDemand { max_write, warm_write } => {
            // DynamoDB reports an unset maximum as -1.
            let max = max_write.filter(|m| *m > 0);
            let warm = warm_write.filter(|w| *w > 0);
            let ceiling = match (max, warm) {
                (Some(m), Some(w)) if w < m => {
                    Some((w, format!("warm write throughput ({w}; its on-demand maximum is {m})")))
                }
                (Some(m), Some(w)) => Some((m, format!("maximum on-demand write request units ({m}; warm {w})"))),
                (Some(m), None) => Some((m, format!("maximum on-demand write request units ({m})"))),
                (None, Some(w)) => Some((w, format!("warm write throughput ({w})"))),
                (None, None) => None,
            };
            match ceiling {
                Some((units, what)) => share_of(units, &format!("the destination's {what}{created}")),
                // DynamoDB reports a new on-demand table's warm throughput (4,000 write units/s on
                // AWS) only once it exists: say what sync will find rather than guess it here.
                None if c.planned => budget(
                    0,
                    format!(
                        "unlimited as ferry creates it (on demand: once created, {:.0}% of the warm write \
                         throughput DynamoDB reports, 4000 for a new table on AWS; set max_write_units_per_second \
                         to fix it)",
                        DEFAULT_WRITE_SHARE * 100.0
                    ),
                ),
                None => budget(
                    0,
                    "unlimited (on-demand destination; set max_write_units_per_second to limit it)".into(),
                ),
            }
        }
    }
}

/// The budget `max_write_units_per_second = n` sets (0 = unlimited).
pub fn configured(n: u32) -> WriteBudget {
    let basis = match n {
        0 => "unlimited (max_write_units_per_second = 0)",
        _ => "max_write_units_per_second",
    };
    budget(n, basis.to_string())
}

fn provisioned(wcu: i64, scaling: &Scaling, created: &str) -> WriteBudget {
    let provisioned = |note: &str| {
        if wcu <= 0 {
            return budget(
                0,
                format!(
                    "unlimited (the destination reports no write capacity; set max_write_units_per_second to limit it){note}"
                ),
            );
        }
        share_of(
            wcu,
            &format!("the destination's provisioned write capacity ({wcu}){created}{note}"),
        )
    };
    match scaling {
        Scaling::Max(max) if *max > 0 => share_of(
            *max,
            &format!("the destination's auto-scaling maximum write capacity ({max}; provisioned now {wcu})"),
        ),
        Scaling::Unreadable(why) => provisioned(&format!("; its auto-scaling could not be read: {why}")),
        _ => provisioned(""),
    }
}

/// [`DEFAULT_WRITE_SHARE`] of `units`, at least 1, described as a share of `what`.
fn share_of(units: i64, what: &str) -> WriteBudget {
    let n = ((units as f64 * DEFAULT_WRITE_SHARE) as u64).clamp(1, u32::MAX as u64) as u32;
    budget(n, format!("{:.0}% of {what}", DEFAULT_WRITE_SHARE * 100.0))
}

fn budget(units_per_second: u32, basis: String) -> WriteBudget {
    WriteBudget {
        units_per_second,
        basis,
    }
}

/// Write units a bulk load of `items` items totalling `bytes` costs: one per started KB of each
/// item, so at least one per item (the table's size alone would undercount small items).
pub fn load_units(bytes: u64, items: u64) -> f64 {
    (bytes as f64 / BYTES_PER_UNIT).max(items as f64)
}

/// Seconds a bulk load takes at `units_per_second`; `None` when unlimited.
pub fn expected_seconds(bytes: u64, items: u64, units_per_second: u32) -> Option<f64> {
    (units_per_second > 0).then(|| load_units(bytes, items) / units_per_second as f64)
}

/// The budget line of `ferry plan`: the budget, its basis, and what the bulk load costs.
pub fn describe(bytes: u64, items: u64, writes: &WriteBudget) -> String {
    format!(
        "write budget {writes}; the bulk load writes ~{:.0} write units (1 per started KB of each item)",
        load_units(bytes, items)
    )
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
