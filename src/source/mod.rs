//! Where changes come from: DynamoDB Streams or a FIFO SQS queue that buffers them (`sqs`).

pub mod sqs;
pub mod streams;
