//! The SQS change buffer, for copies and outages that outlive the stream's 24 hours.
//!
//! ```text
//!  source stream ─▶ ferry-forwarder (Lambda, [`forwarder`]) ─▶ FIFO queue (+ S3 for big records)
//!                                                                  │
//!                                           ferry sync ([`consumer`], [`decode`]) ─▶ apply path
//! ```
//!
//! [`message`] is the format both halves share. Per key, order holds end to end: one key is in one
//! message group (a bucket of keys), the forwarder packs a group's records into messages in
//! stream order and never lets a group's messages overtake each other, and SQS FIFO hands a group
//! out in order.

pub mod api;
pub mod consumer;
pub mod dead_letter;
pub mod decode;
pub mod forwarder;
pub mod inflight;
pub mod message;
mod observe;
mod poll;
mod settle;
#[cfg(test)]
mod tests;
mod turn;
