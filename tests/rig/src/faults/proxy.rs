//! The proxy's HTTP side: accepting connections, applying the fault [`Faults::pick`] chose for a
//! request, forwarding to the upstream and rewriting partial BatchWriteItem requests and answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::{Fault, Faults, Service};

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
fn split_batch(body: &[u8]) -> Option<(Option<Value>, Value)> {
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
