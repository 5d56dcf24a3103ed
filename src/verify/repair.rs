//! `--repair`: rewrites differing keys from the source through the apply path. Every key is sent
//! as a fetch (a consistent read of the source's current item, then a put, or a delete when the
//! source has no such item), so missing, differing and extra keys are all fixed by one operation
//! that is right even if the source changed since the comparison.
//!
//! Running beside `ferry sync` is safe: the daemon may briefly write an older image of a repaired
//! key it still had in flight, but it then applies the newer records too (full images, in order).

use std::sync::Arc;

use crate::apply::{Applier, Change, DynamoIo, Limiter, Op, Ticket};
use crate::checkpoint::OrderedAck;
use crate::config::{Clients, TableConfig};
use crate::discover::capacity;
use crate::error::{Error, Result};
use crate::item::KeyBytes;
use crate::retry::Policy;
use crate::telemetry::TableStats;
use crate::transform::Transform;

pub async fn repair(
    src: &Clients,
    dst: &Clients,
    cfg: &TableConfig,
    key_names: Arc<[String]>,
    keys: &[KeyBytes],
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    // The table's write budget, as `ferry sync` resolves it.
    let (configured, name) = (cfg.max_write_units_per_second, &cfg.destination);
    let writes = capacity::write_budget(dst, name, configured, Policy::STARTUP, None).await?;
    tracing::info!(table = %cfg.source, destination = %name, "repair write budget {writes}");
    let applier = applier(src, dst, cfg, &key_names, writes.units_per_second);
    let ack: Arc<OrderedAck<()>> = Arc::new(OrderedAck::new(None));
    let first = ack.register_all(keys.iter().map(|_| (None, true)));
    let mut changes = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let key = k
            .to_item(&key_names)
            .ok_or_else(|| Error::fatal("verify: a compared key could not be decoded"))?;
        changes.push(Change {
            key: k.clone(),
            op: Op::Fetch(key),
            ticket: Ticket {
                sink: ack.clone(),
                index: first + i as u64,
            },
        });
    }
    let submitted = applier.submit_all(changes).await;
    let finished = applier.finish().await;
    submitted.and(finished)?;
    if ack.outstanding() != 0 {
        return Err(Error::fatal(format!(
            "repair of {}: {} writes were not acknowledged",
            cfg.destination,
            ack.outstanding()
        )));
    }
    Ok(())
}

/// The apply path of a repair: `writes` units/s, shaped by the table's transform like every
/// other write (a key the filter now leaves out is deleted).
fn applier(src: &Clients, dst: &Clients, cfg: &TableConfig, key_names: &Arc<[String]>, writes: u32) -> Applier {
    let shape = Arc::new(Transform::new(cfg.transform.clone(), key_names.clone()));
    let io = DynamoIo {
        destination: dst.dynamodb.clone(),
        destination_table: cfg.destination.clone(),
        source: src.dynamodb.clone(),
        source_table: cfg.source.clone(),
        key_names: shape.dest_keys().clone(),
        // Repair re-reads a few keys: no budget.
        read_limiter: Arc::new(Limiter::new(0)),
        stop: tokio_util::sync::CancellationToken::new(),
        stats: Arc::default(),
    };
    Applier::start_with_stop(
        Arc::new(io),
        cfg.write_concurrency as usize,
        Arc::new(Limiter::new(writes)),
        Arc::new(TableStats::default()),
        shape,
        tokio_util::sync::CancellationToken::new(),
    )
}
