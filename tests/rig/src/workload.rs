//! A random write workload against a source table: puts, updates, conditional writes and deletes
//! on hot and cold keys, from several concurrent writers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue as Av;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::data::{key_of, rich_item};

#[derive(Debug, Clone)]
pub struct Workload {
    pub client: Client,
    pub table: String,
    /// Keys under pk "hot": written over and over.
    pub hot_keys: i64,
    /// Keys spread over many partitions.
    pub cold_keys: i64,
    pub writers: usize,
    pub seed: u64,
    /// Pause between a writer's operations (0 = as fast as possible).
    pub pause: Duration,
}

#[derive(Debug, Default)]
pub struct Counts {
    pub puts: AtomicU64,
    pub updates: AtomicU64,
    pub conditional: AtomicU64,
    pub conditional_failed: AtomicU64,
    pub deletes: AtomicU64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.puts.load(Relaxed)
            + self.updates.load(Relaxed)
            + self.conditional.load(Relaxed)
            + self.deletes.load(Relaxed)
    }
}

impl Workload {
    pub fn new(client: Client, table: &str) -> Workload {
        Workload {
            client,
            table: table.into(),
            hot_keys: 5,
            cold_keys: 2_000,
            writers: 4,
            seed: 7,
            pause: Duration::ZERO,
        }
    }

    /// Runs until `stop` is cancelled or `max_ops` operations were made (per writer share).
    /// Runs the workload in the background until `stop`.
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<Result<Arc<Counts>, String>> {
        tokio::spawn(async move { self.run(stop, None).await })
    }

    pub async fn run(&self, stop: CancellationToken, max_ops: Option<u64>) -> Result<Arc<Counts>, String> {
        let counts = Arc::new(Counts::default());
        self.run_counting(stop, max_ops, counts.clone()).await?;
        Ok(counts)
    }

    /// Like [`Workload::run`], counting into `counts` as it goes (so a test can wait on them).
    pub async fn run_counting(
        &self,
        stop: CancellationToken,
        max_ops: Option<u64>,
        counts: Arc<Counts>,
    ) -> Result<(), String> {
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..self.writers {
            let me = self.clone();
            let counts = counts.clone();
            let stop = stop.clone();
            let limit = max_ops.map(|m| m.div_ceil(self.writers as u64));
            tasks.spawn(async move { me.writer(w as u64, stop, limit, counts).await });
        }
        while let Some(r) = tasks.join_next().await {
            r.map_err(|e| format!("workload writer panicked: {e}"))??;
        }
        Ok(())
    }

    fn pick_key(&self, rng: &mut StdRng) -> (String, i64) {
        if rng.random_bool(0.5) {
            ("hot".to_string(), rng.random_range(0..self.hot_keys))
        } else {
            let i = rng.random_range(0..self.cold_keys);
            (format!("cold-{}", i / 10), i)
        }
    }

    async fn writer(
        &self,
        w: u64,
        stop: CancellationToken,
        limit: Option<u64>,
        counts: Arc<Counts>,
    ) -> Result<(), String> {
        let mut rng = StdRng::seed_from_u64(self.seed.wrapping_mul(1_000_003).wrapping_add(w));
        let mut done = 0u64;
        while !stop.is_cancelled() && limit.is_none_or(|l| done < l) {
            let (pk, sk) = self.pick_key(&mut rng);
            let roll: f64 = rng.random();
            self.write_one(&pk, sk, roll, &mut rng, &counts)
                .await
                .map_err(|e| format!("workload write failed: {e}"))?;
            done += 1;
            if !self.pause.is_zero() {
                tokio::time::sleep(self.pause).await;
            }
        }
        Ok(())
    }

    /// One operation on (`pk`, `sk`), chosen by `roll`: 35% puts, 25% updates, 20% conditional
    /// writes, 20% deletes.
    async fn write_one(&self, pk: &str, sk: i64, roll: f64, rng: &mut StdRng, counts: &Counts) -> Result<(), String> {
        if roll < 0.35 {
            counts.puts.fetch_add(1, Relaxed);
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(rich_item(pk, sk, rng)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| e.into_service_error().to_string())
        } else if roll < 0.60 {
            counts.updates.fetch_add(1, Relaxed);
            self.update(pk, sk, rng).await
        } else if roll < 0.80 {
            counts.conditional.fetch_add(1, Relaxed);
            self.conditional_write(pk, sk, roll < 0.70, rng, counts).await
        } else {
            counts.deletes.fetch_add(1, Relaxed);
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key_of(pk, sk)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| e.into_service_error().to_string())
        }
    }

    async fn update(&self, pk: &str, sk: i64, rng: &mut StdRng) -> Result<(), String> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(pk, sk)))
            .update_expression("SET #c = if_not_exists(#c, :zero) + :one, s = :s ADD tags :tag")
            .expression_attribute_names("#c", "counter")
            .expression_attribute_values(":zero", Av::N("0".into()))
            .expression_attribute_values(":one", Av::N("1".into()))
            .expression_attribute_values(":s", Av::S(format!("updated-{}", rng.random::<u32>())))
            .expression_attribute_values(":tag", Av::Ss(vec![format!("t{}", rng.random_range(0..5))]))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.into_service_error().to_string())
    }

    /// A put of a new item (`create`) or an update of an existing one, each under a condition
    /// that may fail (counted, not an error).
    async fn conditional_write(
        &self,
        pk: &str,
        sk: i64,
        create: bool,
        rng: &mut StdRng,
        counts: &Counts,
    ) -> Result<(), String> {
        let c = &self.client;
        if create {
            let r = c
                .put_item()
                .table_name(&self.table)
                .set_item(Some(rich_item(pk, sk, rng)))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            conditional(r.map(|_| ()).map_err(|e| e.into_service_error()), counts)
        } else {
            let r = c
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_of(pk, sk)))
                .update_expression("SET flag = :f REMOVE nothing")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":f", Av::Bool(rng.random()))
                .send()
                .await;
            conditional(r.map(|_| ()).map_err(|e| e.into_service_error()), counts)
        }
    }
}

fn conditional<E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::fmt::Display>(
    r: Result<(), E>,
    counts: &Counts,
) -> Result<(), String> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
            counts.conditional_failed.fetch_add(1, Relaxed);
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}
