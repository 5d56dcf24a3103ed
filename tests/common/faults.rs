//! A fault-injecting HTTP/1.1 proxy for the live tests: it sits between `ferry` and DynamoDB
//! Local and makes the endpoint misbehave the way AWS does (throttles, 5xx, dropped connections,
//! slow answers, partial BatchWriteItem results, outages), under rules the test changes while
//! `ferry` runs. It counts every fault it injects, so a test can assert the fault really happened.
//!
//! DynamoDB and DynamoDB Streams share the endpoint; a request's operation comes from its
//! `X-Amz-Target` header (`DynamoDB_20120810.BatchWriteItem`, `DynamoDBStreams_20120810.GetRecords`).
//! Requests without one (Lambda, S3...) are forwarded untouched and never faulted.
//!
//! Dev-only: used from tests/ (and from benches through `#[path]`), never by the daemon.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What the proxy does to a request instead of (or before) forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// HTTP 400 with the service's throttling error (DynamoDB:
    /// `ProvisionedThroughputExceededException`; Streams: `LimitExceededException`).
    Throttle,
    /// HTTP 500 with an error code no SDK or ferry knows.
    Unknown500,
    /// HTTP 503 with an empty body (what a load balancer in front of a service sends).
    Empty503,
    /// The connection is reset without an answer (TCP RST).
    Reset,
    /// Waits the rule's delay, then forwards.
    Delay,
    /// BatchWriteItem only: forwards part of the items and returns the rest as UnprocessedItems.
    PartialBatch,
    /// Every connection and request is reset while an outage lasts ([`Faults::outage_for`]).
    Outage,
}

/// The two services behind one DynamoDB endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Streams,
}

/// When a rule fires on a request it matches.
#[derive(Debug, Clone, Copy)]
pub enum When {
    Always,
    Probability(f64),
    /// The next N matching requests, then the rule is gone.
    Next(u32),
}

#[derive(Debug, Clone)]
pub struct Rule {
    fault: Fault,
    delay: Duration,
    service: Option<Service>,
    op: Option<String>,
    when: When,
}

impl Rule {
    /// `fault` on every DynamoDB and Streams request until cleared; narrow it with the builders.
    pub fn new(fault: Fault) -> Rule {
        Rule {
            fault,
            delay: Duration::ZERO,
            service: None,
            op: None,
            when: When::Always,
        }
    }
    /// A slow answer: waits `d`, then forwards.
    pub fn delay(d: Duration) -> Rule {
        Rule {
            delay: d,
            ..Rule::new(Fault::Delay)
        }
    }
    /// Only requests for this operation ("Scan", "GetRecords"...).
    pub fn on(mut self, op: &str) -> Rule {
        self.op = Some(op.to_string());
        self
    }
    pub fn service(mut self, s: Service) -> Rule {
        self.service = Some(s);
        self
    }
    pub fn probability(mut self, p: f64) -> Rule {
        self.when = When::Probability(p);
        self
    }
    pub fn next(mut self, n: u32) -> Rule {
        self.when = When::Next(n);
        self
    }
    fn matches(&self, service: Service, op: &str) -> bool {
        self.service.is_none_or(|s| s == service)
            && self.op.as_deref().is_none_or(|o| o == op)
            && (self.fault != Fault::PartialBatch || op == "BatchWriteItem")
    }
}

/// The shared handle: rules and counts, changed and read by the test while the proxy runs.
#[derive(Clone)]
pub struct Faults(Arc<Mutex<State>>);

struct State {
    rules: Vec<Rule>,
    /// `Some(t)`: an outage until `t`.
    outage_until: Option<Instant>,
    injected: HashMap<(Fault, String), u64>,
    forwarded: HashMap<String, u64>,
    rng: StdRng,
}

impl Faults {
    fn new(seed: u64) -> Faults {
        Faults(Arc::new(Mutex::new(State {
            rules: Vec::new(),
            outage_until: None,
            injected: HashMap::new(),
            forwarded: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
        })))
    }
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Adds a rule; rules are tried in the order they were added, the first that fires wins.
    pub fn add(&self, rule: Rule) {
        self.state().rules.push(rule);
    }
    /// Removes every rule and ends any outage (the counts stay).
    pub fn clear(&self) {
        let mut s = self.state();
        s.rules.clear();
        s.outage_until = None;
    }
    /// Every connection and request is reset for `d` (from now).
    pub fn outage_for(&self, d: Duration) {
        self.state().outage_until = Some(Instant::now() + d);
    }
    pub fn in_outage(&self) -> bool {
        self.state().outage_until.is_some_and(|t| Instant::now() < t)
    }
    /// How many times `fault` was injected, on any operation.
    pub fn injected(&self, fault: Fault) -> u64 {
        let s = self.state();
        s.injected
            .iter()
            .filter(|((f, _), _)| *f == fault)
            .map(|(_, n)| n)
            .sum()
    }
    /// How many times `fault` was injected on `op` ("-" counts outage resets of new connections).
    pub fn injected_on(&self, fault: Fault, op: &str) -> u64 {
        self.state()
            .injected
            .get(&(fault, op.to_string()))
            .copied()
            .unwrap_or(0)
    }
    /// Requests for `op` forwarded upstream (delayed and partial ones included).
    pub fn forwarded(&self, op: &str) -> u64 {
        self.state().forwarded.get(op).copied().unwrap_or(0)
    }
    /// Every count, for failure messages.
    pub fn report(&self) -> String {
        let s = self.state();
        let mut lines: Vec<String> = s
            .injected
            .iter()
            .map(|((f, op), n)| format!("{f:?} on {op}: {n}"))
            .collect();
        lines.extend(s.forwarded.iter().map(|(op, n)| format!("forwarded {op}: {n}")));
        lines.sort();
        lines.join(", ")
    }

    fn count(&self, fault: Fault, op: &str) {
        *self.state().injected.entry((fault, op.to_string())).or_default() += 1;
    }
    /// The fault for one request, if any (consumes a `Next` rule's turn).
    fn pick(&self, service: Service, op: &str) -> Option<(Fault, Duration)> {
        let mut s = self.state();
        if s.outage_until.is_some_and(|t| Instant::now() < t) {
            return Some((Fault::Outage, Duration::ZERO));
        }
        let State { rules, rng, .. } = &mut *s;
        let i = rules.iter_mut().position(|r| {
            r.matches(service, op)
                && match &mut r.when {
                    When::Always => true,
                    When::Probability(p) => rng.random_bool(p.clamp(0.0, 1.0)),
                    When::Next(n) => {
                        *n = n.saturating_sub(1);
                        true
                    }
                }
        })?;
        let hit = (rules[i].fault, rules[i].delay);
        if matches!(rules[i].when, When::Next(0)) {
            rules.remove(i);
        }
        Some(hit)
    }
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, for an `endpoint_url`.
    pub endpoint: String,
    pub faults: Faults,
    task: tokio::task::JoinHandle<()>,
}

impl std::ops::Deref for FaultProxy {
    type Target = Faults;
    fn deref(&self) -> &Faults {
        &self.faults
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy listener");
        let addr: SocketAddr = listener.local_addr().expect("proxy address");
        let faults = Faults::new(addr.port() as u64);
        let fwd = Arc::new(Forward {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            faults: faults.clone(),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Dropping a socket with a zero linger sends RST: the client sees a reset.
                let _ = stream.set_zero_linger();
                if fwd.faults.in_outage() {
                    fwd.faults.count(Fault::Outage, "-");
                    drop(stream);
                    continue;
                }
                tokio::spawn(serve(stream, fwd.clone()));
            }
        });
        FaultProxy {
            endpoint: format!("http://{addr}"),
            faults,
            task,
        }
    }
}

struct Forward {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    faults: Faults,
}

/// One client connection; a `Reset` fault drops it (RST) with the request unanswered.
async fn serve(stream: TcpStream, fwd: Arc<Forward>) {
    let kill = Arc::new(Notify::new());
    let svc = hyper::service::service_fn({
        let kill = kill.clone();
        move |req| handle(fwd.clone(), kill.clone(), req)
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => {}
    }
}

async fn handle(
    fwd: Arc<Forward>,
    kill: Arc<Notify>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (service, op) = match target.split_once('.') {
        Some((s, op)) if s.starts_with("DynamoDBStreams_") => (Some(Service::Streams), op.to_string()),
        Some((s, op)) if s.starts_with("DynamoDB_") => (Some(Service::DynamoDb), op.to_string()),
        _ => (None, "-".to_string()),
    };
    let fault = service.and_then(|s| fwd.faults.pick(s, &op));
    let reset = || async {
        kill.notify_one();
        std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>().await
    };
    let Some((fault, delay)) = fault else {
        return match fwd.forward(req, &op, false).await {
            Some(resp) => Ok(resp),
            None => reset().await,
        };
    };
    fwd.faults.count(fault, &op);
    match fault {
        Fault::Throttle => {
            let code = match service {
                Some(Service::Streams) => "LimitExceededException",
                _ => "ProvisionedThroughputExceededException",
            };
            Ok(error_response(StatusCode::BAD_REQUEST, code, "injected throttle"))
        }
        Fault::Unknown500 => Ok(error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InjectedUnknownServerFault",
            "injected 500 with a code nobody knows",
        )),
        Fault::Empty503 => Ok(Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header("content-length", "0")
            .body(Full::new(Bytes::new()))
            .unwrap()),
        Fault::Reset | Fault::Outage => reset().await,
        Fault::Delay => {
            tokio::time::sleep(delay).await;
            match fwd.forward(req, &op, false).await {
                Some(resp) => Ok(resp),
                None => reset().await,
            }
        }
        Fault::PartialBatch => match fwd.forward(req, &op, true).await {
            Some(resp) => Ok(resp),
            None => reset().await,
        },
    }
}

/// A DynamoDB JSON error, as the service writes it.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": message}).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("content-length", body.len())
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

impl Forward {
    /// Forwards `req` upstream; with `partial`, only part of a BatchWriteItem's items go and the
    /// rest come back as UnprocessedItems. `None`: upstream unreachable (the caller resets).
    async fn forward(&self, req: Request<Incoming>, op: &str, partial: bool) -> Option<Response<Full<Bytes>>> {
        let (parts, body) = req.into_parts();
        let mut body = body.collect().await.ok()?.to_bytes();
        let mut withheld = None;
        if partial {
            let (kept, rest) = split_batch(&body)?;
            let Some(kept) = kept else {
                // Nothing left to send (one item): DynamoDB may leave a whole batch unprocessed.
                return Some(json_response(json!({"UnprocessedItems": rest})));
            };
            // The body no longer matches the request's SigV4 signature (which covers its hash);
            // DynamoDB Local does not check signatures, so the rewritten request is accepted.
            body = Bytes::from(kept.to_string());
            withheld = Some(rest);
        }
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut up = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{path}", self.upstream));
        for (k, v) in &parts.headers {
            if !matches!(k.as_str(), "content-length" | "transfer-encoding" | "connection") {
                up = up.header(k, v);
            }
        }
        let up = up.header("content-length", body.len()).body(Full::new(body)).ok()?;
        let resp = self.client.request(up).await.ok()?;
        *self.faults.state().forwarded.entry(op.to_string()).or_default() += 1;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.ok()?.to_bytes();
        if let Some(rest) = withheld.filter(|_| parts.status == StatusCode::OK) {
            let mut out: Value = serde_json::from_slice(&body).ok()?;
            merge_unprocessed(&mut out, rest);
            return Some(json_response(out));
        }
        let mut b = Response::builder().status(parts.status);
        for (k, v) in &parts.headers {
            if !matches!(k.as_str(), "content-length" | "transfer-encoding" | "connection") {
                b = b.header(k, v);
            }
        }
        b.header("content-length", body.len()).body(Full::new(body)).ok()
    }
}

/// A 200 DynamoDB JSON answer. (A rewritten body has no `x-amz-crc32`: the old one would not match.)
fn json_response(v: Value) -> Response<Full<Bytes>> {
    let body = v.to_string();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/x-amz-json-1.0")
        .header("content-length", body.len())
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// Splits a BatchWriteItem request: the request with its first half of the items (`None` when that
/// half is empty), and the other half as an `UnprocessedItems` map (table -> requests).
pub fn split_batch(body: &[u8]) -> Option<(Option<Value>, Value)> {
    let mut req: Value = serde_json::from_slice(body).ok()?;
    let tables = req.get_mut("RequestItems")?.as_object_mut()?;
    let all: Vec<(String, Value)> = tables
        .iter()
        .flat_map(|(t, reqs)| {
            reqs.as_array()
                .into_iter()
                .flatten()
                .map(move |r| (t.clone(), r.clone()))
        })
        .collect();
    let keep = all.len() / 2;
    let mut kept = serde_json::Map::new();
    let mut rest = serde_json::Map::new();
    for (i, (t, r)) in all.into_iter().enumerate() {
        let side = if i < keep { &mut kept } else { &mut rest };
        side.entry(t).or_insert_with(|| json!([])).as_array_mut()?.push(r);
    }
    *tables = kept;
    Some(((keep > 0).then_some(req), Value::Object(rest)))
}

/// Adds `rest` (table -> requests) to a BatchWriteItem response's UnprocessedItems.
fn merge_unprocessed(resp: &mut Value, rest: Value) {
    let Some(obj) = resp.as_object_mut() else { return };
    let un = obj.entry("UnprocessedItems").or_insert_with(|| json!({}));
    let (Some(un), Value::Object(rest)) = (un.as_object_mut(), rest) else {
        return;
    };
    for (t, reqs) in rest {
        let list = un.entry(t).or_insert_with(|| json!([]));
        if let (Some(list), Value::Array(reqs)) = (list.as_array_mut(), reqs) {
            list.extend(reqs);
        }
    }
}
