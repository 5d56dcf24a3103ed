//! The destination's ceilings: fresh puts, and each mix's own changes, by tuned concurrent
//! BatchWriteItem writers that read no stream.

use super::*;

pub(super) async fn ceiling(ddb: &DynamoLocal, n: usize) -> Result<f64, String> {
    let warm = bench::ceiling_run(ddb, WARMUP_ITEMS, 16).await?;
    say(format!(
        "warm-up: {WARMUP_ITEMS} items at {warm:.0} items/s (not counted)"
    ));
    let mut best = 0f64;
    for w in CEILING_WRITERS {
        let rate = bench::ceiling_run(ddb, n, w).await?;
        say(format!(
            "ceiling: {w} concurrent BatchWriteItem writers: {rate:.0} items/s"
        ));
        best = best.max(rate);
    }
    Ok(best)
}

/// The destination's ceiling for one mix: the same N changes written by a tuned concurrent
/// BatchWriteItem load that knows them all in advance (per-key order kept, no key twice in a batch,
/// no stream to read), into a fresh table without a stream.
/// Unlike the fresh-puts ceiling, it pays for this mix's deletes and overwrites, as ferry must; it
/// cannot coalesce, as ferry may. The best rate of `writers`, its CPU, and its writer count.
pub(super) async fn mix_ceiling(
    dst: &DynamoLocal,
    changes: &[bench::Change],
    name: &str,
    writers: &[usize],
) -> Result<(f64, cpu::Split, usize), String> {
    let mut best = (0f64, None, 0);
    for &w in writers {
        let c = dst.client(&Account::fresh("mixceil"));
        bench::create_plain_table(&c, None).await?;
        let meter = cpu::Meter::start(&[("destination JVM", dst.pid), ("writer", Some(std::process::id()))]);
        let took = bench::write_lanes(&c, TABLE, bench::plan_batches(changes, w)).await?;
        let split = meter.stop(&[]);
        bench::drop_table(&c).await;
        let rate = changes.len() as f64 / took.as_secs_f64();
        say(format!(
            "{name}: ceiling for this mix, {w} concurrent BatchWriteItem writers: {rate:.0} changes/s"
        ));
        if rate > best.0 {
            best = (rate, Some(split), w);
        }
    }
    Ok((best.0, best.1.ok_or("no ceiling run")?, best.2))
}
