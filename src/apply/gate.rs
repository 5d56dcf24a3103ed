//! An apply path's writes held to a lease's write window ([`crate::checkpoint::lease::watch`]):
//! a batch is sent only while the window is open. Closed, the attempt fails as retryable and the
//! write path tries again after its backoff: the window reopens with the next renewal, or the run
//! stops when the lease is lost. So a worker frozen past its lease (a GC pause, SIGSTOP, a network
//! partition) sends nothing when it wakes up, whatever its lanes still hold.

use std::sync::Arc;

use tokio::time::Instant;

use super::{ApplyIo, WriteOp};
use crate::checkpoint::lease::watch::Window;
use crate::error::{Error, Result};
use crate::item::Item;

pub struct Gated<I> {
    pub io: I,
    pub window: Arc<Window>,
}

impl<I: ApplyIo> ApplyIo for Gated<I> {
    async fn write_batch(&self, ops: &[WriteOp]) -> Result<Vec<WriteOp>> {
        if !self.window.is_open(Instant::now()) {
            return Err(Error::retryable(format!(
                "holding writes to {}: the lease's last renewal is too old to write under",
                self.io.destination()
            )));
        }
        self.io.write_batch(ops).await
    }

    async fn read_source(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        self.io.read_source(keys).await
    }

    fn key_names(&self) -> &[String] {
        self.io.key_names()
    }

    fn destination(&self) -> &str {
        self.io.destination()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::apply::Limiter;
    use crate::apply::concurrency::Pace;
    use crate::apply::test_support::{key_item, write_only};
    use crate::apply::write::{Batch, write_all};
    use crate::telemetry::TableStats;

    /// Counts the batches that reach the destination.
    #[derive(Default)]
    struct Sent(AtomicUsize);

    impl ApplyIo for Sent {
        async fn write_batch(&self, _: &[WriteOp]) -> Result<Vec<WriteOp>> {
            self.0.fetch_add(1, Relaxed);
            Ok(Vec::new())
        }
        write_only!();
    }

    /// A worker whose window closed (it was frozen past its lease) sends nothing, however long its
    /// write keeps retrying; the write goes out once a renewal reopens the window.
    #[tokio::test(start_paused = true)]
    async fn no_batch_is_sent_while_the_window_is_closed() {
        let window = Arc::new(Window::default());
        let duration = Duration::from_secs(10);
        window.renewed(Instant::now(), duration, Duration::from_secs(2));
        let io = Arc::new(Gated {
            io: Sent::default(),
            window: window.clone(),
        });
        let (limiter, stats, stop) = (
            Limiter::new(0),
            Arc::new(TableStats::default()),
            CancellationToken::new(),
        );
        let pace = Pace::new(1, stats.clone());
        write_all(
            &*io,
            Batch::of(vec![WriteOp::Delete(key_item("a"))]),
            (&limiter, &pace),
            &stats,
            &stop,
        )
        .await
        .unwrap();
        assert_eq!(io.io.0.load(Relaxed), 1, "sent while the window is open");

        tokio::time::sleep(duration).await;
        let writing = {
            let (io, stats, stop) = (io.clone(), stats.clone(), stop.clone());
            tokio::spawn(async move {
                let (limiter, pace) = (Limiter::new(0), Pace::new(1, stats.clone()));
                write_all(
                    &*io,
                    Batch::of(vec![WriteOp::Delete(key_item("b"))]),
                    (&limiter, &pace),
                    &stats,
                    &stop,
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(
            io.io.0.load(Relaxed),
            1,
            "nothing sent past the window, however long it retries"
        );
        assert!(stats.retries.load(Relaxed) > 0, "the hold shows as retrying");
        // Renewed, and then kept open longer than the retry's longest backoff (20 s).
        window.renewed(Instant::now(), Duration::from_secs(60), Duration::from_secs(2));
        writing.await.unwrap().unwrap();
        assert_eq!(io.io.0.load(Relaxed), 2, "sent once a renewal reopened the window");
    }
}
