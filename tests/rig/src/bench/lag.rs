//! The replication-lag probe: paced writes to the source, polled at the destination until each
//! version is visible, and the quantiles and per-second series of the lags seen.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as Av, KeysAndAttributes};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::item;
use crate::data::key_of;

/// Writes not yet seen on the destination: pk → (version, time the write returned), in order.
type Pending = Arc<Mutex<HashMap<String, VecDeque<(u64, Instant)>>>>;

/// One measured write: when it returned (since the probe started) and its replication lag.
#[derive(Debug, Clone, Copy)]
pub struct LagSample {
    pub written_at: Duration,
    pub lag: Duration,
}

#[derive(Debug, Clone)]
pub struct LagReport {
    pub samples: Vec<LagSample>,
    pub writes: usize,
    pub write_secs: f64,
    /// The checker's load on the destination: BatchGetItem calls, and keys read, in all.
    pub probe_calls: usize,
    pub probe_keys: usize,
}

pub struct LagProbe {
    pub src: Client,
    pub dst: Client,
    pub table: String,
    pub rate: u64,
    pub duration: Duration,
    pub keys: usize,
    pub writers: usize,
}

fn lag_pk(k: usize) -> String {
    format!("lag{k:05}")
}

impl LagProbe {
    /// Runs the paced writer and the visibility checker; every write's lag.
    pub async fn run(&self) -> Result<LagReport, String> {
        let pending: Pending = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let checker = tokio::spawn(check_visible(
            self.dst.clone(),
            self.table.clone(),
            pending.clone(),
            done.clone(),
            start,
        ));
        let writes = self.paced_writes(&pending).await;
        let write_secs = start.elapsed().as_secs_f64();
        done.store(true, Relaxed);
        let (samples, (probe_calls, probe_keys)) = checker.await.map_err(|e| e.to_string())??;
        Ok(LagReport {
            samples,
            writes: writes?,
            write_secs,
            probe_calls,
            probe_keys,
        })
    }

    /// `rate` PutItems a second for `duration`, paced on 1 ms ticks, each key on one writer.
    async fn paced_writes(&self, pending: &Pending) -> Result<usize, String> {
        let (txs, tasks): (Vec<_>, Vec<_>) = (0..self.writers)
            .map(|_| {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u64)>();
                let task = tokio::spawn(lag_writer(self.src.clone(), self.table.clone(), rx, pending.clone()));
                (tx, task)
            })
            .unzip();
        let mut versions = vec![0u64; self.keys];
        let mut rng = StdRng::seed_from_u64(11);
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let (start, mut sent) = (Instant::now(), 0usize);
        while start.elapsed() < self.duration {
            tick.tick().await;
            let due = (start.elapsed().as_secs_f64() * self.rate as f64) as usize;
            while sent < due {
                let k = rng.random_range(0..self.keys);
                versions[k] += 1;
                let _ = txs[k % self.writers].send((k, versions[k]));
                sent += 1;
            }
        }
        drop(txs);
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok(sent)
    }
}

/// Puts each (key, version) it is sent, in order; records when each put returned.
async fn lag_writer(
    c: Client,
    table: String,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(usize, u64)>,
    pending: Pending,
) -> Result<(), String> {
    while let Some((k, v)) = rx.recv().await {
        let pk = lag_pk(k);
        c.put_item()
            .table_name(&table)
            .set_item(Some(item(&pk, 0, v)))
            .send()
            .await
            .map_err(|e| format!("PutItem: {e:?}"))?;
        let now = Instant::now();
        pending.lock().unwrap().entry(pk).or_default().push_back((v, now));
    }
    Ok(())
}

/// Every ~10 ms, reads the pending keys from the destination (BatchGetItem, ≤100 keys a call,
/// concurrently) and resolves every pending write whose version (or a later one) is visible.
/// Ends once the writer is done and nothing is pending; fails if writes stay invisible 60 s.
/// The samples, and the calls made and keys read.
async fn check_visible(
    dst: Client,
    table: String,
    pending: Pending,
    writer_done: Arc<AtomicBool>,
    start: Instant,
) -> Result<(Vec<LagSample>, (usize, usize)), String> {
    let (mut samples, mut load) = (Vec::new(), (0, 0));
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_since: Option<Instant> = None;
    loop {
        tick.tick().await;
        let done = writer_done.load(Relaxed);
        let keys: Vec<String> = pending.lock().unwrap().keys().cloned().collect();
        if keys.is_empty() && done {
            return Ok((samples, load));
        }
        if done && idle_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(60) {
            return Err(format!("{} keys never became visible on the destination", keys.len()));
        }
        load = (load.0 + keys.len().div_ceil(100), load.1 + keys.len());
        let reads = keys.chunks(100).map(|chunk| visible_versions(&dst, &table, chunk));
        for seen in futures::future::join_all(reads).await {
            resolve(&pending, seen?, start, &mut samples);
        }
    }
}

/// (pk, version) of each key of `pks` present on the destination, and when the answer came.
async fn visible_versions(dst: &Client, table: &str, pks: &[String]) -> Result<(Vec<(String, u64)>, Instant), String> {
    let ka = KeysAndAttributes::builder()
        .set_keys(Some(pks.iter().map(|pk| key_of(pk, 0)).collect()))
        .projection_expression("pk, version")
        .consistent_read(true)
        .build()
        .map_err(|e| e.to_string())?;
    let out = dst
        .batch_get_item()
        .request_items(table, ka)
        .send()
        .await
        .map_err(|e| format!("BatchGetItem: {e:?}"))?;
    let now = Instant::now();
    let items = out.responses.and_then(|mut r| r.remove(table)).unwrap_or_default();
    let seen = items
        .into_iter()
        .filter_map(|i| match (i.get("pk"), i.get("version")) {
            (Some(Av::S(pk)), Some(Av::N(v))) => Some((pk.clone(), v.parse().ok()?)),
            _ => None,
        })
        .collect();
    Ok((seen, now))
}

fn resolve(pending: &Pending, (seen, at): (Vec<(String, u64)>, Instant), start: Instant, samples: &mut Vec<LagSample>) {
    let mut p = pending.lock().unwrap();
    for (pk, version) in seen {
        let Some(q) = p.get_mut(&pk) else { continue };
        while q.front().is_some_and(|(v, _)| *v <= version) {
            let (_, written) = q.pop_front().expect("front");
            samples.push(LagSample {
                written_at: written.duration_since(start),
                lag: at.saturating_duration_since(written),
            });
        }
        if q.is_empty() {
            p.remove(&pk);
        }
    }
}

/// The `q`-quantile (0..=1) of sorted milliseconds.
pub fn quantile(sorted_ms: &[f64], q: f64) -> f64 {
    if sorted_ms.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_ms.len() - 1) as f64 * q).round() as usize;
    sorted_ms[i]
}

/// Lags in ms, sorted.
pub fn sorted_lags_ms(samples: &[LagSample]) -> Vec<f64> {
    let mut v: Vec<f64> = samples.iter().map(|s| s.lag.as_secs_f64() * 1000.0).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Per second of the run (by write time): (second, p50 ms, p99 ms).
pub fn lag_per_second(samples: &[LagSample]) -> Vec<(u64, f64, f64)> {
    let mut by_sec: std::collections::BTreeMap<u64, Vec<LagSample>> = Default::default();
    for s in samples {
        by_sec.entry(s.written_at.as_secs()).or_default().push(*s);
    }
    by_sec
        .into_iter()
        .map(|(sec, v)| {
            let ms = sorted_lags_ms(&v);
            (sec, quantile(&ms, 0.5), quantile(&ms, 0.99))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_from_sorted_values() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 51.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
