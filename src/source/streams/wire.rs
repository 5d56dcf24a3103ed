//! GetRecords responses, parsed by ferry instead of the SDK.
//!
//! Why: the SDK's deserializer builds Streams `AttributeValue`s that then have to be converted into
//! DynamoDB ones, and it was 65% of the apply path's CPU (5 µs of 8 per record). This parser goes
//! straight from the JSON bytes to the DynamoDB SDK's `AttributeValue` in one pass, skipping the
//! images ferry does not use (OldImage).
//!
//! It plugs into the SDK call itself ([`FastGetRecords`]): signing, endpoints, timeouts and error
//! codes stay the SDK's; only the body of a successful response is read here. A body it cannot read
//! stops the table (`api::SdkStreams::records`): a page never changes, so retrying cannot help.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue as Av;
use aws_sdk_dynamodbstreams::operation::get_records::{GetRecordsError, GetRecordsOutput};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, Error, Output,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse, SharedResponseDeserializer};
use aws_smithy_types::Blob;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::ErrorMetadata;
use base64::Engine;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};

use crate::item::Item;

/// One stream record, as much of it as ferry uses.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    pub event: Event,
    pub seq: String,
    /// ApproximateCreationDateTime, ms.
    pub time_ms: i64,
    pub keys: Item,
    pub new_image: Option<Item>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Event {
    Insert,
    Modify,
    Remove,
    /// An event name ferry does not know (DynamoDB Local labels TTL deletes this way).
    #[serde(other)]
    Other,
}

/// Parses a GetRecords response body: the records and the next shard iterator. An error names the
/// sequence number of the first record it cannot read, when that much of the page is readable.
pub fn parse_get_records(body: &[u8]) -> Result<(Vec<RawRecord>, Option<String>), String> {
    // One UTF-8 check for the whole page; from_str then skips it per string.
    let text = std::str::from_utf8(body).map_err(|e| format!("GetRecords response is not UTF-8: {e}"))?;
    let parsed = serde_json::from_str::<Body>(text)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            let records = b
                .records
                .into_iter()
                .map(WireRecord::into_raw)
                .collect::<Result<_, &str>>()?;
            Ok((records, b.next_shard_iterator))
        });
    parsed.map_err(|e| match unreadable_record_seq(text) {
        Some(seq) => format!("unreadable GetRecords response at the record with sequence number {seq}: {e}"),
        None => format!("unreadable GetRecords response: {e}"),
    })
}

/// On a page the fast parser refused: the sequence number of its first unreadable record, if the page
/// is JSON and that record has one. Slow, and only run on the error path.
fn unreadable_record_seq(text: &str) -> Option<String> {
    let page: serde_json::Value = serde_json::from_str(text).ok()?;
    let bad = page
        .get("Records")?
        .as_array()?
        .iter()
        .find(|r| !WireRecord::deserialize(*r).is_ok_and(|w| w.into_raw().is_ok()))?;
    Some(bad.get("dynamodb")?.get("SequenceNumber")?.as_str()?.to_string())
}

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "Records", default)]
    records: Vec<WireRecord>,
    #[serde(rename = "NextShardIterator")]
    next_shard_iterator: Option<String>,
}

/// One stream record in the JSON shape shared by GetRecords, the Lambda event of a stream trigger
/// and the SQS change buffer (`source::sqs`).
#[derive(Deserialize)]
pub(crate) struct WireRecord {
    #[serde(rename = "eventName")]
    event_name: Option<Event>,
    dynamodb: Option<WireStreamRecord>,
}

impl WireRecord {
    pub(crate) fn into_raw(self) -> Result<RawRecord, &'static str> {
        let d = self.dynamodb.ok_or("a stream record without its dynamodb section")?;
        Ok(RawRecord {
            event: self.event_name.unwrap_or(Event::Other),
            seq: d.sequence_number.ok_or("a stream record without a sequence number")?,
            time_ms: d.approximate_creation_date_time.map_or(0, |s| (s * 1000.0) as i64),
            keys: d.keys.map(|i| i.0).unwrap_or_default(),
            new_image: d.new_image.map(|i| i.0),
        })
    }
}

#[derive(Deserialize)]
struct WireStreamRecord {
    #[serde(rename = "ApproximateCreationDateTime")]
    approximate_creation_date_time: Option<f64>,
    #[serde(rename = "Keys")]
    keys: Option<WireItem>,
    #[serde(rename = "NewImage")]
    new_image: Option<WireItem>,
    #[serde(rename = "OldImage", default)]
    _old_image: Option<IgnoredAny>,
    #[serde(rename = "SequenceNumber")]
    sequence_number: Option<String>,
}

/// A DynamoDB JSON item, built directly as DynamoDB SDK values.
struct WireItem(Item);
struct WireValue(Av);
struct WireBlob(Blob);

impl<'de> Deserialize<'de> for WireItem {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB item")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<WireItem, A::Error> {
                let mut item = HashMap::with_capacity(m.size_hint().unwrap_or(8));
                while let Some(k) = m.next_key::<String>()? {
                    let v: WireValue = m.next_value()?;
                    item.insert(k, v.0);
                }
                Ok(WireItem(item))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
#[allow(clippy::upper_case_acronyms)]
enum Tag {
    S,
    N,
    B,
    BOOL,
    NULL,
    SS,
    NS,
    BS,
    L,
    M,
}

impl<'de> Deserialize<'de> for WireValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB attribute value like {\"S\": \"x\"}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<WireValue, A::Error> {
                // DynamoDB Local 3.x writes an empty map in a stream image as `{}`, without its
                // "M" (Scan returns `{"M":{}}`). No other value can be an empty object.
                let Some(tag) = m.next_key::<Tag>()? else {
                    return Ok(WireValue(Av::M(HashMap::new())));
                };
                let v = match tag {
                    Tag::S => Av::S(m.next_value()?),
                    Tag::N => Av::N(m.next_value()?),
                    Tag::B => Av::B(m.next_value::<WireBlob>()?.0),
                    Tag::BOOL => Av::Bool(m.next_value()?),
                    Tag::NULL => Av::Null(m.next_value()?),
                    Tag::SS => Av::Ss(m.next_value()?),
                    Tag::NS => Av::Ns(m.next_value()?),
                    Tag::BS => Av::Bs(m.next_value::<Vec<WireBlob>>()?.into_iter().map(|b| b.0).collect()),
                    Tag::L => Av::L(m.next_value::<Vec<WireValue>>()?.into_iter().map(|v| v.0).collect()),
                    Tag::M => Av::M(m.next_value::<WireItem>()?.0),
                };
                if m.next_key::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("an attribute value with two type descriptors"));
                }
                Ok(WireValue(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for WireBlob {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WireBlob;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("base64 binary")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<WireBlob, E> {
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map(|b| WireBlob(Blob::new(b)))
                    .map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// Where [`FastGetRecords`] leaves the parsed records of one call, or why its page is unreadable.
pub type Slot = Arc<Mutex<Option<Result<Vec<RawRecord>, String>>>>;

/// Per-call interceptor: swaps the SDK's GetRecords deserializer for [`parse_get_records`].
#[derive(Debug)]
pub struct FastGetRecords {
    pub slot: Slot,
}

impl Intercept for FastGetRecords {
    fn name(&self) -> &'static str {
        "ferry::FastGetRecords"
    }

    fn modify_before_deserialization(
        &self,
        _ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The orchestrator loads the deserializer after this hook; the newest layer wins.
        cfg.interceptor_state()
            .store_put(SharedResponseDeserializer::new(Deserializer {
                slot: self.slot.clone(),
            }));
        Ok(())
    }
}

#[derive(Debug)]
struct Deserializer {
    slot: Slot,
}

impl DeserializeResponse for Deserializer {
    fn deserialize_nonstreaming_with_config(
        &self,
        response: &HttpResponse,
        _cfg: &ConfigBag,
    ) -> Result<Output, OrchestratorError<Error>> {
        let body = response.body().bytes().unwrap_or_default();
        if !response.status().is_success() {
            let err = GetRecordsError::generic(error_metadata(response, body));
            return Err(OrchestratorError::operation(Error::erase(err)));
        }
        // An unreadable page is not transient: reading it again gives the same bytes. It goes to
        // the slot rather than out as an SDK response error, which ferry would retry.
        let (records, next) = match parse_get_records(body) {
            Ok((records, next)) => (Ok(records), next),
            Err(e) => (Err(e), None),
        };
        *self.slot.lock().unwrap() = Some(records);
        Ok(Output::erase(
            GetRecordsOutput::builder().set_next_shard_iterator(next).build(),
        ))
    }
}

/// The error code and message of an awsJson 1.0 error response.
fn error_metadata(response: &HttpResponse, body: &[u8]) -> ErrorMetadata {
    #[derive(Deserialize, Default)]
    struct E {
        #[serde(rename = "__type")]
        kind: Option<String>,
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let e: E = serde_json::from_slice(body).unwrap_or_default();
    let raw = response
        .headers()
        .get("x-amzn-errortype")
        .map(str::to_string)
        .or(e.kind)
        .unwrap_or_default();
    // "com.amazonaws.dynamodb.v20120810#ExpiredIteratorException:http://..." → ExpiredIteratorException
    let code = raw
        .rsplit('#')
        .next()
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_string();
    let mut b = ErrorMetadata::builder().message(
        e.message
            .unwrap_or_else(|| format!("HTTP {}", response.status().as_u16())),
    );
    if !code.is_empty() {
        b = b.code(code);
    }
    b.build()
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
