//! Where changes come from: DynamoDB Streams (and, later, an SQS buffer).

pub mod streams;
