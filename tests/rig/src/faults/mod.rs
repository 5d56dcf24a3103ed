//! A fault-injecting HTTP/1.1 proxy for the live tests: it sits between `ferry` and DynamoDB
//! Local and makes the endpoint misbehave the way AWS does (throttles, 5xx, dropped connections,
//! slow answers, partial BatchWriteItem results, outages), under rules the test changes while
//! `ferry` runs. It counts every fault it injects, so a test can assert the fault really happened.
//!
//! DynamoDB and DynamoDB Streams share the endpoint; a request's operation comes from its
//! `X-Amz-Target` header (`DynamoDB_20120810.BatchWriteItem`, `DynamoDBStreams_20120810.GetRecords`).
//! Requests without one (Lambda, S3...) are forwarded untouched and never faulted.
//!
//! Dev-only: used by the live fault tests, never by the daemon.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub mod proxy;

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

pub(crate) struct State {
    rules: Vec<Rule>,
    /// `Some(t)`: an outage until `t`.
    outage_until: Option<Instant>,
    injected: HashMap<(Fault, String), u64>,
    pub(crate) forwarded: HashMap<String, u64>,
    rng: StdRng,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Faults {
        Faults(Arc::new(Mutex::new(State {
            rules: Vec::new(),
            outage_until: None,
            injected: HashMap::new(),
            forwarded: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
        })))
    }
    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
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
    /// How long the current outage still lasts (zero when there is none).
    pub fn outage_left(&self) -> Duration {
        self.state()
            .outage_until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(Instant::now()))
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
    /// Requests forwarded upstream, by operation.
    pub fn forwarded_all(&self) -> std::collections::BTreeMap<String, u64> {
        self.state().forwarded.iter().map(|(op, n)| (op.clone(), *n)).collect()
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

    pub(crate) fn count(&self, fault: Fault, op: &str) {
        *self.state().injected.entry((fault, op.to_string())).or_default() += 1;
    }
    /// The fault for one request, if any (consumes a `Next` rule's turn).
    pub(crate) fn pick(&self, service: Service, op: &str) -> Option<(Fault, Duration)> {
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
