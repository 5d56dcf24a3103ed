//! From an SQS message to the change ferry applies: the envelope, the S3 object of an offloaded
//! record, and the stream record inside.

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};

use super::message::{Envelope, Offload};
use crate::apply::Op;
use crate::error::{Error, Result};
use crate::item;
use crate::retry::Policy;
use crate::source::streams::record::{self, StreamChange, View};
use crate::source::streams::wire::WireRecord;

/// One received message, decoded.
pub struct Decoded {
    pub receipt: String,
    pub change: StreamChange,
    /// Received before (ApproximateReceiveCount > 1).
    pub redelivered: bool,
}

pub struct Decoder<'a> {
    pub s3: &'a aws_sdk_s3::Client,
    pub table: &'a str,
    pub queue_url: &'a str,
    pub view: View,
    pub key_names: &'a [String],
}

impl Decoder<'_> {
    pub async fn decode(&self, m: &Message) -> Result<Decoded> {
        let id = m.message_id().unwrap_or("?");
        let receipt = m
            .receipt_handle()
            .ok_or_else(|| Error::fatal(format!("queue {}: message {id} has no receipt handle", self.queue_url)))?
            .to_string();
        let bad = |why: String| {
            Error::fatal(format!(
                "table {}: message {id} of queue {} is not a change ferry can apply: {why}. It stays in the \
                 queue; remove it (or point queue_url at the queue the ferry-forwarder of this table fills) and \
                 restart.",
                self.table, self.queue_url
            ))
        };
        let env: Envelope = serde_json::from_str(m.body().unwrap_or_default())
            .map_err(|e| bad(format!("unreadable body: {e}")))?;
        if env.table != self.table {
            return Err(bad(format!("it carries a change of table {:?}", env.table)));
        }
        let wire = match (env.record, env.offload) {
            (Some(r), _) => r,
            (None, Some(off)) => self.fetch(&off).await?,
            (None, None) => return Err(bad("neither a record nor an offload pointer".into())),
        };
        let raw = wire.into_raw().map_err(|e| bad(e.to_string()))?;
        let change = record::parse(raw, self.view, self.key_names).map_err(|e| bad(e.to_string()))?;
        let count = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or(1);
        Ok(Decoded {
            receipt,
            change,
            redelivered: count > 1,
        })
    }

    /// Reads an offloaded record from S3.
    async fn fetch(&self, off: &Offload) -> Result<WireRecord> {
        let get = || async {
            let out = self
                .s3
                .get_object()
                .bucket(&off.bucket)
                .key(&off.key)
                .send()
                .await
                .map_err(|e| Error::from_sdk("GetObject", e))?;
            out.body
                .collect()
                .await
                .map(|b| b.into_bytes())
                .map_err(|e| Error::retryable(format!("reading s3://{}/{}: {e}", off.bucket, off.key)))
        };
        let bytes = crate::retry::retry(Policy::DAEMON, |_| {}, get).await.map_err(|e| {
            let hint = if e.code() == Some("NoSuchKey") {
                " The forwarder stores a record before sending its pointer: was the object deleted (an S3 \
                 lifecycle rule shorter than the queue's retention)? The change is lost to the buffer: re-run the \
                 table from a fresh snapshot."
            } else {
                ""
            };
            Error::fatal(format!(
                "table {}: offloaded record s3://{}/{} cannot be read: {e}.{hint}",
                self.table, off.bucket, off.key
            ))
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::fatal(format!(
                "table {}: offloaded record s3://{}/{} is not a stream record: {e}",
                self.table, off.bucket, off.key
            ))
        })
    }
}

/// A redelivered record is settled by reading the source's current item (as for KEYS_ONLY): a
/// redelivery may come after later changes to its key were applied (after a crash, or moto's
/// out-of-order redelivery), and the current item is correct whatever the order.
pub fn settle_by_reading(change: &mut StreamChange, key_names: &[String]) {
    let keys = match &change.op {
        Op::Put(image) => item::key_of(key_names, image),
        Op::Delete(k) | Op::Fetch(k) => k.clone(),
    };
    change.op = Op::Fetch(keys);
}
