//! GetRecords responses, parsed by ferry instead of the SDK.
//!
//! Why: the SDK's deserializer builds Streams `AttributeValue`s that then have to be converted into
//! DynamoDB ones, and it was 65% of the apply path's CPU (5 µs of 8 per record). This parser keeps
//! the new image as its checked JSON ([`crate::item::raw`]), keeps the keys as JSON until the key
//! schema reads them, and skips the images ferry does not use (OldImage). Pages whose images stay
//! raw are read in one pass by [`super::page`]; serde reads them into maps for a transform.
//!
//! It plugs into the SDK call itself ([`FastGetRecords`]): signing, endpoints, timeouts and error
//! codes stay the SDK's; only the body of a successful response is read here. A body it cannot read
//! stops the table (`api::SdkStreams::records`): a page never changes, so retrying cannot help.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodbstreams::operation::get_records::{GetRecordsError, GetRecordsOutput};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, Error, Output,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse, SharedResponseDeserializer};
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::ErrorMetadata;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::item::wire::WireItem;
use crate::item::{Image, Item, RawKeys};

/// One stream record, as much of it as ferry uses.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    pub event: Event,
    pub seq: String,
    /// ApproximateCreationDateTime, ms.
    pub time_ms: i64,
    pub keys: RawKeys,
    pub new_image: Option<Image>,
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

/// How a page's new images are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Images {
    /// Kept as their checked JSON and written as they came ([`crate::item::raw`]).
    #[default]
    Raw,
    /// Read into SDK maps: a transform looks inside every item, and reading the JSON a second
    /// time for it would cost more than the raw form saves.
    Maps,
}

impl Images {
    /// The form that costs the table's apply path least.
    pub fn for_transform(spec: &crate::transform::Spec) -> Images {
        if spec.is_empty() { Images::Raw } else { Images::Maps }
    }
}

/// Parses a GetRecords response body: the records and the next shard iterator. An error names the
/// sequence number of the first record it cannot read, when that much of the page is readable.
pub fn parse_get_records(body: &[u8], images: Images) -> Result<(Vec<RawRecord>, Option<String>), String> {
    // One UTF-8 check for the whole page; from_str then skips it per string.
    let text = std::str::from_utf8(body).map_err(|e| format!("GetRecords response is not UTF-8: {e}"))?;
    let parsed = match images {
        Images::Raw => super::page::parse(text),
        Images::Maps => parse_as::<MapImage>(text),
    };
    parsed.map_err(|e| match unreadable_record_seq(text) {
        Some(seq) => format!("unreadable GetRecords response at the record with sequence number {seq}: {e}"),
        None => format!("unreadable GetRecords response: {e}"),
    })
}

pub(super) fn parse_as<'de, I: Deserialize<'de> + Into<Image>>(
    text: &'de str,
) -> Result<(Vec<RawRecord>, Option<String>), String> {
    serde_json::from_str::<Body<I>>(text)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            let records = b
                .records
                .into_iter()
                .map(WireRecord::into_raw)
                .collect::<Result<_, &str>>()?;
            Ok((records, b.next_shard_iterator))
        })
}

/// A new image read into an SDK map.
struct MapImage(Item);

impl<'de> Deserialize<'de> for MapImage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WireItem::deserialize(d).map(|w| MapImage(w.0))
    }
}

impl From<MapImage> for Image {
    fn from(m: MapImage) -> Image {
        Image::Map(m.0)
    }
}

/// On a page the fast parser refused: the sequence number of its first unreadable record, if the page
/// is JSON and that record has one. Slow, and only run on the error path.
fn unreadable_record_seq(text: &str) -> Option<String> {
    let page: serde_json::Value = serde_json::from_str(text).ok()?;
    let bad = page
        .get("Records")?
        .as_array()?
        .iter()
        .find(|r| !WireRecord::<Image>::deserialize(*r).is_ok_and(|w| w.into_raw().is_ok()))?;
    Some(bad.get("dynamodb")?.get("SequenceNumber")?.as_str()?.to_string())
}

#[derive(Deserialize)]
struct Body<I> {
    #[serde(rename = "Records", default = "Vec::new")]
    records: Vec<WireRecord<I>>,
    #[serde(rename = "NextShardIterator")]
    next_shard_iterator: Option<String>,
}

/// One stream record in the JSON shape shared by GetRecords, the Lambda event of a stream trigger
/// and the SQS change buffer (`source::sqs`), its new image read as `I`.
#[derive(Deserialize)]
pub(crate) struct WireRecord<I = Image> {
    #[serde(rename = "eventName")]
    event_name: Option<Event>,
    dynamodb: Option<WireStreamRecord<I>>,
}

impl<I: Into<Image>> WireRecord<I> {
    pub(crate) fn into_raw(self) -> Result<RawRecord, &'static str> {
        let d = self.dynamodb.ok_or("a stream record without its dynamodb section")?;
        Ok(RawRecord {
            event: self.event_name.unwrap_or(Event::Other),
            seq: d.sequence_number.ok_or("a stream record without a sequence number")?,
            time_ms: d.approximate_creation_date_time.map_or(0, |s| (s * 1000.0) as i64),
            // None found is reported with the record's sequence number, by the key schema.
            keys: d.keys.unwrap_or_default(),
            new_image: d.new_image.map(Into::into),
        })
    }
}

#[derive(Deserialize)]
struct WireStreamRecord<I> {
    #[serde(rename = "ApproximateCreationDateTime")]
    approximate_creation_date_time: Option<f64>,
    #[serde(rename = "Keys")]
    keys: Option<RawKeys>,
    #[serde(rename = "NewImage")]
    new_image: Option<I>,
    #[serde(rename = "OldImage", default)]
    _old_image: Option<IgnoredAny>,
    #[serde(rename = "SequenceNumber")]
    sequence_number: Option<String>,
}

/// Where [`FastGetRecords`] leaves the parsed records of one call, or why its page is unreadable.
pub type Slot = Arc<Mutex<Option<Result<Vec<RawRecord>, String>>>>;

/// Per-call interceptor: swaps the SDK's GetRecords deserializer for [`parse_get_records`].
#[derive(Debug)]
pub struct FastGetRecords {
    pub slot: Slot,
    pub images: Images,
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
                images: self.images,
            }));
        Ok(())
    }
}

#[derive(Debug)]
struct Deserializer {
    slot: Slot,
    images: Images,
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
        let (records, next) = match parse_get_records(body, self.images) {
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
