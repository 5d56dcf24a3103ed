//! Checkpoints: when a position may advance ([`ack`]) and where it is kept ([`store`]).

pub mod ack;
pub mod control;
pub mod exports;
pub mod health;
pub mod store;

pub use ack::{AckSink, OrderedAck};
pub use exports::ExportRow;
pub use health::Retrying;
pub use store::{DaemonLock, Phase, QueueRow, SegmentRow, ShardRow, Store, TableRow, now_ms};
