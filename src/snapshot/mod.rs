//! Bulk copy of a table's items into the destination, after the capture point is recorded: a
//! parallel scan ([`scan`]) or a point-in-time export to S3 ([`export`]).

pub mod budget;
pub mod export;
pub mod scan;
mod segment;
pub mod source;

#[cfg(test)]
mod scan_tests;
