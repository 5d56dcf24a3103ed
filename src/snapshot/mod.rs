//! Bulk copy of a table's items into the destination, after the capture point is recorded.

pub mod scan;
