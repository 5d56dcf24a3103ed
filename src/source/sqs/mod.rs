//! The SQS change buffer: a FIFO queue filled by the forwarder Lambda ([`forward`]) from the
//! source's stream, and drained by ferry.

pub mod consumer;
pub mod decode;
pub mod forward;
pub mod message;
