//! ferry: move live DynamoDB tables to another account, Region, name or endpoint with no downtime.
//!
//! The modules follow the data's path:
//! [`config`] → [`discover`] → [`snapshot`] → [`source`] → [`apply`] → [`checkpoint`] → [`verify`] →
//! [`cutover`], driven by [`sync`], observed through [`status`] and [`telemetry`].

pub mod apply;
pub mod checkpoint;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cutover;
pub mod discover;
pub mod error;
pub mod item;
pub mod page;
pub mod plan;
pub mod retry;
pub mod snapshot;
pub mod source;
pub mod status;
pub mod sync;
pub mod telemetry;
pub mod transform;
pub mod verify;

pub use error::{Error, Kind, Result};
