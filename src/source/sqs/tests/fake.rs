//! A scripted FIFO queue and offload bucket at the consumer's seam ([`QueueApi`], [`Offloads`]),
//! in tokio time (pauseable). Like SQS FIFO, ReceiveMessage long-polls, hands out at most one
//! message per group per call and nothing of a group while one of its messages is in flight; a
//! receipt handle is valid while it is its message's latest and the message is still in flight.
//! The script can stall an object's first fetch, fail every visibility extension, throttle
//! a number of receives and deletes, and fix a long poll's blocked groups when it begins (moto).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::error::{Error, Kind, Result};
use crate::source::sqs::api::{Attributes, Failed, Offloads, QueueApi};

pub struct Msg {
    pub id: String,
    pub group: String,
    pub body: String,
    pub receipt: Option<String>,
    pub invisible_until: Option<Instant>,
    pub receives: u32,
}

impl Msg {
    pub fn new(id: &str, group: &str, body: String) -> Msg {
        Msg {
            id: id.into(),
            group: group.into(),
            body,
            receipt: None,
            invisible_until: None,
            receives: 0,
        }
    }
}

#[derive(Default)]
pub struct Broker {
    pub queue: Vec<Msg>,
    pub receipts: u64,
    /// ChangeMessageVisibilityBatch answers a server error (extensions never take effect).
    pub fail_extend: bool,
    /// Fetches of each S3 key so far.
    pub fetches: HashMap<String, u32>,
    pub objects: HashMap<String, String>,
    /// The first fetch of these keys takes this long.
    pub stall: HashMap<String, Duration>,
    /// Receives and deletes still to answer with a throttle.
    pub throttle_receives: u32,
    pub throttle_deletes: u32,
    /// Visibility extensions that took effect, and those that came after the receipt expired.
    pub extended: u32,
    pub late_extends: u32,
    /// Receive count of every message at the time it was deleted, by id, in deletion order.
    pub deleted: Vec<(String, u32)>,
    /// ReceiveMessage calls answered.
    pub receive_calls: u32,
    /// How often a long poll looks for messages (100 ms when unset).
    pub poll: Option<Duration>,
    /// Like moto: a long poll keeps the groups blocked when it began blocked to the end.
    pub fixed_groups: bool,
    /// Long polls begun while a group was blocked (with `fixed_groups`, blind to its release).
    pub blind_polls: u32,
}

fn throttled(op: &str) -> Error {
    Error::new(Kind::Throttled, format!("{op}: ThrottlingException: Rate exceeded"))
}

impl Broker {
    fn in_flight(&self, m: &Msg, now: Instant) -> bool {
        m.invisible_until.is_some_and(|t| t > now)
    }

    /// Groups with a message in flight.
    fn blocked(&self) -> Vec<String> {
        let now = Instant::now();
        self.queue
            .iter()
            .filter(|m| self.in_flight(m, now))
            .map(|m| m.group.clone())
            .collect()
    }

    /// One message per group per call at most (SQS may hand out fewer than it could), none of a
    /// group blocked now or in `also`.
    fn receive(&mut self, max: usize, visibility: u64, also: &[String]) -> Vec<Message> {
        let now = Instant::now();
        let mut blocked = self.blocked();
        blocked.extend_from_slice(also);
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
            out.push(
                Message::builder()
                    .message_id(&m.id)
                    .set_receipt_handle(m.receipt.clone())
                    .body(&m.body)
                    .attributes(
                        MessageSystemAttributeName::ApproximateReceiveCount,
                        m.receives.to_string(),
                    )
                    .build(),
            );
        }
        out
    }

    /// Applies `f` to the in-flight message of every valid receipt; the entries that failed.
    fn entries(&mut self, receipts: &[String], mut f: impl FnMut(&mut Msg)) -> Vec<Failed> {
        let now = Instant::now();
        let mut failed = Vec::new();
        for handle in receipts {
            let at = self.queue.iter().position(|m| m.receipt.as_ref() == Some(handle));
            match at.filter(|i| self.in_flight(&self.queue[*i], now)) {
                Some(i) => f(&mut self.queue[i]),
                None => failed.push(Failed {
                    code: "ReceiptHandleIsInvalid".into(),
                    message: Some("stale receipt".into()),
                }),
            }
        }
        failed
    }
}

/// The fake queue and bucket, shared with the test that scripts and inspects them.
#[derive(Clone)]
pub struct Fake(pub Arc<Mutex<Broker>>);

impl QueueApi for Fake {
    fn receive<'a>(&'a self, _: &'a str, visibility: i32, wait: i32) -> BoxFuture<'a, Result<Vec<Message>>> {
        Box::pin(async move {
            {
                let mut b = self.0.lock().unwrap();
                if b.throttle_receives > 0 {
                    b.throttle_receives -= 1;
                    return Err(throttled("ReceiveMessage"));
                }
            }
            let until = Instant::now() + Duration::from_secs(wait as u64);
            let fixed = {
                let mut b = self.0.lock().unwrap();
                let blocked = b.blocked();
                b.blind_polls += u32::from(wait > 0 && !blocked.is_empty());
                if b.fixed_groups { blocked } else { Vec::new() }
            };
            loop {
                let (got, poll) = {
                    let mut b = self.0.lock().unwrap();
                    (b.receive(10, visibility as u64, &fixed), b.poll)
                };
                if !got.is_empty() || Instant::now() >= until {
                    self.0.lock().unwrap().receive_calls += 1;
                    return Ok(got);
                }
                tokio::time::sleep(poll.unwrap_or(Duration::from_millis(100))).await;
            }
        })
    }

    fn change_visibility<'a>(&'a self, _: &'a str, receipts: &'a [String], secs: i32) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut b = self.0.lock().unwrap();
            if b.fail_extend {
                return Err(Error::retryable("ChangeMessageVisibilityBatch: InternalError"));
            }
            let mut n = 0;
            let failed = b.entries(receipts, |m| {
                m.invisible_until = Some(Instant::now() + Duration::from_secs(secs as u64));
                n += 1;
            });
            b.extended += n;
            b.late_extends += failed.len() as u32;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, _: &'a str, receipts: &'a [String]) -> BoxFuture<'a, Result<Vec<Failed>>> {
        Box::pin(async move {
            let mut b = self.0.lock().unwrap();
            if b.throttle_deletes > 0 {
                b.throttle_deletes -= 1;
                return Err(throttled("DeleteMessageBatch"));
            }
            let mut gone = Vec::new();
            let failed = b.entries(receipts, |m| {
                m.invisible_until = None;
                gone.push((m.id.clone(), m.receives));
            });
            b.queue.retain(|m| !gone.iter().any(|(id, _)| *id == m.id));
            b.deleted.extend(gone);
            Ok(failed)
        })
    }

    fn attributes<'a>(&'a self, _: &'a str, _: &'a [QueueAttributeName]) -> BoxFuture<'a, Result<Attributes>> {
        Box::pin(async move {
            let b = self.0.lock().unwrap();
            let now = Instant::now();
            let busy = b.queue.iter().filter(|m| b.in_flight(m, now)).count();
            Ok(Attributes::from([
                (
                    QueueAttributeName::ApproximateNumberOfMessages,
                    (b.queue.len() - busy).to_string(),
                ),
                (
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                    busy.to_string(),
                ),
            ]))
        })
    }

    fn queue_url<'a>(&'a self, name: &'a str, _: &'a str) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move { Err(Error::fatal(format!("the fake knows no queue {name}"))) })
    }
}

impl Offloads for Fake {
    fn get<'a>(&'a self, _: &'a str, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let stall = {
                let mut b = self.0.lock().unwrap();
                let n = b.fetches.entry(key.to_string()).or_default();
                *n += 1;
                let first = *n == 1;
                b.stall.get(key).copied().filter(|_| first)
            };
            if let Some(d) = stall {
                tokio::time::sleep(d).await;
            }
            let object = self.0.lock().unwrap().objects.get(key).cloned();
            object
                .map(String::into_bytes)
                .ok_or_else(|| Error::fatal(format!("GetObject: NoSuchKey: {key}")))
        })
    }
}
