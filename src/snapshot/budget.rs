//! The snapshot scan's read budget on the source: how many read units per second it may spend,
//! how large a page may be so that paying after the read does not overshoot it, and how long the
//! scan should take at that budget.
//!
//! A consistent Scan costs one read unit per 4 KB of the items a page returns (summed over the
//! page, then rounded up). The budget is enforced by [`crate::apply::Limiter`], charged with what
//! each page consumed (`ReturnConsumedCapacity = TOTAL`) once it has been read.

use aws_sdk_dynamodb::types::{BillingMode, TableDescription};

/// Share of a table's read capacity the snapshot takes when `max_read_units_per_second` is not
/// set: production reads keep the other half (peers default to the same).
pub const DEFAULT_SHARE: f64 = 0.5;
/// Bytes per read unit of a strongly consistent read.
pub const BYTES_PER_UNIT: f64 = 4096.0;
/// Scan pages stop at 1 MB whatever the Limit.
const PAGE_BYTES: f64 = 1024.0 * 1024.0;

/// The budget in force for one table's source reads, and where it comes from (for the log and
/// `ferry plan`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadBudget {
    /// Read units per second; 0 = unlimited.
    pub units_per_second: u32,
    pub basis: String,
}

/// The budget for `max_read_units_per_second = configured` on the source table `t`: as set
/// (0 = unlimited), else [`DEFAULT_SHARE`] of a provisioned table's read capacity (or of an
/// on-demand table's maximum read request units, when it has one), else unlimited.
pub fn resolve(configured: Option<u32>, t: &TableDescription) -> ReadBudget {
    if let Some(n) = configured {
        let basis = if n == 0 {
            "unlimited (max_read_units_per_second = 0)"
        } else {
            "max_read_units_per_second"
        };
        return ReadBudget {
            units_per_second: n,
            basis: basis.to_string(),
        };
    }
    let on_demand = t
        .billing_mode_summary
        .as_ref()
        .and_then(|b| b.billing_mode.as_ref())
        .is_some_and(|m| *m == BillingMode::PayPerRequest);
    let (capacity, what) = if on_demand {
        let max = t.on_demand_throughput.as_ref().and_then(|o| o.max_read_request_units);
        (max.unwrap_or(0), "the table's maximum on-demand read request units")
    } else {
        let rcu = t.provisioned_throughput.as_ref().and_then(|p| p.read_capacity_units);
        (rcu.unwrap_or(0), "the table's provisioned read capacity")
    };
    if capacity <= 0 {
        return ReadBudget {
            units_per_second: 0,
            basis: "unlimited (on-demand table; set max_read_units_per_second to limit it)".to_string(),
        };
    }
    let units = ((capacity as f64 * DEFAULT_SHARE) as u32).max(1);
    ReadBudget {
        units_per_second: units,
        basis: format!("{:.0}% of {what} ({capacity})", DEFAULT_SHARE * 100.0),
    }
}

/// Read units a consistent scan of `bytes` of items costs (page rounding adds at most one unit
/// per page).
pub fn scan_units(bytes: u64) -> f64 {
    (bytes as f64 / BYTES_PER_UNIT).ceil()
}

/// Seconds a consistent scan of `bytes` takes at `units_per_second`; `None` when unlimited.
pub fn expected_seconds(bytes: u64, units_per_second: u32) -> Option<f64> {
    (units_per_second > 0).then(|| scan_units(bytes) / units_per_second as f64)
}

/// Scan `Limit` (items per page) under a budget of `units_per_second` shared by `readers`
/// segments read at once, for items of about `avg_item_bytes`; `None` when a full 1 MB page fits
/// the budget anyway (or there is none).
///
/// Pages are paid for after they are read, so up to one page per reader is read ahead of the
/// budget: keeping a page to half a second's budget split across the readers bounds that overshoot
/// to half a second of budget, however many segments there are.
pub fn page_limit(units_per_second: u32, readers: usize, avg_item_bytes: u64) -> Option<i32> {
    if units_per_second == 0 {
        return None;
    }
    let page_units = (units_per_second as f64 / (2.0 * readers.max(1) as f64)).max(1.0);
    let page_bytes = page_units * BYTES_PER_UNIT;
    if page_bytes >= PAGE_BYTES {
        return None;
    }
    let items = (page_bytes / avg_item_bytes.max(1) as f64).floor();
    Some(items.clamp(1.0, i32::MAX as f64) as i32)
}

/// The scan's cost and expected time at `reads`, for `ferry plan`.
pub fn describe(bytes: u64, reads: &ReadBudget) -> String {
    let units = scan_units(bytes);
    match expected_seconds(bytes, reads.units_per_second) {
        Some(s) => format!(
            "snapshot scan reads ~{units:.0} read units (consistent, 4 KB each): ~{} at {} read units/s ({})",
            crate::clock::human(s),
            reads.units_per_second,
            reads.basis
        ),
        None => format!(
            "snapshot scan reads ~{units:.0} read units (consistent, 4 KB each); read budget {}",
            reads.basis
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::{BillingModeSummary, OnDemandThroughput, ProvisionedThroughputDescription};

    fn table(mode: BillingMode, rcu: i64, od_max: Option<i64>) -> TableDescription {
        TableDescription::builder()
            .billing_mode_summary(BillingModeSummary::builder().billing_mode(mode).build())
            .provisioned_throughput(
                ProvisionedThroughputDescription::builder()
                    .read_capacity_units(rcu)
                    .build(),
            )
            .set_on_demand_throughput(od_max.map(|m| OnDemandThroughput::builder().max_read_request_units(m).build()))
            .build()
    }

    #[test]
    fn the_default_takes_half_of_a_provisioned_table_and_leaves_on_demand_unlimited() {
        let b = resolve(None, &table(BillingMode::Provisioned, 1_000, None));
        assert_eq!(b.units_per_second, 500);
        assert_eq!(b.basis, "50% of the table's provisioned read capacity (1000)");
        assert_eq!(
            resolve(None, &table(BillingMode::Provisioned, 1, None)).units_per_second,
            1
        );
        let od = resolve(None, &table(BillingMode::PayPerRequest, 0, None));
        assert_eq!(od.units_per_second, 0);
        assert!(od.basis.starts_with("unlimited (on-demand"), "{}", od.basis);
        assert_eq!(
            resolve(None, &table(BillingMode::PayPerRequest, 0, Some(400))).units_per_second,
            200
        );
        // A table described without a billing summary is provisioned (older tables, moto).
        let plain = TableDescription::builder()
            .provisioned_throughput(
                ProvisionedThroughputDescription::builder()
                    .read_capacity_units(10)
                    .build(),
            )
            .build();
        assert_eq!(resolve(None, &plain).units_per_second, 5);
    }

    #[test]
    fn a_configured_budget_wins_and_zero_means_unlimited() {
        let t = table(BillingMode::Provisioned, 1_000, None);
        assert_eq!(resolve(Some(50), &t).units_per_second, 50);
        let b = resolve(Some(0), &t);
        assert_eq!(
            (b.units_per_second, b.basis.as_str()),
            (0, "unlimited (max_read_units_per_second = 0)")
        );
    }

    #[test]
    fn expected_time_is_the_table_in_4_kb_units_over_the_budget() {
        assert_eq!(expected_seconds(4096 * 1000, 100), Some(10.0));
        assert_eq!(expected_seconds(1, 100), Some(0.01));
        assert_eq!(expected_seconds(4096 * 1000, 0), None);
    }

    #[test]
    fn pages_are_small_enough_that_reading_ahead_stays_within_half_a_second_of_budget() {
        // 100 units/s over 32 readers: 1.5625 units a page, 6,400 bytes: 6 items of 1 KB.
        assert_eq!(page_limit(100, 32, 1024), Some(6));
        // A page always holds at least one item, whatever its size.
        assert_eq!(page_limit(10, 32, 400_000), Some(1));
        // A large budget leaves pages at DynamoDB's 1 MB.
        assert_eq!(page_limit(100_000, 4, 1024), None);
        assert_eq!(page_limit(0, 4, 1024), None);
    }

    #[test]
    fn the_scan_line_shows_the_expected_time_at_the_read_budget() {
        let reads = ReadBudget {
            units_per_second: 500,
            basis: "50% of the table's provisioned read capacity (1000)".into(),
        };
        assert_eq!(
            describe(4096 * 600_000, &reads),
            "snapshot scan reads ~600000 read units (consistent, 4 KB each): ~20 min at 500 read units/s \
             (50% of the table's provisioned read capacity (1000))"
        );
        let unlimited = ReadBudget {
            units_per_second: 0,
            basis: "unlimited (on-demand table; set max_read_units_per_second to limit it)".into(),
        };
        assert!(
            describe(4096, &unlimited)
                .ends_with("read budget unlimited (on-demand table; set max_read_units_per_second to limit it)")
        );
    }
}
