//! ferry's one error type.
//!
//! Every failure carries a [`Kind`] that tells the single retry driver ([`crate::retry`]) what to
//! do with it: back off and try again (`Retryable`, `Throttled`), stop the table loudly (`Fatal`),
//! or unwind quietly because ferry was asked to stop (`Stopped`).
//! Messages are written for the operator: they name the table, key, file or line involved and, for
//! gaps and misconfiguration, what to do next.

use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What the retry layer should do with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Transient (network, 5xx, expired iterator): retry with backoff.
    Retryable,
    /// The service asked us to slow down: retry with backoff, count it as a throttle.
    Throttled,
    /// Retrying cannot help: stop and tell the operator.
    Fatal,
    /// ferry was asked to stop while the work was still failing: not a failure of the table.
    /// Nothing it carried was acknowledged, so the next run redoes it.
    Stopped,
}

#[derive(Debug)]
pub struct Error {
    kind: Kind,
    /// The AWS error code when the error came from a service call (`ResourceNotFoundException`...).
    code: Option<String>,
    message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The code of [`Error::lease_lost`] (not an AWS code).
const LEASE_LOST: &str = "ferry.LeaseLost";

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: None,
            message: message.into(),
        }
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(Kind::Fatal, message)
    }
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new(Kind::Retryable, message)
    }
    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn is_fatal(&self) -> bool {
        self.kind == Kind::Fatal
    }
    /// Unwinding because of a stop request (see [`Kind::Stopped`]).
    pub fn stopped(what: impl Into<String>) -> Self {
        Self::new(Kind::Stopped, what)
    }
    pub fn is_stopped(&self) -> bool {
        self.kind == Kind::Stopped
    }
    /// Another worker took over a lease this worker held: the work under it ends (fatal for that
    /// work), while the worker itself goes on (back to standby).
    pub fn lease_lost(message: impl Into<String>) -> Self {
        Self {
            code: Some(LEASE_LOST.into()),
            ..Self::fatal(message)
        }
    }
    pub fn is_lease_lost(&self) -> bool {
        self.code() == Some(LEASE_LOST)
    }
    /// Prefixes the message with what was being done, keeping kind and code.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
    /// Turns any error into a fatal one (used once a retry budget is spent).
    pub fn into_fatal(mut self) -> Self {
        self.kind = Kind::Fatal;
        self
    }

    /// Classifies an AWS SDK error. `op` names the call for the message ("DescribeTable").
    pub fn from_sdk<E>(op: &str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match &err {
            SdkError::ServiceError(se) => {
                let e = se.err();
                let status = se.raw().status().as_u16();
                let code = e.code().unwrap_or("Unknown").to_string();
                let msg = e.message().unwrap_or("").to_string();
                let kind = classify(&code, status);
                let message = match (e.code(), msg.is_empty()) {
                    (Some(_), false) => format!("{op} failed: {code}: {msg} (HTTP {status})"),
                    (Some(_), true) => format!("{op} failed: {code} (HTTP {status})"),
                    (None, false) => format!("{op} failed: HTTP {status} without an error code: {msg}"),
                    (None, true) => format!("{op} failed: HTTP {status} without an error code or message"),
                };
                Self {
                    kind,
                    message,
                    code: Some(code),
                }
            }
            SdkError::DispatchFailure(df) => {
                let detail = if df.is_io() {
                    "connection failed (is the endpoint reachable?)"
                } else if df.is_timeout() {
                    "timed out"
                } else {
                    "request could not be sent"
                };
                let cause = source_chain(&err);
                Self::retryable(format!("{op} failed: {detail}: {cause}"))
            }
            SdkError::TimeoutError(_) => Self::retryable(format!("{op} failed: timed out")),
            SdkError::ResponseError(_) => {
                Self::retryable(format!("{op} failed: unreadable response: {}", source_chain(&err)))
            }
            SdkError::ConstructionFailure(_) => Self::fatal(format!("{op} failed: {}", source_chain(&err))),
            _ => Self::retryable(format!("{op} failed: {}", source_chain(&err))),
        }
    }
}

/// Keeps the first real failure among several workers' errors: a `Stopped` (a worker unwinding
/// because of a stop) never hides a fatal error that another worker hit.
pub fn keep_first(slot: &mut Option<Error>, e: Error) {
    match slot {
        Some(held) if held.is_stopped() && !e.is_stopped() => *slot = Some(e),
        Some(_) => {}
        None => *slot = Some(e),
    }
}

/// Maps an AWS error code and the response's HTTP status onto a retry decision. A code ferry does
/// not know is judged by its status: a proxy's or load balancer's 502/503/504 with an empty body,
/// or a 500 with a new code, is a server that may answer next time; a 4xx is the request's fault.
pub fn classify(code: &str, status: u16) -> Kind {
    match classify_code(code) {
        Some(kind) => kind,
        None if status == 429 => Kind::Throttled,
        None if status >= 500 => Kind::Retryable,
        None => Kind::Fatal,
    }
}

/// The decision for the error codes ferry knows, `None` for any other.
fn classify_code(code: &str) -> Option<Kind> {
    Some(match code {
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "LimitExceededException"
        | "Throttling"
        | "TooManyRequestsException"
        | "SlowDown" => Kind::Throttled,
        "InternalServerError"
        | "InternalFailure"
        | "InternalError"
        | "ServiceUnavailable"
        | "ExpiredIteratorException"
        | "TransactionInProgressException"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "ServiceUnavailableException"
        | "InternalServerErrorException"
        | "ServiceException"
        | "KMSInternalException" => Kind::Retryable,
        "ValidationException"
        | "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "ResourceNotFoundException"
        | "ConditionalCheckFailedException"
        | "ItemCollectionSizeLimitExceededException"
        | "InvalidSignatureException"
        | "MissingAuthenticationToken" => Kind::Fatal,
        _ => return None,
    })
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut cur = err.source();
    while let Some(e) = cur {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&e.to_string());
        cur = e.source();
    }
    if out.is_empty() { err.to_string() } else { out }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::fatal(format!("state store: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::fatal(format!("I/O: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DynamoDB client whose every call gets `status` and `body`, through the real SDK stack.
    fn client(status: u16, body: &'static str) -> aws_sdk_dynamodb::Client {
        let http = aws_smithy_http_client::test_util::infallible_client_fn(move |_| {
            http::Response::builder().status(status).body(body).unwrap()
        });
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new("a", "b", None, None, "t"))
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .http_client(http)
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    async fn kind_of(status: u16, body: &'static str) -> Kind {
        let err = client(status, body)
            .describe_table()
            .table_name("T")
            .send()
            .await
            .unwrap_err();
        Error::from_sdk("DescribeTable", err).kind()
    }

    #[tokio::test]
    async fn server_faults_without_a_known_code_are_transient_client_faults_are_not() {
        let code = |c: &str| format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{c}","message":"m"}}"#);
        let cases = [
            // A load balancer's or proxy's answers: no body, or not JSON.
            (503, String::new(), Kind::Retryable),
            (502, "<html>Bad Gateway</html>".to_string(), Kind::Retryable),
            (500, code("SomethingNew"), Kind::Retryable),
            (429, String::new(), Kind::Throttled),
            (400, code("ProvisionedThroughputExceededException"), Kind::Throttled),
            (400, code("ValidationException"), Kind::Fatal),
            (400, code("ResourceNotFoundException"), Kind::Fatal),
            // An unknown 4xx is the request's fault: retrying cannot fix it.
            (400, code("SomethingNew"), Kind::Fatal),
        ];
        for (status, body, want) in cases {
            let body: &'static str = Box::leak(body.into_boxed_str());
            assert_eq!(kind_of(status, body).await, want, "HTTP {status} {body}");
        }
    }

    #[test]
    fn a_stop_never_hides_a_failure() {
        let mut slot = None;
        keep_first(&mut slot, Error::stopped("unwinding"));
        keep_first(&mut slot, Error::fatal("ValidationException on key 7"));
        keep_first(&mut slot, Error::fatal("later"));
        keep_first(&mut slot, Error::stopped("unwinding too"));
        assert_eq!(slot.unwrap().message(), "ValidationException on key 7");
    }
}
