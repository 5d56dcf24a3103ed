//! Draining a table's FIFO change buffer into the apply path.
//!
//! ```text
//!  receivers (N × ReceiveMessage, 10 per call) ─▶ decode (S3 for offloaded records) ─▶ Applier
//!        │   (taking turns while calls come back short: [`super::turn`])             │ acks
//!        └─ one settler per received batch: extend visibility while writes are pending ◀┘
//!                                            then DeleteMessageBatch
//! ```
//!
//! Contract:
//! - **Order**: SQS FIFO hands out one group's messages in order and none of a group while one of
//!   its messages is in flight; a key is in one group, a message holds its records in stream order,
//!   and a batch is submitted in received order, so per key changes reach the applier in stream
//!   order. Many groups progress at once (N receivers, 10 messages per call). A change that still arrives after a newer one to its key
//!   (a broker handing out one group twice at once: moto does) is settled by reading the source
//!   ([`super::inflight`]), as is every change of a format-1 message ([`super::message`]).
//! - **Delivery**: a message is deleted only after the writes of its whole batch are acknowledged
//!   (durable). From its receipt on (decoding may wait on S3) its visibility is extended, so no
//!   other reader gets it. A crash leaves messages in flight; they come back after the visibility
//!   timeout and, as redeliveries, are settled by reading the source's current item (see
//!   [`super::decode::settle_by_reading`]).
//! - **Slow decode**: a batch admitted after half its visibility timeout has passed since receipt
//!   may have become visible meanwhile (an extension failed or came late), and another receiver
//!   may have applied it and newer changes to its keys: its changes are settled by reading the
//!   source rather than written as their (possibly older) images. Before that point, the first
//!   visibility timeout alone guarantees no one else received it.
//! - **Polling**: a receiver long-polls ([`WAIT_SECONDS`]) while ferry holds no unsettled batch
//!   and no other receiver's call is under way. Otherwise the groups the queue holds back may be
//!   ferry's own: a receiver whose call came back empty waits until one of ferry's batches settles
//!   (or WAIT_SECONDS pass) and then asks without waiting. SQS would hand out a group freed during a long poll; moto never
//!   does (it fixes the pending groups when the call begins) and spins a core meanwhile.
//! - **Dead letters**: see [`super::dead_letter`]; the queue's redrive policy is judged at start
//!   and with every depth poll.
//! - **Replay point**: records older than `replay_from_ms` are deleted without a write, and counted.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::{Offloads, QueueApi, SdkOffloads, SdkQueue};
use super::dead_letter::{self, DeadLetter};
use super::decode::{Decoded, Decoder, settle_by_reading};
use super::inflight::InFlight;
use super::observe::{observe, publish_queue};
use super::poll::{receive_and_hold, until_a_batch_settles};
use super::settle::{Handoff, settle};
use super::turn::{FULL, Turn};
use crate::apply::{Applier, Change, Ticket};
use crate::checkpoint::OrderedAck;
use crate::config::QueueConfig;
use crate::discover::View;
use crate::error::{Error, Result};
use crate::retry::Retrier;
use crate::source::TableContext;

/// Long-poll wait per ReceiveMessage (also the longest a stop waits for a receiver).
pub(super) const WAIT_SECONDS: i32 = 5;
/// Received batches per receiver whose writes may be pending at once.
const BATCHES_PER_RECEIVER: usize = 4;

pub struct SqsTask {
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub ctx: TableContext,
    pub queue: QueueConfig,
    pub view: View,
    /// Records older than this are dropped (already in the snapshot, or before a chosen point).
    pub replay_from_ms: i64,
}

/// What the receivers and settlers share.
pub(super) struct Shared {
    pub(super) task: SqsTask,
    /// The queue's calls, and the offloaded records' ([`SqsTask::run`] passes the SDK's).
    pub(super) api: Arc<dyn QueueApi>,
    offloads: Arc<dyn Offloads>,
    /// Taken out at shutdown to be finished.
    applier: tokio::sync::RwLock<Option<Applier>>,
    /// The applier's failure signal (a clone, usable without the lock).
    pub(super) applier_failed: CancellationToken,
    /// First fatal error of a receiver or settler.
    failure: std::sync::Mutex<Option<Error>>,
    /// Cancelled on such an error: everything stops reading.
    pub(super) failed: CancellationToken,
    pub(super) settlers: TaskTracker,
    /// Keys with unsettled changes (see [`InFlight`]).
    pub(super) in_flight: InFlight,
    /// Held by a receiver from admitting its batch's keys until the batch is queued.
    submit_turn: tokio::sync::Mutex<()>,
    /// Taken by receivers whose last call came back short.
    receive_turn: Turn,
    /// The dead-letter queue watched with `queue_allow_dead_letter`.
    pub(super) dead_letter: std::sync::Mutex<Option<DeadLetter>>,
    /// A format-1 message was received (warned once).
    legacy_seen: std::sync::atomic::AtomicBool,
    /// Woken whenever a batch is settled (its messages deleted).
    pub(super) settled: tokio::sync::Notify,
    /// ReceiveMessage calls under way (until their batch's settler is started).
    pub(super) receiving: std::sync::atomic::AtomicUsize,
}

impl Shared {
    fn fail(&self, e: Error) {
        self.failure.lock().unwrap().get_or_insert(e);
        self.failed.cancel();
    }
    fn stopping(&self) -> bool {
        self.task.ctx.stop.is_cancelled() || self.failed.is_cancelled() || self.applier_failed.is_cancelled()
    }
}

impl SqsTask {
    /// Runs until `stop` or a fatal error; on return, in-flight writes are drained and the
    /// messages they cover deleted.
    pub async fn run(self, applier: Applier) -> Result<()> {
        let api = Arc::new(SdkQueue(self.sqs.clone()));
        let offloads = Arc::new(SdkOffloads(self.s3.clone()));
        self.run_with(api, offloads, applier).await
    }

    /// [`SqsTask::run`] through `api` and `offloads` instead of the task's SDK clients.
    pub(super) async fn run_with(
        self,
        api: Arc<dyn QueueApi>,
        offloads: Arc<dyn Offloads>,
        applier: Applier,
    ) -> Result<()> {
        if let Some(q) = self.ctx.store.queue(&self.ctx.table).await? {
            self.ctx.stats.records_dropped.store(q.dropped.max(0) as u64, Relaxed);
        }
        let receivers = self.queue.receivers;
        let dl = dead_letter::check(&*api, &self.queue)
            .await
            .map_err(|e| e.context(format!("table {}", self.ctx.table)))?;
        let late = late_after(&self.queue);
        let sh = Arc::new(Shared {
            task: self,
            api,
            offloads,
            applier_failed: applier.failed.clone(),
            applier: tokio::sync::RwLock::new(Some(applier)),
            failure: Default::default(),
            failed: CancellationToken::new(),
            settlers: TaskTracker::new(),
            in_flight: InFlight::new(late),
            submit_turn: tokio::sync::Mutex::new(()),
            receive_turn: Turn::default(),
            dead_letter: std::sync::Mutex::new(dl),
            legacy_seen: Default::default(),
            settled: tokio::sync::Notify::new(),
            receiving: Default::default(),
        });
        let mut recv = tokio::task::JoinSet::new();
        for _ in 0..receivers {
            let sh = sh.clone();
            recv.spawn(async move {
                if let Err(e) = receive_loop(&sh).await {
                    sh.fail(e);
                }
            });
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = sh.task.ctx.stop.cancelled() => break,
                _ = sh.failed.cancelled() => break,
                _ = sh.applier_failed.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(e) = observe(&sh).await {
                        sh.fail(e);
                    }
                }
            }
        }
        while recv.join_next().await.is_some() {}
        drain(&sh).await
    }
}

/// Once the receivers are gone: the lanes drain what is queued, the settlers (waiting for acks)
/// delete what it covers, and the first failure of the run is returned.
async fn drain(sh: &Shared) -> Result<()> {
    sh.settlers.close();
    sh.settlers.wait().await;
    let mut first = sh.failure.lock().unwrap().take();
    // (Taken once, here: the receivers that submit through it have ended.)
    if let Some(applier) = sh.applier.write().await.take()
        && let Err(e) = applier.finish().await
    {
        first.get_or_insert(e);
    }
    let _ = publish_queue(sh, None, None).await;
    first.map_or(Ok(()), Err)
}

pub(super) fn queue_error(t: &SqsTask, e: Error) -> Error {
    let hint = match e.code() {
        Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist") => {
            " (the queue does not exist: check queue_url and the [source] endpoint/region)"
        }
        Some("AccessDenied" | "AccessDeniedException") => " (the source role needs the SQS consume statement)",
        _ => "",
    };
    e.context(format!("table {}: queue {}{hint}", t.ctx.table, t.queue.url))
}

async fn receive_loop(sh: &Arc<Shared>) -> Result<()> {
    let t = &sh.task;
    let slots = Arc::new(Semaphore::new(BATCHES_PER_RECEIVER));
    let mut retrier = Retrier::daemon(format!("receiving from {}", t.queue.url), &t.ctx.stop, &t.ctx.stats);
    let (mut short, mut empty) = (true, false);
    while !sh.stopping() {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("never closed"),
            _ = sh.failed.cancelled() => break,
            _ = t.ctx.stop.cancelled() => break,
        };
        if empty && !until_a_batch_settles(sh).await {
            break;
        }
        let call = tokio::select! {
            c = sh.receive_turn.call(short) => c,
            _ = sh.failed.cancelled() => break,
            _ = t.ctx.stop.cancelled() => break,
        };
        // Until this call's batch is admitted, keys settled meanwhile stay known (see InFlight).
        let receiving = sh.in_flight.receiving();
        // The visibility timeout runs from some moment during the call: counting from before it
        // is on the safe side.
        let received_at = Instant::now();
        let Some((messages, handoff)) = receive_and_hold(sh, &mut retrier, received_at, permit).await? else {
            break;
        };
        (short, empty) = (messages.len() < FULL, messages.is_empty());
        call.answered(messages.len());
        let Some(handoff) = handoff else { continue };
        let decoded = match decode_all(sh, &messages).await {
            Ok(d) => d,
            // The batch is never handed over: its settler ends and the messages reappear.
            Err(e) if e.is_stopped() => break,
            Err(e) => return Err(e),
        };
        let records: usize = decoded.iter().map(|d| d.changes.len()).sum();
        t.ctx.stats.records_read.fetch_add(records as u64, Relaxed);
        // Admission and submission in one step across receivers: the order keys are admitted in
        // is the order their changes reach the lanes.
        let _turn = sh.submit_turn.lock().await;
        let (changes, batch) = admit(sh, decoded, received_at);
        drop(receiving);
        // (Only a settler that has ended drops its end: a failed run, and nothing to settle.)
        let _ = handoff.send(batch);
        match sh.applier.read().await.as_ref() {
            Some(a) => a.submit_all(changes).await?,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Starts the settler of a received batch. It keeps the batch invisible from now on, through
/// decoding, until its writes are durable; it gets the batch once the batch is admitted.
pub(super) fn spawn_settler(
    sh: &Arc<Shared>,
    messages: &[Message],
    received_at: Instant,
    permit: OwnedSemaphorePermit,
) -> oneshot::Sender<Handoff> {
    let (handoff, handed) = oneshot::channel();
    let held: Vec<String> = messages
        .iter()
        .filter_map(|m| m.receipt_handle().map(str::to_string))
        .collect();
    let sh2 = sh.clone();
    sh.settlers.spawn(async move {
        let _permit = permit;
        if let Err(e) = settle(&sh2, held, received_at, handed).await {
            sh2.fail(e);
        }
        sh2.settled.notify_waiters();
    });
    handoff
}

async fn decode_all(sh: &Shared, messages: &[Message]) -> Result<Vec<Decoded>> {
    let t = &sh.task;
    let decoder = Decoder {
        offloads: &*sh.offloads,
        table: &t.ctx.table,
        queue_url: &t.queue.url,
        view: t.view,
        key_names: &t.ctx.key_names,
        stop: &t.ctx.stop,
        stats: &t.ctx.stats,
    };
    let mut decoded = Vec::with_capacity(messages.len());
    for m in messages {
        decoded.push(decoder.decode(m).await?);
    }
    Ok(decoded)
}

/// How long after its receipt a batch is still admitted as received: half its visibility timeout.
/// Later, it may have become visible meanwhile and is settled by reading the source; [`InFlight`]
/// forgets settled keys after as long, since no batch admitted later relies on them.
fn late_after(q: &QueueConfig) -> Duration {
    Duration::from_millis(q.visibility_timeout_seconds as u64 * 500)
}

/// Admits a decoded batch's keys (see [`InFlight`]) and turns it into the changes to submit, in
/// received order, and what its settler needs. Records before the replay point are dropped;
/// redeliveries, changes that arrived after a newer one and late batches are settled by reading
/// the source.
fn admit(sh: &Shared, decoded: Vec<Decoded>, received_at: Instant) -> (Vec<Change>, Handoff) {
    let t = &sh.task;
    let late = received_at.elapsed() >= late_after(&t.queue);
    if late {
        tracing::warn!(table = %t.ctx.table, waited_ms = received_at.elapsed().as_millis() as u64, "a batch was admitted after half its visibility timeout; settling its changes by reading the source");
    }
    let mut slots_in_order = Vec::with_capacity(decoded.len());
    let mut changes = Vec::new();
    let mut newest = 0i64;
    let mut admitted = Vec::new();
    if decoded.iter().any(|d| d.legacy) && !sh.legacy_seen.swap(true, Relaxed) {
        tracing::warn!(table = %t.ctx.table, "the queue holds messages of an older ferry-forwarder (one record each); their changes are settled by reading the source. Deploy this version's forwarder");
    }
    let received = decoded
        .into_iter()
        .flat_map(|d| d.changes.into_iter().map(move |c| (c, d.redelivered || d.legacy)));
    for (mut change, reread) in received {
        let applied = !crate::source::before_replay_point(change.time_ms, t.replay_from_ms);
        slots_in_order.push((Some(()), applied));
        if !applied {
            t.ctx.stats.records_dropped.fetch_add(1, Relaxed);
            continue;
        }
        let in_order = sh.in_flight.admit(&change.key, &change.seq);
        admitted.push(change.key.clone());
        if !in_order {
            tracing::warn!(table = %t.ctx.table, seq = %change.seq, "a change arrived after a newer one to its key; settling it by reading the source");
        }
        if reread || !in_order || late {
            settle_by_reading(&mut change, &t.ctx.key_names);
        }
        newest = newest.max(change.time_ms);
        changes.push((slots_in_order.len() as u64 - 1, change));
    }
    let stats = t.ctx.stats.clone();
    let ack = Arc::new(OrderedAck::with_counter(None, move |n| {
        stats.records_applied.fetch_add(n, Relaxed);
    }));
    let first = ack.register_all(slots_in_order);
    let changes = changes
        .into_iter()
        .map(|(off, c)| Change {
            key: c.key,
            op: c.op,
            ticket: Ticket {
                sink: ack.clone(),
                index: first + off,
            },
        })
        .collect();
    let batch = Handoff {
        ack,
        newest_ms: newest,
        admitted,
    };
    (changes, batch)
}
