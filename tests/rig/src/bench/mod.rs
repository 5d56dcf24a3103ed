//! Building blocks of the end-to-end benchmark (`benches/e2e.rs`): the endpoint's raw write
//! ceiling and a stream of changes written per key in order ([`changes`]), a naive
//! one-record-at-a-time replayer ([`naive`]), `/metrics` and `/proc` readers for a `ferry` child
//! ([`probe`]), a replication-lag probe ([`lag`]), a key-by-key comparison ([`keys`]) and the
//! destination's own cores ([`cores`]), where a phase's CPU goes ([`cpu`]). (The chart is drawn
//! in the bench itself: plotters is a dev-dependency.)
//!
//! Timings live here and in the bench only, never in tests.

pub mod changes;
pub mod cores;
pub mod cpu;
pub mod keys;
pub mod lag;
pub mod naive;
pub mod output;
pub mod probe;

pub use changes::*;
pub use cores::*;
pub use keys::*;
pub use lag::*;
pub use naive::*;
pub use output::*;
pub use probe::*;

/// The table every phase uses (each phase in its own account).
pub const TABLE: &str = "Bench";
/// Approximate item size.
pub const ITEM_BYTES: usize = 1000;
