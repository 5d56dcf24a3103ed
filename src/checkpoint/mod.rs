//! Checkpoints: when a position may advance ([`ack`]), where it is kept ([`store`]) and who may
//! write it ([`lock`]).

pub mod ack;
pub mod exports;
pub mod health;
pub mod lock;
pub mod store;

pub use ack::{AckSink, OrderedAck};
pub use exports::ExportRow;
pub use health::Retrying;
pub use lock::DaemonLock;
pub use store::{Phase, QueueRow, SegmentRow, ShardRow, Store, TableRow};
