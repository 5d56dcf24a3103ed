//! The ordered acknowledger: the only way a checkpoint moves.
//!
//! Records are registered in source order and acknowledged in any order (lanes finish batches
//! independently). The committed position is that of the last record of the longest fully
//! acknowledged prefix, so a checkpoint never passes a record whose write is not yet durable.
//! Modelled on Vector's ordered finalizer.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// Receives acknowledgements from the apply lanes.
pub trait AckSink: Send + Sync {
    /// The write covering record `index` is durable at the destination.
    fn ack(&self, index: u64) {
        self.ack_all(&[index]);
    }
    /// The writes covering all of `indices` are durable (one lock for a whole batch).
    fn ack_all(&self, indices: &[u64]);
}

pub struct OrderedAck<P> {
    inner: Mutex<Inner<P>>,
    /// Woken whenever the last outstanding record is acknowledged.
    drained: Notify,
    /// Told how many applied records each acknowledgement made durable (live progress counters).
    on_applied: Option<Box<dyn Fn(u64) + Send + Sync>>,
}

struct Inner<P> {
    /// Index of `slots[0]`.
    base: u64,
    slots: VecDeque<Slot<P>>,
    /// Position of the newest record in the acknowledged prefix.
    committed: Option<P>,
    /// Applied records that left the queue (skipped ones are not counted).
    committed_count: u64,
    /// Pending [`OrderedAck::mark`]s: (index one past the last record they cover, time).
    marks: VecDeque<(u64, i64)>,
    /// The newest mark whose records are all acknowledged.
    marked: Option<i64>,
}

struct Slot<P> {
    acked: bool,
    /// Counts towards `committed_count` (false for skipped records).
    applied: bool,
    /// `None` for records that carry no resumable position (mid-page scan items).
    pos: Option<P>,
}

impl<P: Clone + Send> OrderedAck<P> {
    /// Starts from a persisted position (or none).
    pub fn new(committed: Option<P>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                base: 0,
                slots: VecDeque::new(),
                committed,
                committed_count: 0,
                marks: VecDeque::new(),
                marked: None,
            }),
            drained: Notify::new(),
            on_applied: None,
        }
    }

    /// Like [`OrderedAck::new`], calling `on_applied(n)` as applied records become durable.
    pub fn with_counter(committed: Option<P>, on_applied: impl Fn(u64) + Send + Sync + 'static) -> Self {
        Self {
            on_applied: Some(Box::new(on_applied)),
            ..Self::new(committed)
        }
    }

    /// Registers the next record in source order; returns its index for [`AckSink::ack`].
    pub fn register(&self, pos: Option<P>) -> u64 {
        self.push(pos, true)
    }

    /// Registers records in source order in one step; returns the index of the first.
    pub fn register_all(&self, positions: impl IntoIterator<Item = (Option<P>, bool)>) -> u64 {
        let mut g = self.inner.lock().unwrap();
        let first = g.base + g.slots.len() as u64;
        for (pos, applied) in positions {
            g.slots.push_back(Slot {
                acked: !applied,
                applied,
                pos,
            });
        }
        drop(g);
        // Records registered as already done (skipped) may complete the prefix at once.
        self.ack_all(&[]);
        first
    }

    fn push(&self, pos: Option<P>, applied: bool) -> u64 {
        let mut g = self.inner.lock().unwrap();
        g.slots.push_back(Slot {
            acked: false,
            applied,
            pos,
        });
        g.base + g.slots.len() as u64 - 1
    }

    /// Registers a record that needs no write (skipped as older than the replay point): it still
    /// takes its place in order, so the checkpoint cannot jump over unapplied records before it.
    pub fn register_done(&self, pos: Option<P>) {
        let idx = self.push(pos, false);
        self.ack(idx);
    }

    /// Tags everything registered so far with time `t` (ms, non-decreasing): once all of it is
    /// acknowledged, [`OrderedAck::marked`] reports `t`. A shard consumer marks the start of each
    /// read that found nothing new, so `marked` is a moment before which every record of the
    /// shard is durable at the destination.
    pub fn mark(&self, t: i64) {
        let mut g = self.inner.lock().unwrap();
        let end = g.base + g.slots.len() as u64;
        if g.slots.is_empty() {
            g.marked = Some(t);
        } else if let Some(last) = g.marks.back_mut().filter(|(e, _)| *e == end) {
            // Nothing registered since the last mark (idle reads behind a slow write): one mark
            // covers both, so the queue grows with records, not with polls.
            last.1 = t;
        } else {
            g.marks.push_back((end, t));
        }
    }

    /// The newest mark whose records are all acknowledged.
    pub fn marked(&self) -> Option<i64> {
        self.inner.lock().unwrap().marked
    }

    pub fn committed(&self) -> Option<P> {
        self.inner.lock().unwrap().committed.clone()
    }

    pub fn committed_count(&self) -> u64 {
        self.inner.lock().unwrap().committed_count
    }

    /// Registered records not yet acknowledged or behind one that is not.
    pub fn outstanding(&self) -> usize {
        self.inner.lock().unwrap().slots.len()
    }

    /// Resolves once every registered record is acknowledged.
    pub async fn drained(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.outstanding() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl<P: Clone + Send> AckSink for OrderedAck<P> {
    fn ack_all(&self, indices: &[u64]) {
        let mut g = self.inner.lock().unwrap();
        let mut newly_applied = 0u64;
        for &index in indices {
            let Some(off) = index.checked_sub(g.base) else { continue };
            if let Some(slot) = g.slots.get_mut(off as usize).filter(|s| !s.acked) {
                slot.acked = true;
                newly_applied += slot.applied as u64;
            }
        }
        if let Some(f) = self.on_applied.as_ref().filter(|_| newly_applied > 0) {
            f(newly_applied);
        }
        let mut advanced = false;
        while g.slots.front().is_some_and(|s| s.acked) {
            let slot = g.slots.pop_front().expect("front exists");
            g.base += 1;
            g.committed_count += slot.applied as u64;
            if let Some(p) = slot.pos {
                g.committed = Some(p);
            }
            advanced = true;
        }
        while let Some(&(_, t)) = g.marks.front().filter(|(end, _)| *end <= g.base) {
            g.marks.pop_front();
            g.marked = Some(t);
        }
        if advanced && g.slots.is_empty() {
            drop(g);
            self.drained.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_the_contiguous_acknowledged_prefix() {
        let a = OrderedAck::new(Some(0));
        let i: Vec<u64> = (1..=5).map(|p| a.register(Some(p))).collect();
        a.ack(i[2]);
        a.ack(i[1]);
        assert_eq!(a.committed(), Some(0), "record 1 is still in flight");
        a.ack(i[0]);
        assert_eq!(a.committed(), Some(3));
        a.ack(i[4]);
        assert_eq!(a.committed(), Some(3), "record 4 is still in flight");
        a.ack(i[3]);
        assert_eq!(a.committed(), Some(5));
        assert_eq!(a.committed_count(), 5);
        assert_eq!(a.outstanding(), 0);
    }

    #[test]
    fn a_mark_holds_until_every_record_before_it_is_acknowledged() {
        let a = OrderedAck::new(None::<u32>);
        a.mark(10);
        assert_eq!(a.marked(), Some(10), "nothing outstanding: at once");
        let x = a.register(Some(1));
        a.mark(20);
        let y = a.register(Some(2));
        a.mark(30);
        a.ack(y);
        assert_eq!(a.marked(), Some(10), "record 1 is still in flight");
        a.ack(x);
        assert_eq!(a.marked(), Some(30));
        a.register_done(Some(3));
        a.mark(40);
        assert_eq!(a.marked(), Some(40), "skipped records hold nothing");
        let z = a.register(Some(4));
        a.mark(50);
        a.mark(60);
        assert_eq!(
            a.inner.lock().unwrap().marks.len(),
            1,
            "repeated idle marks share one entry"
        );
        a.ack(z);
        assert_eq!(a.marked(), Some(60));
    }

    #[test]
    fn records_without_positions_hold_the_line_but_do_not_move_it() {
        let a = OrderedAck::new(None::<&str>);
        let x = a.register(None);
        let y = a.register(Some("page-1"));
        a.ack(y);
        assert_eq!(a.committed(), None);
        a.ack(x);
        assert_eq!(a.committed(), Some("page-1"));
        a.register_done(Some("page-2"));
        assert_eq!(a.committed(), Some("page-2"));
        assert_eq!(
            a.committed_count(),
            2,
            "a skipped record moves the position but is not counted as applied"
        );
    }

    #[test]
    fn duplicate_and_stale_acks_are_ignored() {
        let a = OrderedAck::new(None);
        let x = a.register(Some(1));
        a.ack(x);
        a.ack(x);
        a.ack(99);
        assert_eq!(a.committed(), Some(1));
        assert_eq!(a.committed_count(), 1);
    }

    #[tokio::test]
    async fn drained_waits_for_the_last_ack() {
        let a = std::sync::Arc::new(OrderedAck::new(None));
        let x = a.register(Some(1));
        let a2 = a.clone();
        let waiter = tokio::spawn(async move { a2.drained().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        a.ack(x);
        waiter.await.unwrap();
    }
}
