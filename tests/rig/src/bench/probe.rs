//! Readers for a `ferry` child: its `/metrics` (a free port, one HTTP GET, one table's counter,
//! the wait until records are applied) and its `/proc` figures (peak RSS, CPU seconds).

use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET `path` from `addr` (HTTP/1.1, Connection: close); the body.
pub async fn http_get(addr: &str, path: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.map_err(|e| e.to_string())?;
    Ok(out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(out))
}

/// The value of `name{table="<table>"}` in a Prometheus text body.
pub fn metric(body: &str, name: &str, table: &str) -> Option<f64> {
    let prefix = format!("{name}{{table=\"{table}\"}}");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// When ferry's applied count, as `/metrics` showed it, first moved and when it reached the target
/// (both from `start`).
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    pub first: Duration,
    pub done: Duration,
}

/// Polls ferry's `/metrics` every 50 ms until `ferry_records_applied_total` reaches `target`.
/// Fails when ferry exits or the count stops moving for `stall`.
pub async fn wait_applied(
    ferry: &mut std::process::Child,
    addr: &str,
    table: &str,
    target: u64,
    start: Instant,
    stall: Duration,
) -> Result<Applied, String> {
    let (mut last, mut moved) = (0.0, Instant::now());
    let mut first = None;
    loop {
        if let Ok(Some(status)) = ferry.try_wait() {
            return Err(format!("ferry exited ({status}) after {last} of {target} records"));
        }
        let body = http_get(addr, "/metrics").await.unwrap_or_default();
        let applied = metric(&body, "ferry_records_applied_total", table).unwrap_or(0.0);
        if applied > 0.0 && first.is_none() {
            first = Some(start.elapsed());
        }
        if applied >= target as f64 {
            let done = start.elapsed();
            let first = first.unwrap_or(done);
            return Ok(Applied { first, done });
        }
        if applied != last {
            (last, moved) = (applied, Instant::now());
        }
        if moved.elapsed() > stall {
            let read = metric(&body, "ferry_records_read_total", table).unwrap_or(0.0);
            return Err(format!(
                "ferry stalled: {applied} of {target} records applied ({read} read) for {stall:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Peak resident set (`VmHWM`) of `pid`, in KB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that fails).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) used so far by `pid`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    // After "(comm)": state is field 3, utime field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_reads_one_table_s_counter() {
        let body = "# TYPE ferry_records_applied_total counter\n\
                    ferry_records_applied_total{table=\"Other\"} 5\n\
                    ferry_records_applied_total{table=\"Bench\"} 1234\n";
        assert_eq!(metric(body, "ferry_records_applied_total", "Bench"), Some(1234.0));
        assert_eq!(metric(body, "ferry_records_read_total", "Bench"), None);
    }
}
