//! From an SQS message to the change ferry applies: the envelope, the S3 object of an offloaded
//! record, and the stream record inside.

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::api::Offloads;
use super::message::{Envelope, FORMAT, Offload, Part};
use crate::apply::Op;
use crate::discover::View;
use crate::error::{Error, Result};
use crate::item;
use crate::retry::Retrier;
use crate::source::streams::record::{self, StreamChange};
use crate::source::streams::wire::WireRecord;
use crate::telemetry::TableStats;

/// One received message, decoded.
pub struct Decoded {
    pub receipt: String,
    /// Its records, in stream order.
    pub changes: Vec<StreamChange>,
    /// Received before (ApproximateReceiveCount > 1).
    pub redelivered: bool,
    /// Written in format 1 (see [`super::message`]): its change is settled by reading the source.
    pub legacy: bool,
}

pub struct Decoder<'a> {
    pub offloads: &'a dyn Offloads,
    pub table: &'a str,
    pub queue_url: &'a str,
    pub view: View,
    pub key_names: &'a [String],
    /// Ends the retries of an offload fetch.
    pub stop: &'a CancellationToken,
    /// Where those retries are reported.
    pub stats: &'a Arc<TableStats>,
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
        let env: Envelope =
            serde_json::from_str(m.body().unwrap_or_default()).map_err(|e| bad(format!("unreadable body: {e}")))?;
        if env.table != self.table {
            return Err(bad(format!("it carries a change of table {:?}", env.table)));
        }
        let legacy = env.v.is_none();
        let parts = match (env.v, env.records) {
            (None, _) => vec![Part {
                record: env.record,
                offload: env.offload,
            }],
            (Some(FORMAT), parts) if !parts.is_empty() => parts,
            (Some(FORMAT), _) => return Err(bad("no records".into())),
            (Some(v), _) => {
                return Err(bad(format!(
                    "it is in format {v}, and this ferry reads formats 1 to {FORMAT} (upgrade ferry)"
                )));
            }
        };
        let mut changes = Vec::with_capacity(parts.len());
        for (i, part) in parts.into_iter().enumerate() {
            let wire = match (part.record, part.offload) {
                (Some(r), _) => r,
                (None, Some(off)) => self.fetch(&off).await?,
                (None, None) => {
                    return Err(bad(format!(
                        "its record #{i} is neither a record nor an offload pointer"
                    )));
                }
            };
            let raw = wire.into_raw().map_err(|e| bad(format!("its record #{i}: {e}")))?;
            changes
                .push(record::parse(raw, self.view, self.key_names).map_err(|e| bad(format!("its record #{i}: {e}")))?);
        }
        let count = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or(1);
        Ok(Decoded {
            receipt,
            changes,
            redelivered: count > 1,
            legacy,
        })
    }

    /// Reads an offloaded record from S3, retrying until it is read, the table stops (a
    /// [`Kind::Stopped`](crate::error::Kind) error, passed on as is) or the object is found gone.
    async fn fetch(&self, off: &Offload) -> Result<WireRecord> {
        let what = format!("fetching s3://{}/{}", off.bucket, off.key);
        let got = Retrier::daemon(what, self.stop, self.stats)
            .run(|| self.offloads.get(&off.bucket, &off.key))
            .await;
        let bytes = got.map_err(|e| {
            if e.is_stopped() {
                return e;
            }
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
        Op::Put(image) | Op::Load(image) => item::key_of(key_names, image),
        Op::PutRaw(raw) | Op::LoadRaw(raw) => item::key_of(key_names, &raw.to_item()),
        Op::Delete(k) | Op::Fetch(k) => k.clone(),
    };
    change.op = Op::Fetch(keys);
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as Av;

    fn message(body: &str, receive_count: &str) -> Message {
        Message::builder()
            .message_id("m1")
            .receipt_handle("r1")
            .body(body)
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, receive_count)
            .build()
    }

    fn rec(key: &str, seq: &str) -> serde_json::Value {
        serde_json::json!({"eventID": "e1", "eventName": "MODIFY", "dynamodb": {
            "Keys": {"pk": {"S": key}}, "NewImage": {"pk": {"S": key}, "v": {"N": "2"}},
            "OldImage": {"pk": {"S": key}, "v": {"N": "1"}},
            "SequenceNumber": seq, "ApproximateCreationDateTime": 1700000000.0}})
    }

    fn body(table: &str) -> String {
        super::super::message::inline_body(table, &rec("a", "9"))
    }

    /// No object exists: only inline records decode.
    struct NoObjects;
    impl Offloads for NoObjects {
        fn get<'a>(&'a self, _: &'a str, _: &'a str) -> futures::future::BoxFuture<'a, Result<Vec<u8>>> {
            Box::pin(async { Err(Error::fatal("no such object")) })
        }
    }

    async fn decode(m: &Message) -> Result<Decoded> {
        let names = ["pk".to_string()];
        let (stop, stats) = (CancellationToken::new(), Arc::default());
        let d = Decoder {
            offloads: &NoObjects,
            table: "T",
            queue_url: "http://q/t.fifo",
            view: View::NewImage,
            key_names: &names,
            stop: &stop,
            stats: &stats,
        };
        d.decode(m).await
    }

    #[tokio::test]
    async fn decodes_an_inline_record_and_its_delivery_count() {
        let d = decode(&message(&body("T"), "1")).await.unwrap();
        assert_eq!((d.receipt.as_str(), d.redelivered, d.legacy), ("r1", false, false));
        let [change] = &d.changes[..] else { panic!("one record") };
        assert_eq!((change.seq.as_str(), change.time_ms), ("9", 1_700_000_000_000));
        let Op::PutRaw(image) = &change.op else {
            panic!("a put of the record's image")
        };
        assert_eq!(image.to_item()["v"], Av::N("2".into()));
        assert!(decode(&message(&body("T"), "2")).await.unwrap().redelivered);
    }

    #[tokio::test]
    async fn a_message_yields_its_records_in_order_and_format_1_is_marked_for_reading() {
        use super::super::message::{body as packed, inline_part};
        let parts = [
            inline_part(&rec("a", "9")),
            inline_part(&rec("b", "10")),
            inline_part(&rec("a", "11")),
        ];
        let d = decode(&message(&packed("T", &parts), "1")).await.unwrap();
        let seqs: Vec<&str> = d.changes.iter().map(|c| c.seq.as_str()).collect();
        assert_eq!((seqs, d.legacy), (vec!["9", "10", "11"], false));
        let v1 = serde_json::json!({"table": "T", "record": rec("a", "9")}).to_string();
        let d = decode(&message(&v1, "1")).await.unwrap();
        assert_eq!((d.changes.len(), d.legacy), (1, true));
        let v9 = serde_json::json!({"table": "T", "v": 9, "records": []}).to_string();
        let err = decode(&message(&v9, "1")).await.err().unwrap();
        assert!(err.is_fatal() && err.to_string().contains("format 9"), "{err}");
    }

    #[tokio::test]
    async fn a_message_of_another_table_or_format_stops_the_table() {
        let err = decode(&message(&body("Other"), "1")).await.err().unwrap();
        assert!(
            err.is_fatal() && err.to_string().contains("change of table \"Other\""),
            "{err}"
        );
        let err = decode(&message("hello", "1")).await.err().unwrap();
        assert!(err.to_string().contains("message m1 of queue http://q/t.fifo"), "{err}");
    }

    #[tokio::test]
    async fn a_redelivery_is_settled_by_reading_the_source() {
        let mut d = decode(&message(&body("T"), "3")).await.unwrap();
        settle_by_reading(&mut d.changes[0], &["pk".to_string()]);
        assert_eq!(
            d.changes[0].op,
            Op::Fetch(crate::item::Item::from([("pk".to_string(), Av::S("a".into()))]))
        );
    }
}
