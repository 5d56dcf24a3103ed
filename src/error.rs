//! ferry's one error type.
//!
//! Every failure carries a [`Kind`] that tells the single retry layer ([`crate::retry`]) what to do
//! with it: back off and try again (`Retryable`, `Throttled`) or stop the table loudly (`Fatal`).
//! Messages are written for the operator: they name the table, key, file or line involved and, for
//! gaps and misconfiguration, what to do next.

use std::fmt;

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
}

#[derive(Debug)]
pub struct Error {
    kind: Kind,
    /// The AWS error code when the error came from a service call (`ResourceNotFoundException`...).
    code: Option<String>,
    message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    pub fn from_sdk<E, R>(op: &str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug,
    {
        match &err {
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().unwrap_or("Unknown").to_string();
                let msg = e.message().unwrap_or("").to_string();
                let kind = classify_code(&code);
                Self {
                    kind,
                    message: format!("{op} failed: {code}: {msg}"),
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

/// Maps an AWS error code onto a retry decision.
pub fn classify_code(code: &str) -> Kind {
    match code {
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
        | "RequestTimeoutException" => Kind::Retryable,
        _ => Kind::Fatal,
    }
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
