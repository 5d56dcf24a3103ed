//! The Streams SDK and the DynamoDB SDK each define their own `AttributeValue`. ferry parses
//! stream pages itself ([`ferry::source::streams::wire`]); this conversion serves code that reads
//! streams through the SDK (the naive baseline of the benchmarks). Stream images are
//! moved (not cloned) into the DynamoDB type once, when a record is read.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as Av;
use aws_sdk_dynamodbstreams::types::AttributeValue as StreamAv;

use ferry::item::Item;

/// Converts a stream image. Fails on an attribute type this SDK version cannot represent, so the
/// table stops instead of writing an altered item.
pub fn from_stream_item(m: HashMap<String, StreamAv>) -> Result<Item, String> {
    m.into_iter().map(|(k, v)| from_stream(v).map(|v| (k, v))).collect()
}

pub fn from_stream(v: StreamAv) -> Result<Av, String> {
    Ok(match v {
        StreamAv::S(s) => Av::S(s),
        StreamAv::N(n) => Av::N(n),
        StreamAv::B(b) => Av::B(b),
        StreamAv::Bool(b) => Av::Bool(b),
        StreamAv::Null(b) => Av::Null(b),
        StreamAv::Ss(v) => Av::Ss(v),
        StreamAv::Ns(v) => Av::Ns(v),
        StreamAv::Bs(v) => Av::Bs(v),
        StreamAv::L(v) => Av::L(v.into_iter().map(from_stream).collect::<Result<_, _>>()?),
        StreamAv::M(m) => Av::M(from_stream_item(m)?),
        other => {
            return Err(format!("attribute type unknown to this ferry version: {other:?}"));
        }
    })
}
