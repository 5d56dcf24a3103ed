//! ferry's loader: streams an export's data files through the apply path (batched, rate-limited,
//! per-key ordered), several files at once.
//!
//! Resumable per file: a file is recorded finished (a snapshot segment with `done`, named by its
//! key) only once every item in it is acknowledged durable and the file passed its MD5 and item
//! count checks. A restart skips finished files and reloads the others from their start;
//! re-putting an item already written leaves the same item, so nothing ends in a wrong state.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::manifest::{DataFile, Export, url};
use super::objects::{ExportObjects, S3Objects};
use super::progress::Report;
use super::reader::{ExportItem, LineReader};
use crate::apply::{Applier, Change, Op, Ticket};
use crate::checkpoint::StateStore;
use crate::checkpoint::lease::units::Offers;
use crate::checkpoint::{OrderedAck, SegmentRow};
use crate::error::{Error, Result};
use crate::item::{Image, KeyBytes};
use crate::retry::Retrier;
use crate::snapshot::spread::Spread;
use crate::telemetry::TableStats;

/// Stream records are kept 24 h; records from the export time on must still be there at hand-off.
pub const STREAM_RETENTION_MS: i64 = 24 * 3600 * 1000;

/// Compressed bytes decompressed and parsed per step.
const PIECE: usize = 2048;

pub struct FileLoader {
    /// Reads the export (destination side's credentials).
    pub s3: aws_sdk_s3::Client,
    pub export: Arc<Export>,
    pub table: String,
    pub key_names: Arc<[String]>,
    pub store: Arc<dyn StateStore>,
    pub stats: Arc<TableStats>,
    pub stop: CancellationToken,
    /// Files read at once.
    pub parallel_files: usize,
    /// The export time: the stream must still hold records from (about) then when the load ends.
    pub export_time_ms: i64,
    /// How often progress (items/s, ETA) is logged.
    pub report_every: Duration,
    /// Loads this file only (the holder of its lease, with several workers).
    pub only: Option<usize>,
    /// With several workers: the files are leased to them, and this loader coordinates
    /// ([`crate::snapshot::spread`]) instead of loading.
    pub leasing: Option<Arc<dyn Offers>>,
}

/// A file being loaded: its acknowledger says how many of its items are durable.
type Active = Arc<ActiveFiles>;

/// The files being loaded, and the lock that orders their rows' writes: a progress flush never
/// writes a file's partial count after the row that records it loaded.
#[derive(Default)]
struct ActiveFiles {
    files: Mutex<HashMap<usize, Arc<OrderedAck<u64>>>>,
    rows: tokio::sync::Mutex<()>,
}

impl FileLoader {
    /// Loads every file not yet finished. `true` when all are, `false` when stopped first.
    pub async fn run(self, applier: Applier) -> Result<bool> {
        let objects = Arc::new(S3Objects(self.s3.clone()));
        self.run_with(objects, applier).await
    }

    /// [`FileLoader::run`], reading the files through `objects`.
    pub(super) async fn run_with(self, objects: Arc<dyn ExportObjects>, applier: Applier) -> Result<bool> {
        let (todo, done_items) = self.todo().await?;
        if let Some(offers) = &self.leasing {
            applier.finish().await?;
            let spread = Spread {
                table: &self.table,
                part: "export file",
                stats: &self.stats,
                stop: &self.stop,
            };
            let pending = todo.iter().map(|(i, _)| i.to_string()).collect();
            return spread.run(offers.as_ref(), pending, done_items as i64).await;
        }
        self.stats.snapshot_items.store(done_items, Relaxed);
        let applier = Arc::new(applier);
        let active: Active = Default::default();
        let mut tasks = self.spawn_files(todo, &objects, &applier, &active);
        let mut progress = Report::new(done_items);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut first_err = None;
        let mut all_done = true;
        loop {
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    None => break,
                    Some(Ok(Ok(finished))) => all_done &= finished,
                    Some(Ok(Err(e))) => { crate::error::keep_first(&mut first_err, e); self.stop.cancel(); }
                    Some(Err(e)) => { crate::error::keep_first(&mut first_err, Error::fatal(format!("export file task panicked: {e}"))); self.stop.cancel(); }
                },
                _ = tick.tick() => { self.flush(&active).await?; progress.tick(&self); }
                _ = applier.failed.cancelled(), if !self.stop.is_cancelled() => { self.stop.cancel(); }
            }
        }
        let applier = Arc::try_unwrap(applier).map_err(|_| Error::fatal("apply path still shared after the load"))?;
        if let Err(e) = applier.finish().await {
            crate::error::keep_first(&mut first_err, e);
        }
        self.flush(&active).await?;
        match first_err {
            Some(e) => Err(e),
            None => Ok(all_done && !self.stop.is_cancelled()),
        }
    }

    /// The files not yet finished (by index), and the items of those that are. An export that no
    /// longer matches what the state store recorded stops the table.
    async fn todo(&self) -> Result<(Vec<(usize, DataFile)>, u64)> {
        let saved: HashMap<i64, SegmentRow> = self
            .store
            .segments(&self.table)
            .await?
            .into_iter()
            .map(|s| (s.segment, s))
            .collect();
        let mut todo = Vec::new();
        let mut done_items = 0u64;
        for (i, f) in self.export.files.iter().enumerate() {
            match saved.get(&(i as i64)) {
                Some(s) if s.last_key.as_deref() != Some(f.key.as_str()) => {
                    return Err(Error::fatal(format!(
                        "table {}: the state store records file #{i} as {:?} but the export lists {}; the export \
                         changed since the load started. Re-run the table from scratch (remove it from the state \
                         store and empty the destination).",
                        self.table,
                        s.last_key.as_deref().unwrap_or(""),
                        f.key
                    )));
                }
                Some(s) if s.done => done_items += s.items as u64,
                _ if self.only.is_some_and(|o| o != i) => {}
                _ => todo.push((i, f.clone())),
            }
        }
        if self.only.is_none() && !todo.is_empty() && todo.len() < self.export.files.len() {
            tracing::info!(table = %self.table, finished = self.export.files.len() - todo.len(), left = todo.len(), "export load: resuming, finished files are skipped");
        }
        Ok((todo, done_items))
    }

    /// One task per file, `parallel_files` of them reading at once.
    fn spawn_files(
        &self,
        todo: Vec<(usize, DataFile)>,
        objects: &Arc<dyn ExportObjects>,
        applier: &Arc<Applier>,
        active: &Active,
    ) -> JoinSet<Result<bool>> {
        let gate = Arc::new(tokio::sync::Semaphore::new(self.parallel_files.max(1)));
        let mut tasks = JoinSet::new();
        for (i, f) in todo {
            let job = FileJob {
                index: i,
                file: f,
                bucket: self.export.bucket.clone(),
                objects: objects.clone(),
                key_names: self.key_names.clone(),
                applier: applier.clone(),
                stats: self.stats.clone(),
                stop: self.stop.clone(),
                active: active.clone(),
                store: self.store.clone(),
                table: self.table.clone(),
            };
            let gate = gate.clone();
            tasks.spawn(async move {
                let _slot = gate.acquire_owned().await.expect("gate never closes");
                job.run().await
            });
        }
        tasks
    }

    /// Saves the durable item count of files in progress (shown by `ferry status`; a restart
    /// reloads such files from their start whatever the count says).
    async fn flush(&self, active: &Active) -> Result<()> {
        let _rows = active.rows.lock().await;
        let list: Vec<(usize, u64)> = active
            .files
            .lock()
            .unwrap()
            .iter()
            .map(|(i, a)| (*i, a.committed_count()))
            .collect();
        for (i, items) in list {
            self.store
                .put_segment(
                    &self.table,
                    &SegmentRow {
                        segment: i as i64,
                        done: false,
                        last_key: Some(self.export.files[i].key.clone()),
                        items: items as i64,
                    },
                )
                .await?;
        }
        Ok(())
    }
}

struct FileJob {
    index: usize,
    file: DataFile,
    bucket: String,
    objects: Arc<dyn ExportObjects>,
    key_names: Arc<[String]>,
    applier: Arc<Applier>,
    stats: Arc<TableStats>,
    stop: CancellationToken,
    active: Active,
    store: Arc<dyn StateStore>,
    table: String,
}

impl FileJob {
    /// Loads the file and records it finished; `false` when stopped first.
    async fn run(self) -> Result<bool> {
        if self.stop.is_cancelled() {
            return Ok(false);
        }
        let stats = self.stats.clone();
        let ack = Arc::new(OrderedAck::<u64>::with_counter(None, move |n| {
            stats.snapshot_items.fetch_add(n, Relaxed);
        }));
        self.active.files.lock().unwrap().insert(self.index, ack.clone());
        let mut submitted = 0u64;
        let mut retrier = Retrier::daemon(
            format!("reading {}", url(&self.bucket, &self.file.key)),
            &self.stop,
            &self.stats,
        );
        let items = loop {
            match self.read_once(&ack, &mut submitted).await {
                Ok(Some(n)) => break n,
                Ok(None) => {
                    self.active.files.lock().unwrap().remove(&self.index);
                    return Ok(false);
                }
                // A dropped connection mid-object: read it again from the start, submitting only
                // the items not yet submitted (the MD5 covers the whole object again).
                Err(e) => match retrier.backoff(e).await {
                    Ok(()) => {}
                    Err(e) if e.is_stopped() => {
                        self.active.files.lock().unwrap().remove(&self.index);
                        return Ok(false);
                    }
                    Err(e) => return Err(e),
                },
            }
        };
        ack.register_done(Some(items));
        tokio::select! {
            _ = ack.drained() => {}
            _ = self.applier.failed.cancelled() => {
                return Err(self.applier.error().unwrap_or_else(|| Error::fatal("apply path stopped")));
            }
        }
        self.finished(&ack, items).await?;
        Ok(true)
    }

    /// Records the file loaded, once every one of its `items` is acknowledged.
    async fn finished(&self, ack: &OrderedAck<u64>, items: u64) -> Result<()> {
        let name = url(&self.bucket, &self.file.key);
        if ack.committed() != Some(items) {
            return Err(Error::fatal(format!("{name}: not every item was acknowledged")));
        }
        let _rows = self.active.rows.lock().await;
        self.active.files.lock().unwrap().remove(&self.index);
        let row = SegmentRow {
            segment: self.index as i64,
            done: true,
            last_key: Some(self.file.key.clone()),
            items: items as i64,
        };
        self.store.put_segment(&self.table, &row).await?;
        tracing::debug!(file = %name, items, "export file loaded");
        Ok(())
    }

    /// Reads the object once from its start; submits items past `submitted`. `Some(items)` when
    /// the whole file is read and verified, `None` when stopped.
    async fn read_once(&self, ack: &Arc<OrderedAck<u64>>, submitted: &mut u64) -> Result<Option<u64>> {
        let name = url(&self.bucket, &self.file.key);
        let body = Retrier::daemon(format!("fetching {name}"), &self.stop, &self.stats)
            .run(|| self.objects.open(&self.bucket, &self.file.key))
            .await?;
        let mut body =
            body.ok_or_else(|| Error::fatal(format!("{name}: data file listed by the export is missing")))?;
        let mut reader = LineReader::new(name.clone(), self.key_names.clone());
        let mut seen = 0u64;
        while let Some(chunk) = body.next().await {
            // (The error keeps its kind: a throttle mid-file is retried as one.)
            let chunk = chunk.map_err(|e| {
                let line = reader.line();
                Error::new(
                    e.kind(),
                    format!("{name}: reading failed after line {line}: {}", e.message()),
                )
            })?;
            // Small pieces bound what one step decompresses: exports can compress 100:1 or more.
            for piece in chunk.chunks(PIECE) {
                let items = reader.push(piece)?;
                self.submit(items, ack, &mut seen, submitted).await?;
            }
            if self.stop.is_cancelled() || self.applier.failed.is_cancelled() {
                return Ok(None);
            }
        }
        let (tail, n) = reader.finish(&self.file.expect)?;
        self.submit(tail, ack, &mut seen, submitted).await?;
        Ok(Some(n))
    }

    async fn submit(
        &self,
        items: Vec<ExportItem>,
        ack: &Arc<OrderedAck<u64>>,
        seen: &mut u64,
        submitted: &mut u64,
    ) -> Result<()> {
        let fresh: Vec<_> = items
            .into_iter()
            .filter(|_| {
                *seen += 1;
                *seen > *submitted
            })
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let first = ack.register_all(fresh.iter().map(|_| (None, true)));
        let mut changes = Vec::with_capacity(fresh.len());
        for (i, ExportItem { line, image, key }) in fresh.into_iter().enumerate() {
            let key = KeyBytes::of(&self.key_names, &key).ok_or_else(|| {
                Error::fatal(format!(
                    "{} line {line}: the item lacks the table's key attributes ({})",
                    url(&self.bucket, &self.file.key),
                    self.key_names.join(", ")
                ))
            })?;
            changes.push(Change {
                key,
                op: match image {
                    Image::Raw(raw) => Op::LoadRaw(raw),
                    Image::Map(item) => Op::Load(item),
                },
                ticket: Ticket {
                    sink: ack.clone(),
                    index: first + i as u64,
                },
            });
        }
        *submitted += changes.len() as u64;
        self.applier.submit_all(changes).await
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
