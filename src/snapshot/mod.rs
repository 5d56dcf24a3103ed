//! Bulk copy of a table's items into the destination, after the capture point is recorded: a
//! parallel scan ([`scan`]) or a point-in-time export to S3 ([`export`]), each a [`BulkLoader`].

pub mod budget;
pub mod export;
pub mod scan;
mod segment;
pub mod source;
pub mod spread;

#[cfg(test)]
mod scan_tests;

use std::future::Future;

use crate::checkpoint::{Capture, Lifecycle};
use crate::error::Result;

/// How a bulk load ended without an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// Every item is durable in the destination; changes are replayed from this capture's replay
    /// point (an export moves it to the export time).
    Complete(Capture),
    /// its context's stop came first; the saved positions resume the load.
    Stopped,
}

/// Copies every item of the source table, as of about the capture point, into the destination.
///
/// Contract:
/// - **Reads** the table's items (scan pages, or an export's data files), skipping the parts the
///   state store records as done; it may record its own plan in the lifecycle (`life`) while
///   `BulkLoading` (an export records its replay point and file count before loading).
/// - **Order**: none between items; each item is written once per run (a resumed load may write
///   an item again, which converges).
/// - **Checkpoints** a segment's or file's position only once every item before it is durable.
/// - **Returns** [`Loaded::Complete`] when the whole table is durable, [`Loaded::Stopped`] when
///   its context's stop came first (positions flushed), `Err` on a fatal error (positions flushed).
///
/// A loader is built with its table's [`crate::source::TableContext`] (with a stop of its own,
/// [`crate::source::TableContext::child`]) and opens its apply path from it.
pub trait BulkLoader {
    fn load(self, life: &mut Lifecycle, capture: Capture) -> impl Future<Output = Result<Loaded>> + Send;
}
