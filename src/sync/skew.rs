//! The clock skew between this host and the source's endpoint, measured from the `Date` header of
//! a response. The capture time T0 is read from this host's clock, while stream records are
//! stamped by the service's: if this host runs ahead, a write made just after T0 can carry a time
//! before T0 minus the overlap and would be skipped. ferry measures the skew before recording a
//! capture point and widens the replay window by it when it is large.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::clock::now_ms;

/// A skew beyond this is worth a warning and a wider window (the `Date` header has 1 s resolution).
pub const WARN_MS: i64 = 5_000;

#[derive(Debug, Default)]
struct DateOf {
    date: Arc<Mutex<Option<SystemTime>>>,
}

impl Intercept for DateOf {
    fn name(&self) -> &'static str {
        "ferry::DateOf"
    }

    fn read_before_deserialization(
        &self,
        ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let date = ctx
            .response()
            .headers()
            .get("date")
            .and_then(|d| httpdate::parse_http_date(d).ok());
        *self.date.lock().unwrap() = date;
        Ok(())
    }
}

/// The endpoint's clock minus this host's, in ms (positive: the endpoint is ahead), from one
/// DescribeTable call; `None` when the call fails or the response carries no `Date`.
pub async fn measure(client: &aws_sdk_dynamodb::Client, table: &str) -> Option<i64> {
    let probe = DateOf::default();
    let date = probe.date.clone();
    let before = now_ms();
    let _ = client
        .describe_table()
        .table_name(table)
        .customize()
        .interceptor(probe)
        .send()
        .await;
    let after = now_ms();
    let server = date.lock().unwrap().take()?;
    let server_ms = server.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_millis() as i64;
    // The header is cut to the second: compare with the middle of the call, cut the same way.
    let local = (before + (after - before) / 2) / 1000 * 1000;
    Some(server_ms - local)
}

/// How much earlier than `T0 - overlap` the replay must start to cover a skew: records are stamped
/// by the endpoint, so an endpoint clock behind this host's makes them look older than they are.
pub fn widen_ms(skew_ms: Option<i64>) -> i64 {
    match skew_ms {
        Some(s) if s.abs() >= WARN_MS => s.abs(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_with_date(date: String) -> aws_sdk_dynamodb::Client {
        let http = aws_smithy_http_client::test_util::infallible_client_fn(move |_| {
            http::Response::builder()
                .status(200)
                .header("Date", date.clone())
                .body(r#"{"Table":{"TableName":"T"}}"#)
                .unwrap()
        });
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new("a", "b", None, None, "t"))
            .http_client(http)
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    #[tokio::test]
    async fn measures_the_endpoint_clock_against_this_host() {
        let behind = SystemTime::now() - std::time::Duration::from_secs(3600);
        let skew = measure(&client_with_date(httpdate::fmt_http_date(behind)), "T")
            .await
            .unwrap();
        assert!((skew + 3_600_000).abs() <= 2_000, "{skew}");
        assert_eq!(widen_ms(Some(skew)), skew.abs());

        let same = measure(&client_with_date(httpdate::fmt_http_date(SystemTime::now())), "T")
            .await
            .unwrap();
        assert!(same.abs() <= 2_000, "{same}");
        assert_eq!(
            widen_ms(Some(same)),
            0,
            "a second of rounding is covered by the overlap"
        );
        assert_eq!(widen_ms(None), 0);
    }
}
