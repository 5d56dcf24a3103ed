//! Checkpoints: when a position may advance ([`ack`]), where it is kept ([`store`]), who may
//! write it ([`lock`]), and where each table is in its life ([`lifecycle`]).

pub mod ack;
pub mod backend;
pub mod direction;
pub mod dynamo;
pub mod exports;
pub mod health;
pub mod lease;
pub mod lifecycle;
pub mod lock;
mod positions;
mod rows;
mod schema;
pub mod state;
pub mod store;
mod tables;

pub use ack::{AckSink, OrderedAck};
pub use direction::{Direction, SwitchPoint, SwitchRequest};
pub use exports::ExportRow;
pub use health::Retrying;
pub use lifecycle::{Capture, Lifecycle, TableState};
pub use lock::DaemonLock;
pub use state::{Crew, Progress, StateStore};
pub use store::{Phase, QueueRow, SegmentRow, ShardRow, Store, TableRow};
