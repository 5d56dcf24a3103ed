//! The daemon's HTTP address (`ferry sync --metrics ADDR`): Prometheus metrics at `/metrics`, and
//! a read-only status page at `/` for people who are not at a terminal. The page is one
//! self-contained file (no external assets, works offline) that reads `/status.json` every few
//! seconds: the same table statuses `ferry status --json` prints, with each table's lag over the
//! last hour and the last cutover report.
//!
//! Nothing here writes anywhere: the page reads the state store as `ferry status` does.

mod board;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;

pub use board::Board;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::telemetry::metrics::{IDLE_GAUGES, builder};

const INDEX: &str = include_str!("index.html");
/// How often the exporter drops idle gauges (what its own listener would do).
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the metrics recorder and serves `/metrics`, `/` and `/status.json` on `addr` until
/// the process ends. Binds before returning, so a taken address is an error at start.
pub async fn serve(addr: SocketAddr, config: &Config) -> Result<()> {
    let metrics = builder(IDLE_GAUGES)
        .install_recorder()
        .map_err(|e| Error::fatal(format!("cannot install the metrics recorder: {e}")))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::fatal(format!("cannot serve metrics on {addr}: {e}")))?;
    let site = Arc::new(Site {
        metrics,
        board: Board::new(config),
    });
    tokio::spawn(board::sample_every(site.board.clone(), board::SAMPLE_EVERY));
    tokio::spawn({
        let handle = site.metrics.clone();
        async move {
            loop {
                crate::telemetry::metrics::publish_info();
                tokio::time::sleep(UPKEEP).await;
                handle.run_upkeep();
            }
        }
    });
    tokio::spawn(accept(listener, site));
    Ok(())
}

struct Site {
    metrics: PrometheusHandle,
    board: Arc<Board>,
}

async fn accept(listener: tokio::net::TcpListener, site: Arc<Site>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            // Out of file descriptors and the like: wait rather than spin.
            Err(e) => {
                tracing::warn!(error = %e, "status page: accept failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let site = site.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let site = site.clone();
                async move { Ok::<_, Infallible>(route(&site, req).await) }
            });
            // A client that goes away mid-request is its own business.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(site: &Site, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != hyper::Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "read-only: GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/" | "/index.html" => reply(StatusCode::OK, "text/html; charset=utf-8", INDEX.into()),
        "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4", site.metrics.render()),
        "/status.json" => reply(StatusCode::OK, "application/json", site.board.json().await),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /, /status.json or /metrics\n".into(),
        ),
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(hyper::header::CONTENT_TYPE, content_type.parse().expect("valid header"));
    h.insert(hyper::header::CACHE_CONTROL, "no-store".parse().expect("valid header"));
    r
}
