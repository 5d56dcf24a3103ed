//! A scripted FIFO queue and offload bucket behind the SQS and S3 clients' HTTP seam, in tokio
//! time (pauseable): SQS's JSON protocol (by X-Amz-Target) for ReceiveMessage (long poll, one
//! message per group per call, nothing of a group while one of its messages is in flight),
//! ChangeMessageVisibilityBatch, DeleteMessageBatch and GetQueueAttributes; S3 GetObject (path
//! style), whose first fetch of `k1` stalls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_types::body::SdkBody;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::STALL;

pub struct Msg {
    pub id: String,
    pub group: String,
    pub body: String,
    pub receipt: Option<String>,
    pub invisible_until: Option<Instant>,
    pub receives: u32,
}

#[derive(Default)]
pub struct Broker {
    pub queue: Vec<Msg>,
    pub receipts: u64,
    /// ChangeMessageVisibilityBatch answers a server error (extensions never take effect).
    pub fail_extend: bool,
    /// Fetches of each S3 key so far (the first of `k1` stalls).
    pub fetches: HashMap<String, u32>,
    pub objects: HashMap<String, String>,
}

impl Broker {
    fn in_flight(&self, m: &Msg, now: Instant) -> bool {
        m.invisible_until.is_some_and(|t| t > now)
    }

    /// One message per group per call at most (SQS may hand out fewer than it could).
    fn receive(&mut self, max: usize, visibility: u64) -> Vec<Value> {
        let now = Instant::now();
        let blocked: Vec<String> = self
            .queue
            .iter()
            .filter(|m| self.in_flight(m, now))
            .map(|m| m.group.clone())
            .collect();
        let mut taken: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for i in 0..self.queue.len() {
            let g = self.queue[i].group.clone();
            if out.len() == max || blocked.contains(&g) || taken.contains(&g) {
                taken.push(g);
                continue;
            }
            taken.push(g);
            self.receipts += 1;
            let m = &mut self.queue[i];
            m.receives += 1;
            m.receipt = Some(format!("r{}", self.receipts));
            m.invisible_until = Some(now + Duration::from_secs(visibility));
            out.push(json!({"MessageId": m.id, "ReceiptHandle": m.receipt, "Body": m.body,
                "Attributes": {"ApproximateReceiveCount": m.receives.to_string()}}));
        }
        out
    }

    fn entries<'a>(&mut self, body: &'a Value, mut f: impl FnMut(&mut Msg, &'a Value)) -> Value {
        let now = Instant::now();
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for e in body["Entries"].as_array().unwrap() {
            let handle = e["ReceiptHandle"].as_str();
            // A handle is valid while its receipt is the message's latest and still in flight.
            let at = self.queue.iter().position(|m| m.receipt.as_deref() == handle);
            match at.filter(|i| self.in_flight(&self.queue[*i], now)) {
                Some(i) => {
                    f(&mut self.queue[i], e);
                    ok.push(json!({"Id": e["Id"]}));
                }
                None => failed.push(json!({"Id": e["Id"], "SenderFault": true,
                    "Code": "ReceiptHandleIsInvalid", "Message": "stale receipt"})),
            }
        }
        json!({"Successful": ok, "Failed": failed})
    }
}

/// The fake SQS (JSON protocol, by X-Amz-Target) and S3 (GetObject, path style).
#[derive(Clone, Debug)]
pub struct Fake(pub Arc<Mutex<Broker>>);

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Broker")
    }
}

fn response(status: u16, body: String) -> HttpResponse {
    HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body))
}

impl Fake {
    async fn answer(self, req: HttpRequest) -> HttpResponse {
        let target = req.headers().get("x-amz-target").map(str::to_string);
        let body: Value = req
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let Some(target) = target else {
            // S3 GetObject: http://s3.fake/<bucket>/<key>
            let path = req.uri().split('?').next().unwrap_or_default();
            let key = path.splitn(5, '/').nth(4).unwrap_or_default().to_string();
            let n = {
                let mut b = self.0.lock().unwrap();
                let n = b.fetches.entry(key.clone()).or_default();
                *n += 1;
                *n
            };
            if n == 1 && key == "k1" {
                tokio::time::sleep(STALL).await;
            }
            let object = self.0.lock().unwrap().objects.get(&key).cloned();
            return match object {
                Some(o) => response(200, o),
                None => response(404, "<Error><Code>NoSuchKey</Code></Error>".into()),
            };
        };
        let op = target.trim_start_matches("AmazonSQS.");
        match op {
            "ReceiveMessage" => {
                let max = body["MaxNumberOfMessages"].as_u64().unwrap_or(1) as usize;
                let visibility = body["VisibilityTimeout"].as_u64().unwrap();
                let wait = Duration::from_secs(body["WaitTimeSeconds"].as_u64().unwrap_or(0));
                let until = Instant::now() + wait;
                loop {
                    let got = self.0.lock().unwrap().receive(max, visibility);
                    if !got.is_empty() || Instant::now() >= until {
                        return response(200, json!({ "Messages": got }).to_string());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            "ChangeMessageVisibilityBatch" => {
                let mut b = self.0.lock().unwrap();
                if b.fail_extend {
                    return response(500, json!({"__type": "InternalError"}).to_string());
                }
                let out = b.entries(&body, |m, e| {
                    let secs = e["VisibilityTimeout"].as_u64().unwrap();
                    m.invisible_until = Some(Instant::now() + Duration::from_secs(secs));
                });
                response(200, out.to_string())
            }
            "DeleteMessageBatch" => {
                let mut b = self.0.lock().unwrap();
                let mut gone = Vec::new();
                let out = b.entries(&body, |m, _| {
                    m.invisible_until = None;
                    gone.push(m.id.clone());
                });
                b.queue.retain(|m| !gone.contains(&m.id));
                response(200, out.to_string())
            }
            "GetQueueAttributes" => {
                let b = self.0.lock().unwrap();
                let now = Instant::now();
                let busy = b.queue.iter().filter(|m| b.in_flight(m, now)).count();
                let attrs = json!({"ApproximateNumberOfMessages": (b.queue.len() - busy).to_string(),
                    "ApproximateNumberOfMessagesNotVisible": busy.to_string()});
                response(200, json!({ "Attributes": attrs }).to_string())
            }
            other => panic!("the fake SQS does not know {other}"),
        }
    }

    pub fn client(&self) -> SharedHttpClient {
        let fake = self.clone();
        http_client_fn(move |_, _| SharedHttpConnector::new(fake.clone()))
    }
}

impl HttpConnector for Fake {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let fake = self.clone();
        HttpConnectorFuture::new(async move { Ok(fake.answer(request).await) })
    }
}
