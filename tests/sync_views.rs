//! Stream view types and stream set-up: KEYS_ONLY sources (items read back from the source),
//! a source without a stream (`--enable-streams`), and the Prometheus endpoint.

use std::io::{Read, Write};
use std::time::Duration;

use aws_sdk_dynamodb::types::StreamViewType;
use ferry_rig::ferry_bin;
use ferry_rig::process::terminate;
use ferry_rig::scenario::{Scenario, Stream};
use ferry_rig::wait::{wait_caught_up, wait_equal};
use ferry_rig::workload::Workload;
use tokio_util::sync::CancellationToken;

async fn run_with_workload(view: Option<StreamViewType>, extra: &[&str]) -> Scenario {
    let s = Scenario::setup(ferry_bin!())
        .accounts("vsrc", "vdst")
        .stream(view.map_or(Stream::Off, Stream::AtCreate))
        .items(500, 3)
        .keys("p", 13)
        .tables("[[table]]\nsource = \"Orders\"\nscan_segments = 2\n")
        .build()
        .await;
    let (src, dst, ferry) = (&s.src, &s.dst, &s.ferry);
    let mut child = ferry.spawn_sync(extra);
    let stop = CancellationToken::new();
    let mut wl = Workload::new(src.clone(), "Orders");
    wl.cold_keys = 300;
    let writes = tokio::spawn({
        let stop = stop.clone();
        async move { wl.run(stop, Some(3_000)).await }
    });
    writes.await.unwrap().expect("workload");
    stop.cancel();
    wait_caught_up(ferry, "Orders", Duration::from_secs(90)).await;
    wait_equal(src, "Orders", dst, "Orders", Duration::from_secs(60), || ferry.logs()).await;
    if let Some(addr) = extra.iter().skip_while(|a| **a != "--metrics").nth(1) {
        let body = http_get(addr, "/metrics");
        assert!(body.contains("ferry_records_applied_total{table=\"Orders\"}"), "{body}");
        assert!(body.contains("ferry_lag_seconds{table=\"Orders\"}"), "{body}");
        let metric = |name: &str| -> f64 {
            let line = body
                .lines()
                .find(|l| l.starts_with(&format!("{name}{{table=\"Orders\"}}")))
                .unwrap_or_else(|| panic!("{name} in {body}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(metric("ferry_snapshot_items_total") >= 500.0, "{body}");
        assert!(metric("ferry_records_applied_total") > 1_000.0, "{body}");
        assert!(metric("ferry_write_units_total") > 0.0, "{body}");
    }
    terminate(&child);
    assert!(child.wait().unwrap().success(), "{}", ferry.logs());
    s
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("metrics endpoint");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_only_streams_are_applied_by_reading_the_source() {
    run_with_workload(Some(StreamViewType::KeysOnly), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enable_streams_adds_a_stream_and_metrics_are_served() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let s = run_with_workload(None, &["--enable-streams", "--metrics", &addr]).await;
    let t = s
        .src
        .describe_table()
        .table_name("Orders")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let spec = t.stream_specification.unwrap();
    assert!(spec.stream_enabled);
    assert_eq!(spec.stream_view_type, Some(StreamViewType::NewAndOldImages));
}
