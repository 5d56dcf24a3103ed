use aws_sdk_dynamodb::types::{
    BillingModeSummary, OnDemandThroughput, ProvisionedThroughputDescription, TableWarmThroughputDescription,
};

use super::*;
use crate::discover::schema::{Extras, TableSchema};

fn provisioned_table(wcu: i64) -> TableDescription {
    TableDescription::builder()
        .billing_mode_summary(
            BillingModeSummary::builder()
                .billing_mode(BillingMode::Provisioned)
                .build(),
        )
        .provisioned_throughput(
            ProvisionedThroughputDescription::builder()
                .read_capacity_units(5)
                .write_capacity_units(wcu)
                .build(),
        )
        .build()
}

/// An on-demand table; DynamoDB reports an unset maximum as -1.
fn on_demand_table(max_write: Option<i64>, warm_write: Option<i64>) -> TableDescription {
    TableDescription::builder()
        .billing_mode_summary(
            BillingModeSummary::builder()
                .billing_mode(BillingMode::PayPerRequest)
                .build(),
        )
        .provisioned_throughput(
            ProvisionedThroughputDescription::builder()
                .read_capacity_units(0)
                .write_capacity_units(0)
                .build(),
        )
        .on_demand_throughput(
            OnDemandThroughput::builder()
                .max_read_request_units(-1)
                .max_write_request_units(max_write.unwrap_or(-1))
                .build(),
        )
        .set_warm_throughput(warm_write.map(|w| {
            TableWarmThroughputDescription::builder()
                .read_units_per_second(3 * w)
                .write_units_per_second(w)
                .build()
        }))
        .build()
}

fn existing(d: &TableDescription, scaling: Scaling) -> WriteBudget {
    resolve(None, &Capacity::of_description(d, scaling))
}

#[test]
fn a_configured_budget_wins_whatever_the_table_and_zero_means_unlimited() {
    for table in [provisioned_table(50), on_demand_table(Some(100), Some(4000))] {
        let c = Capacity::of_description(&table, Scaling::Max(1_000));
        assert_eq!(
            resolve(Some(250), &c),
            WriteBudget {
                units_per_second: 250,
                basis: "max_write_units_per_second".into()
            }
        );
        assert_eq!(
            resolve(Some(0), &c),
            WriteBudget {
                units_per_second: 0,
                basis: "unlimited (max_write_units_per_second = 0)".into()
            }
        );
    }
}

#[test]
fn a_provisioned_destination_gets_the_share_of_its_write_capacity() {
    let b = existing(&provisioned_table(50), Scaling::None);
    assert_eq!(b.units_per_second, 40);
    assert_eq!(b.basis, "80% of the destination's provisioned write capacity (50)");
    assert_eq!(
        b.to_string(),
        "40 write units/s (80% of the destination's provisioned write capacity (50))"
    );
    // Never below one unit a second, so a tiny table still progresses.
    assert_eq!(existing(&provisioned_table(1), Scaling::None).units_per_second, 1);
    // DynamoDB Local describes a provisioned table without a billing summary.
    let plain = TableDescription::builder()
        .provisioned_throughput(
            ProvisionedThroughputDescription::builder()
                .write_capacity_units(10)
                .build(),
        )
        .build();
    assert_eq!(existing(&plain, Scaling::None).units_per_second, 8);
}

#[test]
fn auto_scaling_raises_the_ceiling_to_its_maximum() {
    let b = existing(&provisioned_table(50), Scaling::Max(1_000));
    assert_eq!(b.units_per_second, 800);
    assert_eq!(
        b.basis,
        "80% of the destination's auto-scaling maximum write capacity (1000; provisioned now 50)"
    );
}

#[test]
fn unreadable_auto_scaling_falls_back_to_the_provisioned_capacity_and_says_so() {
    let b = existing(
        &provisioned_table(50),
        Scaling::Unreadable("AccessDeniedException".into()),
    );
    assert_eq!(b.units_per_second, 40);
    assert_eq!(
        b.basis,
        "80% of the destination's provisioned write capacity (50); its auto-scaling could not be read: \
         AccessDeniedException"
    );
}

#[test]
fn on_demand_takes_the_smaller_of_its_maximum_and_its_warm_throughput() {
    let max_only = existing(&on_demand_table(Some(1_000), None), Scaling::None);
    assert_eq!(max_only.units_per_second, 800);
    assert_eq!(
        max_only.basis,
        "80% of the destination's maximum on-demand write request units (1000)"
    );
    let warm_only = existing(&on_demand_table(None, Some(4_000)), Scaling::None);
    assert_eq!(warm_only.units_per_second, 3_200);
    assert_eq!(warm_only.basis, "80% of the destination's warm write throughput (4000)");
    let warm_lower = existing(&on_demand_table(Some(10_000), Some(4_000)), Scaling::None);
    assert_eq!(warm_lower.units_per_second, 3_200);
    assert_eq!(
        warm_lower.basis,
        "80% of the destination's warm write throughput (4000; its on-demand maximum is 10000)"
    );
    let max_lower = existing(&on_demand_table(Some(500), Some(4_000)), Scaling::None);
    assert_eq!(max_lower.units_per_second, 400);
    assert_eq!(
        max_lower.basis,
        "80% of the destination's maximum on-demand write request units (500; warm 4000)"
    );
}

#[test]
fn on_demand_with_no_known_ceiling_is_unlimited_and_says_how_to_limit_it() {
    // Auto-scaling does not apply on demand, whatever was read.
    let b = existing(&on_demand_table(None, None), Scaling::Max(1_000));
    assert_eq!(b.units_per_second, 0);
    assert_eq!(
        b.to_string(),
        "unlimited (on-demand destination; set max_write_units_per_second to limit it)"
    );
}

#[test]
fn a_destination_not_created_yet_is_judged_by_the_schema_ferry_creates_it_from() {
    let planned = |d: &TableDescription| Capacity::of_schema(&TableSchema::from_description(d, &Extras::default()));
    let p = resolve(None, &planned(&provisioned_table(50)));
    assert_eq!(p.units_per_second, 40);
    assert_eq!(
        p.basis,
        "80% of the destination's provisioned write capacity (50), as ferry creates it"
    );
    let od = resolve(None, &planned(&on_demand_table(Some(1_000), Some(4_000))));
    // A schema carries no warm throughput: only the maximum bounds the new table.
    assert_eq!(od.units_per_second, 800);
    assert_eq!(
        od.basis,
        "80% of the destination's maximum on-demand write request units (1000), as ferry creates it"
    );
    let unknown = resolve(None, &planned(&on_demand_table(None, Some(4_000))));
    assert_eq!(unknown.units_per_second, 0);
    assert!(
        unknown
            .basis
            .starts_with("unlimited as ferry creates it (on demand: once created, 80% of the warm write throughput"),
        "{}",
        unknown.basis
    );
}

#[test]
fn the_bulk_load_costs_a_unit_per_started_kb_and_at_least_one_per_item() {
    // 1,000 items of 2 KB.
    assert_eq!(load_units(2_048_000, 1_000), 2_000.0);
    // 1,000 items of 100 bytes still cost a unit each.
    assert_eq!(load_units(100_000, 1_000), 1_000.0);
    assert_eq!(expected_seconds(2_048_000, 1_000, 40), Some(50.0));
    assert_eq!(expected_seconds(2_048_000, 1_000, 0), None);
    let b = existing(&provisioned_table(50), Scaling::None);
    assert_eq!(
        describe(2_048_000, 1_000, &b),
        "write budget 40 write units/s (80% of the destination's provisioned write capacity (50)); the bulk \
         load writes ~2000 write units (1 per started KB of each item)"
    );
}
