//! The emulator's shared state: the data store, the test levers' settings and counters, the
//! push id generator, and the feed of writes that event streams follow. Every read and write of
//! the store happens under its one lock, so a conditional check and its write are atomic with
//! respect to every other write; writes are published on `events` under that lock, in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use super::security::RulesSet;
use super::store::Store;
use super::trim::Trim;
use crate::rtdb::PushIdGenerator;

pub struct State {
    pub store: Mutex<Store>,
    /// Security Rules per namespace.
    pub rules: Mutex<RulesSet>,
    pub levers: Mutex<Levers>,
    pub push_ids: Mutex<PushIdGenerator>,
    pub events: broadcast::Sender<Arc<WriteEvent>>,
    pub shutdown: watch::Receiver<bool>,
    /// When to give freed memory back to the system.
    pub trim: Trim,
}

impl State {
    pub fn new(store: Store, shutdown: watch::Receiver<bool>) -> Self {
        State {
            store: Mutex::new(store),
            rules: Mutex::new(RulesSet::default()),
            levers: Mutex::new(Levers::default()),
            push_ids: Mutex::new(PushIdGenerator::new()),
            events: broadcast::channel(4096).0,
            shutdown,
            trim: Trim::default(),
        }
    }
    pub(super) fn levers(&self) -> MutexGuard<'_, Levers> {
        self.levers.lock().expect("levers lock")
    }
    pub(super) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().expect("store lock")
    }
    pub(super) fn rules(&self) -> MutexGuard<'_, RulesSet> {
        self.rules.lock().expect("rules lock")
    }
}

/// Resolves once the emulator is stopping (at once if it already is).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// One write, as stored (data already prepared and resolved).
#[derive(Debug, Clone)]
pub enum WriteEvent {
    /// The value at `path` was replaced by `data` (null = deleted).
    Put {
        ns: String,
        path: Vec<String>,
        data: Value,
    },
    /// A multi-path update at `path`: (original key, its segments relative to `path`, data).
    Patch {
        ns: String,
        path: Vec<String>,
        entries: Vec<(String, Vec<String>, Value)>,
    },
}

// Test-lever settings and request counters (the HTTP interface is in `levers` and `mod.rs`).

/// Namespace key for deny rules that apply to every namespace.
pub const ALL_NAMESPACES: &str = "*";
pub const DEFAULT_KEEPALIVE_MS: u64 = 30_000;
/// The service refuses reads whose response would pass 256 MB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// How an injected fault looks to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The connection is closed without an answer.
    Drop,
    /// 500 `{"error": ...}`.
    ServerError,
}

impl FaultMode {
    pub fn parse(s: Option<&str>) -> Option<FaultMode> {
        match s {
            None | Some("drop") => Some(FaultMode::Drop),
            Some("500") => Some(FaultMode::ServerError),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            FaultMode::Drop => "drop",
            FaultMode::ServerError => "500",
        }
    }
}

/// An outage on one namespace or all (the `outage` lever).
#[derive(Debug, Clone, Copy)]
pub struct Outage {
    pub until: std::time::Instant,
    pub mode: FaultMode,
}

/// "Write applied but response lost": which writes (PUT, PATCH, POST, DELETE on data paths)
/// are applied and then answered with `mode` instead of their response.
#[derive(Debug, Clone)]
pub struct LostResponses {
    /// Writes to let through first.
    pub skip: u64,
    /// How many writes lose their response after that (`None`: all).
    pub count: Option<u64>,
    /// Each candidate write loses its response with this probability.
    pub probability: f64,
    pub mode: FaultMode,
    /// Responses lost so far.
    pub lost: u64,
}

/// Refused writes kept in the counts (the rest only counted).
pub const MAX_REFUSED: usize = 100;

/// A write the database refused: its method, path (`/a/b`) and status (401: denied by the
/// rules), and why when the status alone does not say (`reason`: `"tooBig"` for
/// `WRITE_TOO_BIG`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    pub method: String,
    pub path: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// The `reason` of a write refused as too big for one request.
pub const TOO_BIG_REASON: &str = "tooBig";

#[derive(Debug)]
pub struct Levers {
    pub total: u64,
    pub by_method: BTreeMap<String, u64>,
    pub by_path: BTreeMap<String, u64>,
    /// Store work (binary-search steps and entries moved) done by data requests: a stable
    /// measure of their cost.
    pub store_steps: u64,
    /// Connections that carried a data request (keep-alive reuse shows here).
    pub connections: u64,
    /// Reads answered with a body streamed from a snapshot (`super::streamed`).
    pub streamed_reads: u64,
    /// Writes the database refused (a Security Rules denial, a bad request; never a 412): the
    /// first `MAX_REFUSED` kept, all counted.
    pub refused: Vec<Refused>,
    pub refused_total: u64,
    /// Writes by whether they asked for no triggers (`disableTriggers`).
    pub triggers: super::triggers::TriggerCounts,
    /// Each namespace's default write-size limit and the budgets (`write-size-limit`).
    pub write_size: super::write_size::WriteSizeLimits,
    /// ns (or `*`) -> denied paths (as segments).
    pub deny: HashMap<String, Vec<Vec<String>>>,
    /// ns (or `*`) -> the only subtrees a request may touch (allow-list rules).
    pub allow: HashMap<String, Vec<Vec<String>>>,
    /// When not empty, a data request must carry `Authorization: Bearer <one of these>`.
    pub required_tokens: Vec<String>,
    /// The last `auth_variable_override` a data request carried (JSON), for tests.
    pub last_override: Option<Value>,
    pub latency_ms: u64,
    pub unavailable_probability: f64,
    pub clock_offset_ms: i64,
    pub keepalive_ms: u64,
    /// Event streams refused with this HTTP status (a proxy that does not pass them).
    pub stream_refusal: Option<u16>,
    /// Event streams opened from then on are closed by the server after this long.
    pub stream_close_after_ms: Option<u64>,
    /// Reads whose response would be larger are refused (as the service does).
    pub max_response_bytes: usize,
    /// Plain reads whose JSON passes this many bytes are streamed from a snapshot
    /// (`super::streamed`).
    pub stream_above_bytes: usize,
    /// Outages per namespace (`*`: every namespace): until its end, every data request there
    /// fails per its mode before doing anything.
    pub outages: HashMap<String, Outage>,
    pub lost_responses: Option<LostResponses>,
    /// The next requests matching it wait before they are served (`delay`).
    pub delay: Option<super::delay::Delay>,
    /// Every data request, while on (`journal`).
    pub journal: super::journal::Journal,
}

impl Default for Levers {
    fn default() -> Self {
        Levers {
            total: 0,
            by_method: BTreeMap::new(),
            by_path: BTreeMap::new(),
            store_steps: 0,
            connections: 0,
            streamed_reads: 0,
            refused: Vec::new(),
            refused_total: 0,
            triggers: Default::default(),
            write_size: Default::default(),
            deny: HashMap::new(),
            allow: HashMap::new(),
            required_tokens: Vec::new(),
            last_override: None,
            latency_ms: 0,
            unavailable_probability: 0.0,
            clock_offset_ms: 0,
            keepalive_ms: DEFAULT_KEEPALIVE_MS,
            stream_refusal: None,
            stream_close_after_ms: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            stream_above_bytes: super::streamed::DEFAULT_STREAM_ABOVE_BYTES,
            outages: HashMap::new(),
            lost_responses: None,
            delay: None,
            journal: Default::default(),
        }
    }
}

impl Levers {
    pub fn count(&mut self, method: &str, path: &str) {
        self.total += 1;
        *self.by_method.entry(method.to_string()).or_default() += 1;
        *self.by_path.entry(format!("{method} {path}")).or_default() += 1;
    }

    pub fn streams_json(&self) -> Value {
        serde_json::json!({ "refuse": self.stream_refusal, "closeAfterMs": self.stream_close_after_ms })
    }

    pub fn reset_counts(&mut self) {
        self.total = 0;
        self.connections = 0;
        self.by_method.clear();
        self.by_path.clear();
        self.store_steps = 0;
        self.refused.clear();
        self.refused_total = 0;
        self.triggers = Default::default();
        self.streamed_reads = 0;
    }

    /// A write answered `status` (4xx, not 412) for `reason`: kept while there is room, always
    /// counted.
    pub fn refuse(&mut self, method: &str, path: &str, status: u16, reason: Option<&'static str>) {
        self.refused_total += 1;
        if self.refused.len() < MAX_REFUSED {
            self.refused.push(Refused {
                method: method.to_string(),
                path: path.to_string(),
                status,
                reason,
            });
        }
    }

    pub fn counts_json(&self) -> Value {
        json!({ "total": self.total, "byMethod": self.by_method, "byPath": self.by_path, "storeSteps": self.store_steps, "connections": self.connections,
                "streamedReads": self.streamed_reads, "refused": self.refused, "refusedTotal": self.refused_total, "triggers": self.triggers.json() })
    }

    /// A request at `segs` in `ns` is denied when a deny rule is at, under or over it (reading
    /// over a denied node would reveal it), or when allow rules exist for `ns` and the request is
    /// not at or under one of them (a read over an allowed node, the root included, is denied).
    pub fn is_denied(&self, ns: &str, segs: &[String]) -> bool {
        let rules = |map: &'_ HashMap<String, Vec<Vec<String>>>| -> Vec<Vec<String>> {
            [ns, ALL_NAMESPACES]
                .iter()
                .filter_map(|n| map.get(*n))
                .flatten()
                .cloned()
                .collect()
        };
        let denied = rules(&self.deny)
            .iter()
            .any(|rule| rule.starts_with(segs) || segs.starts_with(rule));
        let allow = rules(&self.allow);
        denied || (!allow.is_empty() && !allow.iter().any(|a| segs.starts_with(a)))
    }

    pub fn deny_json(&self) -> Value {
        rules_json(&self.deny)
    }

    pub fn allow_json(&self) -> Value {
        rules_json(&self.allow)
    }

    /// Whether a request with this `Authorization` header value may proceed.
    pub fn token_accepted(&self, authorization: Option<&str>) -> bool {
        self.required_tokens.is_empty()
            || authorization
                .and_then(|a| a.strip_prefix("Bearer "))
                .is_some_and(|t| self.required_tokens.iter().any(|r| r == t))
    }

    /// What `GET /.emulator/auth` shows (how many tokens, never which).
    pub fn auth_json(&self) -> Value {
        json!({ "tokens": self.required_tokens.len(), "lastOverride": self.last_override })
    }

    /// The fault of an outage on `ns` (its own, else every namespace's), while one is on.
    pub fn outage(&self, ns: &str) -> Option<FaultMode> {
        let now = std::time::Instant::now();
        [ns, ALL_NAMESPACES]
            .iter()
            .filter_map(|n| self.outages.get(*n))
            .find(|o| now < o.until)
            .map(|o| o.mode)
    }

    /// `{"remainingMs", "mode"}` of the every-namespace outage, and `namespaces`: each
    /// namespace's own.
    pub fn outage_json(&self) -> Value {
        let now = std::time::Instant::now();
        let one = |o: Option<&Outage>| {
            let left = o
                .map(|o| o.until.saturating_duration_since(now).as_millis() as u64)
                .unwrap_or(0);
            let mode = o.map(|o| o.mode).unwrap_or(FaultMode::Drop);
            json!({ "remainingMs": left, "mode": mode.name() })
        };
        let mut all = one(self.outages.get(ALL_NAMESPACES));
        let namespaces: serde_json::Map<String, Value> = self
            .outages
            .iter()
            .filter(|(ns, o)| ns.as_str() != ALL_NAMESPACES && now < o.until)
            .map(|(ns, o)| (ns.clone(), one(Some(o))))
            .collect();
        all["namespaces"] = Value::Object(namespaces);
        all
    }

    /// Whether this write loses its response (and how), per the lost-responses lever.
    pub fn lose_response(&mut self) -> Option<FaultMode> {
        let l = self.lost_responses.as_mut()?;
        if l.skip > 0 {
            l.skip -= 1;
            return None;
        }
        if l.count == Some(0) || rand::random::<f64>() >= l.probability {
            return None;
        }
        if let Some(c) = l.count.as_mut() {
            *c -= 1;
        }
        l.lost += 1;
        Some(l.mode)
    }

    pub fn lost_responses_json(&self) -> Value {
        match &self.lost_responses {
            None => json!({ "lost": 0 }),
            Some(l) => json!({
                "skip": l.skip, "count": l.count, "probability": l.probability,
                "mode": l.mode.name(), "lost": l.lost,
            }),
        }
    }

    /// The server's clock in ms since the epoch (wall clock plus the offset lever).
    pub fn now_ms(&self) -> i64 {
        crate::rtdb::Clock::now_ms(&crate::rtdb::SystemClock) + self.clock_offset_ms
    }
}

fn rules_json(map: &HashMap<String, Vec<Vec<String>>>) -> Value {
    let rules: BTreeMap<&String, Vec<String>> = map
        .iter()
        .map(|(ns, paths)| (ns, paths.iter().map(|p| p.join("/")).collect()))
        .collect();
    json!({ "rules": rules })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::emulator::test_segs as segs;

    #[test]
    fn allow_rules_grant_a_subtree_only() {
        let mut l = Levers::default();
        l.allow.insert("db".into(), vec![segs("app")]);
        for p in ["app", "app/schema_version", "app/migrations/_lock"] {
            assert!(!l.is_denied("db", &segs(p)), "{p}");
        }
        for p in ["", "other", "apps", "migrations/_lock"] {
            assert!(l.is_denied("db", &segs(p)), "{p}");
        }
        assert!(
            !l.is_denied("otherdb", &segs("")),
            "other namespaces unaffected"
        );
        // Deny rules still apply inside an allowed subtree.
        l.deny
            .insert("db".into(), vec![segs("app/migrations/_lock")]);
        assert!(l.is_denied("db", &segs("app/migrations")));
        assert!(!l.is_denied("db", &segs("app/schema_version")));
    }

    #[test]
    fn required_tokens() {
        let mut l = Levers::default();
        assert!(l.token_accepted(None) && l.token_accepted(Some("Bearer owner")));
        l.required_tokens = vec!["t1".into()];
        assert!(l.token_accepted(Some("Bearer t1")));
        for a in [
            None,
            Some("Bearer owner"),
            Some("t1"),
            Some("Bearer t10"),
            Some("Basic t1"),
        ] {
            assert!(!l.token_accepted(a), "{a:?}");
        }
        assert_eq!(l.auth_json()["tokens"], 1);
    }

    #[test]
    fn deny_at_under_over() {
        let mut l = Levers::default();
        l.deny.insert("db".into(), vec![segs("migrations/_lock")]);
        for p in [
            "migrations/_lock",
            "migrations/_lock/owner",
            "migrations",
            "",
        ] {
            assert!(l.is_denied("db", &segs(p)), "{p}");
        }
        for p in ["migrations/other", "other", "migrations/_lockx"] {
            assert!(!l.is_denied("db", &segs(p)), "{p}");
        }
        assert!(!l.is_denied("otherdb", &segs("migrations/_lock")));
        l.deny.insert(ALL_NAMESPACES.into(), vec![segs("x")]);
        assert!(l.is_denied("otherdb", &segs("x/y")));
    }

    #[test]
    fn counts() {
        let mut l = Levers::default();
        l.count("GET", "/a");
        l.count("GET", "/a");
        l.count("PUT", "/b");
        l.refuse("PUT", "/b", 401, None);
        l.triggers.count("PUT", "/b", true);
        assert_eq!(
            l.counts_json(),
            json!({"total": 3, "byMethod": {"GET": 2, "PUT": 1}, "byPath": {"GET /a": 2, "PUT /b": 1}, "storeSteps": 0, "connections": 0,
                   "streamedReads": 0, "refused": [{"method": "PUT", "path": "/b", "status": 401}], "refusedTotal": 1,
                   "triggers": {"disabled": 1, "enabled": 0, "disabledByPath": {"PUT /b": 1}}})
        );
        l.reset_counts();
        assert_eq!(l.counts_json()["total"], 0);
        assert_eq!(l.counts_json()["refusedTotal"], 0);
        assert_eq!(l.counts_json()["triggers"]["disabled"], 0);
    }
}
