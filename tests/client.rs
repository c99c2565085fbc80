//! Integration tests of the RTDB REST client: against the embedded emulator, and against tiny
//! scripted HTTP servers (a fake database that records every request, a fake OAuth2 token
//! endpoint) for what the emulator cannot inject (500s, dropped connections, headers).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{answer, fake_server, lever, with_etag, Answer};
use futures_util::StreamExt;
use msr_firebase::emulator::Emulator;
use msr_firebase::rtdb::auth::Env;
use msr_firebase::rtdb::{
    Auth, CasOutcome, Client, ClientOptions, DatabaseUrl, MissingIndex, OrderBy, PageQuery, Query,
    RetryPolicy, StreamEvent, SystemClock, Unindexed, Versioned, WriteGate, NULL_ETAG,
};
use msr_firebase::ErrorCode;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// helpers

fn fast_retries(n: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries: n,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        window: None,
    }
}

fn client_with(url: DatabaseUrl, auth: Auth, retry: RetryPolicy) -> Client {
    Client::new(ClientOptions {
        url,
        auth,
        retry,
        request_timeout: Duration::from_secs(3),
        connect_timeout: None,
        on_retry: None,
        clock: Arc::new(SystemClock),
        auth_variable_override: None,
    })
    .expect("client")
}

fn client(url: &str, retries: u32) -> Client {
    client_with(
        DatabaseUrl::parse(url).expect("url"),
        Auth::EmulatorOwner,
        fast_retries(retries),
    )
}

async fn emulator() -> (Emulator, String) {
    let emu = common::emulator().await;
    let url = format!("{}?ns=test-client", emu.url());
    (emu, url)
}

async fn request_total(emu: &Emulator) -> u64 {
    let v = lever(emu, reqwest::Method::GET, "requests", None).await;
    v["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("request counts: {v}"))
}

async fn reset_counts(emu: &Emulator) {
    common::reset_counts(emu).await;
    assert_eq!(
        request_total(emu).await,
        0,
        "reset did not clear the counts"
    );
}

// ---------------------------------------------------------------------------------------------
// Queries refused for want of an index (`Index not defined`)

/// Children whose `v` (and, in `vals`, whose values) cover every type in RTDB's order, with ties
/// and integer-like keys; the same data in `indexed/` (rules with `.indexOn`) and `bare/`
/// (none), so every query can be asked of both.
fn mixed() -> (Value, Value) {
    let items = json!({
        "a": {"w": 1}, "b": {"v": false}, "c": {"v": true}, "d": {"v": 1}, "e": {"v": 1.5},
        "f": {"v": -3}, "g": {"v": 1}, "h": {"v": "a"}, "i": {"v": "m"}, "j": {"v": "a"},
        "k": {"v": {"x": 1}}, "l": {"v": {"y": 2}}, "1": {"v": 1}, "10": {"v": "a"},
        "2": {"v": true}, "m": 5, "n": "a", "o": true, "p": {"v": 0}, "q": {"v": ""},
        "r": {"v": false}, "s": {"v": [1, 2]}, "-1": {"v": -3}, "t": {"v": 1e20}
    });
    let vals = json!({
        "a": 1, "b": "x", "c": true, "d": false, "e": {"z": 1}, "f": 1, "g": -2.5, "h": "a",
        "10": 1, "2": "x", "i": 0, "j": {"y": 0}, "k": "", "l": true, "-5": false, "m": 1.5
    });
    (items, vals)
}

const MIXED_RULES: &str = r#"{"rules": {".read": true, ".write": true,
    "indexed": {"items": {".indexOn": ["v"]}, "vals": {".indexOn": ".value"}, "big": {".indexOn": ["v"]}}}}"#;

/// A client answering unindexed queries as `fallback` says; the notices it gave.
fn with_policy(c: &Client, fallback: bool) -> (Client, Arc<std::sync::Mutex<Vec<MissingIndex>>>) {
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = heard.clone();
    let policy = Unindexed::new(
        fallback,
        Arc::new(move |m: &MissingIndex| h.lock().unwrap().push(m.clone())),
    );
    (c.with_unindexed(policy), heard)
}

async fn mixed_emulator() -> (Emulator, String, Client) {
    let (emu, url) = emulator().await;
    let c = client(&url, 0);
    let (items, vals) = mixed();
    for root in ["indexed", "bare"] {
        c.set(&format!("{root}/items"), &items).await.unwrap();
        c.set(&format!("{root}/vals"), &vals).await.unwrap();
    }
    emu.set_rules(
        Some("test-client"),
        msr_firebase::rules::Rules::parse(MIXED_RULES).unwrap(),
    );
    (emu, url, c)
}

#[tokio::test]
async fn unindexed_queries_answered_on_the_client_equal_the_indexed_ones_on_mixed_types() {
    let (emu, _url, owner) = mixed_emulator().await;
    let (c, heard) = with_policy(&owner, true);
    let bounds = [
        json!(null),
        json!(false),
        json!(true),
        json!(-3),
        json!(0),
        json!(1),
        json!(1.5),
        json!(""),
        json!("a"),
        json!("m"),
        json!("zz"),
    ];
    let limits: [(Option<u32>, Option<u32>); 6] = [
        (None, None),
        (Some(1), None),
        (Some(3), None),
        (None, Some(1)),
        (None, Some(3)),
        (Some(100), None),
    ];
    let mut queries: Vec<PageQuery> = Vec::new();
    for (first, last) in limits {
        let base = PageQuery {
            query: Query {
                limit_to_first: first,
                limit_to_last: last,
                ..Query::default()
            },
            ..PageQuery::default()
        };
        queries.push(base.clone());
        for b in &bounds {
            let mut q = base.clone();
            q.query.start_at = Some(b.clone());
            queries.push(q.clone());
            q.query.start_at = None;
            q.query.end_at = Some(b.clone());
            queries.push(q.clone());
            q.query.end_at = None;
            q.query.equal_to = Some(b.clone());
            queries.push(q.clone());
            q.query.equal_to = None;
            q.start_after = Some(b.clone());
            queries.push(q.clone());
            q.start_after = None;
            q.end_before = Some(b.clone());
            queries.push(q.clone());
        }
        for (lo, hi) in [(0, 10), (1, 5), (3, 8), (6, 6), (8, 2)] {
            let mut q = base.clone();
            q.query.start_at = Some(bounds[lo].clone());
            q.query.end_at = Some(bounds[hi].clone());
            queries.push(q.clone());
            q.query.start_at = None;
            q.start_after = Some(bounds[lo].clone());
            queries.push(q);
        }
    }
    let mut all = Vec::new();
    for (node, order) in [
        ("items", OrderBy::Child("v".into())),
        ("vals", OrderBy::Value),
    ] {
        for (i, q) in queries.iter().enumerate() {
            let mut q = q.clone();
            q.query.order_by = Some(order.clone());
            all.push((node, q, i % 10 == 0));
        }
    }
    let compared = all.len();
    let answers = futures_util::stream::iter(all.into_iter().map(|(node, q, pairs)| {
        let c = c.clone();
        async move {
            let indexed = c
                .query_page_raw(&format!("indexed/{node}"), &q)
                .await
                .unwrap_or_else(|e| panic!("indexed {node} {q:?}: {e}"));
            let local = c
                .query_page_raw(&format!("bare/{node}"), &q)
                .await
                .unwrap_or_else(|e| panic!("bare {node} {q:?}: {e}"));
            assert_eq!(local.keys, indexed.keys, "{node} {q:?}");
            let parse = |j: &str| serde_json::from_str::<Value>(j).unwrap();
            assert_eq!(parse(&local.json), parse(&indexed.json), "{node} {q:?}");
            if pairs {
                // The same answer as values (`query_page`).
                let values = c.query_page(&format!("bare/{node}"), &q).await.unwrap();
                assert_eq!(
                    values.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
                    indexed.keys
                );
            }
            !indexed.keys.is_empty()
        }
    }))
    .buffer_unordered(8)
    .collect::<Vec<bool>>()
    .await;
    let non_empty = answers.iter().filter(|x| **x).count();
    assert!(
        compared > 700 && non_empty > compared / 2,
        "{compared} {non_empty}"
    );
    // One notice per location and ordering, however many queries.
    let mut heard = heard.lock().unwrap().clone();
    heard.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(
        heard,
        vec![
            MissingIndex {
                path: "/bare/items".into(),
                child: "v".into()
            },
            MissingIndex {
                path: "/bare/vals".into(),
                child: ".value".into()
            }
        ]
    );
    emu.stop().await.unwrap();
}

#[tokio::test]
async fn an_unindexed_query_costs_the_refusal_and_one_read_or_its_pages_when_too_big() {
    let (emu, _url, owner) = mixed_emulator().await;
    let (c, heard) = with_policy(&owner, true);
    let by_v = |eq: Value| PageQuery {
        query: Query {
            order_by: Some(OrderBy::Child("v".into())),
            equal_to: Some(eq),
            ..Query::default()
        },
        ..PageQuery::default()
    };
    reset_counts(&emu).await;
    let page = c
        .query_page_raw("bare/items", &by_v(json!(1)))
        .await
        .unwrap();
    assert_eq!(page.keys, ["1", "d", "g"]);
    // The refused query, then one GET of the node.
    assert_eq!(request_total(&emu).await, 2);
    assert_eq!(heard.lock().unwrap().len(), 1);

    // A node the database will not send in one response: read by key in pages.
    let big: serde_json::Map<String, Value> = (0..250)
        .map(|i| {
            (
                format!("k{i:04}"),
                json!({"v": i % 7, "pad": "x".repeat(30)}),
            )
        })
        .collect();
    let big = Value::Object(big);
    for root in ["indexed", "bare"] {
        owner.set(&format!("{root}/big"), &big).await.unwrap();
    }
    let whole = big.to_string().len();
    assert!(whole > 12_000, "{whole}");
    lever(
        &emu,
        reqwest::Method::PUT,
        "limits",
        Some(json!({"responseBytes": 10_000})),
    )
    .await;
    let mut want = by_v(json!(3));
    want.query.limit_to_last = Some(20);
    let indexed = c.query_page_raw("indexed/big", &want).await.unwrap();
    assert_eq!(indexed.keys.len(), 20);
    reset_counts(&emu).await;
    let local = c.query_page_raw("bare/big", &want).await.unwrap();
    assert_eq!(local.keys, indexed.keys);
    assert_eq!(
        serde_json::from_str::<Value>(&local.json).unwrap(),
        serde_json::from_str::<Value>(&indexed.json).unwrap()
    );
    // The refused query, the GET refused as too big, a first page of 128 children by key, then
    // the other 122 in one page sized from the first.
    assert_eq!(request_total(&emu).await, 4);
    assert_eq!(
        heard.lock().unwrap().last().map(|m| m.path.clone()),
        Some("/bare/big".to_string())
    );
    emu.stop().await.unwrap();
}

#[tokio::test]
async fn unindexed_queries_fail_naming_the_index_under_the_error_policy_or_no_policy() {
    let (emu, _url, owner) = mixed_emulator().await;
    let (c, heard) = with_policy(&owner, false);
    let q = PageQuery {
        query: Query {
            order_by: Some(OrderBy::Child("v".into())),
            equal_to: Some(json!(1)),
            ..Query::default()
        },
        ..PageQuery::default()
    };
    reset_counts(&emu).await;
    let e = c.query_page_raw("bare/items", &q).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(
        e.message
            .contains("add \".indexOn\": \"v\" at /bare/items to the rules")
            && e.message.contains("queries.unindexed is 'error'"),
        "{}",
        e.message
    );
    assert_eq!(request_total(&emu).await, 1, "no read after the refusal");
    assert!(heard.lock().unwrap().is_empty());
    let e = owner.query_page("bare/items", &q).await.unwrap_err();
    assert!(
        e.message.contains("add \".indexOn\": \"v\" at /bare/items"),
        "{}",
        e.message
    );
    // `$key` needs no index.
    let by_key = PageQuery {
        query: Query {
            order_by: Some(OrderBy::Key),
            limit_to_first: Some(2),
            ..Query::default()
        },
        ..PageQuery::default()
    };
    assert_eq!(
        c.query_page_raw("bare/items", &by_key).await.unwrap().keys,
        ["-1", "1"]
    );
    emu.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// URL forms against the emulator

#[tokio::test]
async fn every_emulator_url_form_reaches_its_namespace() {
    let (emu, _) = emulator().await;
    let forms = [
        (
            DatabaseUrl::parse(&format!("{}?ns=form-a", emu.url())).unwrap(),
            "form-a",
        ),
        (
            DatabaseUrl::parse(&format!("{}/?ns=form-b", emu.url())).unwrap(),
            "form-b",
        ),
        (
            DatabaseUrl::for_emulator_host(&emu.host_port(), Some("https://form-c.firebaseio.com"))
                .unwrap(),
            "form-c",
        ),
        (
            DatabaseUrl::for_emulator_host(
                &emu.host_port(),
                Some("https://form-d.europe-west1.firebasedatabase.app"),
            )
            .unwrap(),
            "form-d",
        ),
        (
            DatabaseUrl::for_emulator_host(&emu.host_port(), Some("http://elsewhere:1?ns=form-e"))
                .unwrap(),
            "form-e",
        ),
    ];
    for (url, ns) in &forms {
        assert!(url.emulator);
        let c = client_with(url.clone(), Auth::EmulatorOwner, fast_retries(0));
        c.set("where", &json!(ns)).await.unwrap();
        assert_eq!(c.get("where").await.unwrap(), json!(ns));
    }
    let export = emu.export();
    for (_, ns) in &forms {
        assert_eq!(export[*ns]["where"], json!(ns), "export: {export}");
    }
    emu.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// paths

#[tokio::test]
async fn bad_keys_are_rejected_before_any_request() {
    let (emu, url) = emulator().await;
    let c = client(&url, 0);
    reset_counts(&emu).await;
    let long = "k".repeat(769);
    let deep = vec!["d"; 40].join("/");
    let bad = [
        "a.b",
        "a/$x",
        "x/#",
        "a[0]",
        "b]",
        "ctl\u{1}",
        long.as_str(),
        deep.as_str(),
        "1.2.3",
    ];
    for p in bad {
        let errs = vec![
            c.get(p).await.err(),
            c.get_versioned(p).await.err(),
            c.get_shallow(p).await.err(),
            c.query(
                p,
                &Query {
                    order_by: Some(OrderBy::Key),
                    ..Default::default()
                },
            )
            .await
            .err(),
            c.set(p, &json!(1)).await.err(),
            c.set_echo(p, &json!(1)).await.err(),
            c.put_if_match(p, &json!(1), NULL_ETAG).await.err(),
            c.delete_if_match(p, NULL_ETAG).await.err(),
            c.push(p, &json!(1)).await.err(),
            c.update(p, &serde_json::Map::new()).await.err(),
            c.remove(p).await.err(),
            c.stream(p).await.err(),
        ];
        for e in errs {
            let e = e.unwrap_or_else(|| panic!("{p:?} accepted"));
            assert_eq!(e.code, ErrorCode::InvalidPath, "{p:?}: {e}");
            if p.len() < 100 && p != deep {
                assert!(
                    e.message.contains(&p.escape_debug().to_string()) || e.message.contains(p),
                    "{p:?}: {}",
                    e.message
                );
            }
        }
    }
    // Bad keys inside an update are caught too.
    let mut patch = serde_json::Map::new();
    patch.insert("ok/fine".into(), json!(1));
    patch.insert("not.ok".into(), json!(2));
    let e = c.update("x", &patch).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidPath);
    assert!(e.message.contains("not.ok"), "{}", e.message);
    assert_eq!(
        request_total(&emu).await,
        0,
        "a request went out for a bad path"
    );
    emu.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// plain methods, one request each

#[tokio::test]
async fn plain_methods_cost_one_request_each() {
    let (emu, url) = emulator().await;
    let c = client(&url, 0);
    reset_counts(&emu).await;
    let mut expected = 0;
    let mut step = async |n: u64| {
        expected += n;
        assert_eq!(request_total(&emu).await, expected);
    };

    c.set("a/b", &json!({"x": 1, "y": "two"})).await.unwrap();
    step(1).await;
    assert_eq!(c.get("a/b").await.unwrap(), json!({"x": 1, "y": "two"}));
    step(1).await;
    assert_eq!(c.get("missing").await.unwrap(), Value::Null);
    step(1).await;
    assert_eq!(c.get_shallow("a").await.unwrap(), json!({"b": true}));
    step(1).await;
    let echo = c
        .set_echo("a/t", &json!({"at": {".sv": "timestamp"}, "who": "me"}))
        .await
        .unwrap();
    step(1).await;
    let at = echo["at"]
        .as_i64()
        .expect("server timestamp resolved in the echo");
    assert!((at - SystemClock.now_ms_for_test()).abs() < 60_000);
    assert_eq!(echo["who"], json!("me"));

    let mut patch = serde_json::Map::new();
    patch.insert("b/x".into(), json!(2));
    patch.insert("b/y".into(), Value::Null);
    patch.insert("c".into(), json!([1, 2]));
    c.update("a", &patch).await.unwrap();
    step(1).await;
    let a = c.get("a").await.unwrap();
    step(1).await;
    assert_eq!(a["b"], json!({"x": 2}));
    assert_eq!(a["c"], json!([1, 2]));

    let id1 = c.push("list", &json!({"n": 1})).await.unwrap();
    let id2 = c.push("list", &json!({"n": 2})).await.unwrap();
    step(2).await;
    assert_eq!(id1.len(), 20, "{id1}");
    assert!(id1 < id2, "push ids are time-ordered: {id1} {id2}");
    assert_eq!(
        c.get("list").await.unwrap(),
        json!({ id1.clone(): {"n": 1}, id2.clone(): {"n": 2} })
    );
    step(1).await;

    c.remove("a").await.unwrap();
    step(1).await;
    assert_eq!(c.get("a").await.unwrap(), Value::Null);
    step(1).await;

    c.get_shallow("").await.unwrap();
    step(1).await;
    assert!(
        c.server_clock().is_known(),
        "Date headers feed the server clock"
    );
    emu.stop().await.unwrap();
}

trait NowForTest {
    fn now_ms_for_test(&self) -> i64;
}
impl NowForTest for SystemClock {
    fn now_ms_for_test(&self) -> i64 {
        use msr_firebase::rtdb::Clock;
        self.now_ms()
    }
}

// ---------------------------------------------------------------------------------------------
// conditional writes

#[tokio::test]
async fn conditional_put_and_delete_outcomes() {
    let (emu, url) = emulator().await;
    let c = client(&url, 0);
    reset_counts(&emu).await;

    let v0 = c.get_versioned("lock").await.unwrap();
    assert_eq!(
        v0,
        Versioned {
            value: Value::Null,
            etag: NULL_ETAG.into()
        }
    );

    // Create only if absent.
    let first = c
        .put_if_match("lock", &json!({"owner": "A"}), NULL_ETAG)
        .await
        .unwrap();
    let CasOutcome::Written(w1) = first else {
        panic!("expected a write: {first:?}")
    };
    assert_eq!(w1.value, json!({"owner": "A"}));
    assert_ne!(w1.etag, NULL_ETAG);

    // A second create is a mismatch carrying the current value and ETag.
    let second = c
        .put_if_match("lock", &json!({"owner": "B"}), NULL_ETAG)
        .await
        .unwrap();
    assert_eq!(second, CasOutcome::Mismatch(w1.clone()));

    // The read ETag matches the written one.
    assert_eq!(c.get_versioned("lock").await.unwrap(), w1);

    // Replace with the right ETag; server values are resolved in the echo.
    let third = c
        .put_if_match(
            "lock",
            &json!({"owner": "A", "at": {".sv": "timestamp"}}),
            &w1.etag,
        )
        .await
        .unwrap();
    let CasOutcome::Written(w2) = third else {
        panic!("{third:?}")
    };
    assert!(w2.value["at"].is_i64(), "{}", w2.value);
    assert_ne!(w2.etag, w1.etag);

    // A stale ETag does nothing.
    let stale = c
        .put_if_match("lock", &json!({"owner": "C"}), &w1.etag)
        .await
        .unwrap();
    assert_eq!(stale, CasOutcome::Mismatch(w2.clone()));
    let stale_delete = c.delete_if_match("lock", &w1.etag).await.unwrap();
    assert_eq!(stale_delete, CasOutcome::Mismatch(w2.clone()));

    // Delete with the right ETag.
    let gone = c.delete_if_match("lock", &w2.etag).await.unwrap();
    assert_eq!(
        gone,
        CasOutcome::Written(Versioned {
            value: Value::Null,
            etag: NULL_ETAG.into()
        })
    );
    assert_eq!(c.get("lock").await.unwrap(), Value::Null);

    // Nine operations, nine requests: no hidden pre-reads.
    assert_eq!(request_total(&emu).await, 9);
    emu.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// queries

#[tokio::test]
async fn query_results_come_back_sorted() {
    let (emu, url) = emulator().await;
    let c = client(&url, 0);
    let people = json!({
        "zed": {"age": 30, "name": "Zed"},
        "amy": {"age": 25, "name": "Amy"},
        "bob": {"age": 35, "name": "Bob"},
        "cat": {"age": 25, "name": "Cat"},
        "10": {"age": 40, "name": "Ten"},
        "9": {"age": 20, "name": "Nine"},
    });
    c.set("people", &people).await.unwrap();
    reset_counts(&emu).await;

    let keys = |r: &[(String, Value)]| r.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let by_age = c
        .query(
            "people",
            &Query {
                order_by: Some(OrderBy::Child("age".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(&by_age), ["9", "amy", "cat", "zed", "bob", "10"]);
    assert_eq!(by_age[0].1, people["9"]);

    let by_key = c
        .query(
            "people",
            &Query {
                order_by: Some(OrderBy::Key),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(&by_key), ["9", "10", "amy", "bob", "cat", "zed"]);

    let range = c
        .query(
            "people",
            &Query {
                order_by: Some(OrderBy::Child("age".into())),
                start_at: Some(json!(25)),
                end_at: Some(json!(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(&range), ["amy", "cat", "zed"]);

    let last = c
        .query(
            "people",
            &Query {
                order_by: Some(OrderBy::Child("age".into())),
                limit_to_last: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(&last), ["bob", "10"]);

    let eq = c
        .query(
            "people",
            &Query {
                order_by: Some(OrderBy::Child("name".into())),
                equal_to: Some(json!("Bob")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(&eq), ["bob"]);

    let spaced = c
        .query(
            "people",
            &Query {
                order_by: Some(OrderBy::Child("name".into())),
                start_at: Some(json!("B")),
                end_at: Some(json!("Cat ~")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(&spaced), ["bob", "cat"]);

    let none = c
        .query(
            "nobody",
            &Query {
                order_by: Some(OrderBy::Key),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(request_total(&emu).await, 7);
    emu.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// event streams

#[tokio::test]
async fn stream_delivers_put_and_patch_events_and_ends_when_the_server_closes() {
    let (emu, url) = emulator().await;
    let c = client(&url, 0);
    c.set("watched", &json!({"a": 1})).await.unwrap();
    let mut s = c.stream("watched").await.unwrap();
    let next = async |s: &mut msr_firebase::rtdb::EventStream| loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("event in time");
        match ev {
            Some(Ok(StreamEvent::KeepAlive)) => continue,
            other => return other,
        }
    };
    assert_eq!(
        next(&mut s).await,
        Some(Ok(StreamEvent::Put {
            path: "/".into(),
            data: json!({"a": 1})
        }))
    );
    c.set("watched/b", &json!(2)).await.unwrap();
    assert_eq!(
        next(&mut s).await,
        Some(Ok(StreamEvent::Put {
            path: "/b".into(),
            data: json!(2)
        }))
    );
    let mut patch = serde_json::Map::new();
    patch.insert("c".into(), json!(3));
    c.update("watched", &patch).await.unwrap();
    assert_eq!(
        next(&mut s).await,
        Some(Ok(StreamEvent::Patch {
            path: "/".into(),
            data: json!({"c": 3})
        }))
    );
    c.remove("watched").await.unwrap();
    assert_eq!(
        next(&mut s).await,
        Some(Ok(StreamEvent::Put {
            path: "/".into(),
            data: Value::Null
        }))
    );
    tokio::time::timeout(Duration::from_secs(10), emu.stop())
        .await
        .expect("stop in time")
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.next().await {
                Some(Ok(StreamEvent::KeepAlive)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("stream ends");
    assert!(matches!(end, None | Some(Err(_))), "{end:?}");
}

#[tokio::test]
async fn stream_parses_a_scripted_server() {
    let fake = fake_server(Arc::new(|_, _| {
        let mut a = answer(
            200,
            "event: put\ndata: {\"path\":\"/\",\"data\":{\"x\":1}}\n\nevent: keep-alive\ndata: null\n\n\
             event: patch\ndata: {\"path\":\"/y\",\"data\":{\"z\":true}}\n\nevent: cancel\ndata: \"rules changed\"\n\n",
        );
        a.headers.push(("Content-Type", "text/event-stream".into()));
        a
    }))
    .await;
    let c = client(&fake.url(), 0);
    let mut s = c.stream("p").await.unwrap();
    let mut got = Vec::new();
    while let Some(ev) = s.next().await {
        got.push(ev.unwrap());
    }
    assert_eq!(
        got,
        [
            StreamEvent::Put {
                path: "/".into(),
                data: json!({"x": 1})
            },
            StreamEvent::KeepAlive,
            StreamEvent::Patch {
                path: "/y".into(),
                data: json!({"z": true})
            },
            StreamEvent::Cancel("rules changed".into()),
        ]
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("accept"), Some("text/event-stream"));
    assert_eq!(seen[0].uri, "/p.json?ns=fake");
}

// ---------------------------------------------------------------------------------------------
// retries and error mapping

#[tokio::test]
async fn injected_503s_are_retried_until_success_and_then_given_up_clearly() {
    let (emu, url) = emulator().await;
    let c = client(&url, 30);
    lever(
        &emu,
        reqwest::Method::PUT,
        "faults",
        Some(json!({"unavailableProbability": 0.5})),
    )
    .await;
    for i in 0..10 {
        c.set(&format!("r/{i}"), &json!(i)).await.unwrap();
        let cas = c
            .put_if_match(&format!("c/{i}"), &json!(i), NULL_ETAG)
            .await
            .unwrap();
        assert!(matches!(cas, CasOutcome::Written(_)), "{cas:?}");
        assert_eq!(c.get(&format!("r/{i}")).await.unwrap(), json!(i));
    }
    lever(
        &emu,
        reqwest::Method::PUT,
        "faults",
        Some(json!({"unavailableProbability": 1.0})),
    )
    .await;
    reset_counts(&emu).await;
    let c3 = client(&url, 3);
    let e = c3.get("r/1").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ConnectionFailed, "{e}");
    assert!(
        e.message.contains("503") && e.message.contains("4 attempts"),
        "{}",
        e.message
    );
    assert!(e.message.contains(&emu.url()), "{}", e.message);
    assert_eq!(request_total(&emu).await, 4, "first attempt + 3 retries");
    let e = c3.set("r/1", &json!(0)).await.unwrap_err();
    assert_eq!(
        e.code,
        ErrorCode::ConnectionFailed,
        "503 is safe to retry for writes, then reported: {e}"
    );
    lever(
        &emu,
        reqwest::Method::PUT,
        "faults",
        Some(json!({"unavailableProbability": 0.0})),
    )
    .await;
    assert_eq!(
        c3.get("r/1").await.unwrap(),
        json!(1),
        "the failed writes did nothing"
    );
    emu.stop().await.unwrap();
}

#[tokio::test]
async fn denied_paths_map_to_permission_denied() {
    let (emu, url) = emulator().await;
    let c = client(&url, 3);
    c.set("open/x", &json!(1)).await.unwrap();
    lever(
        &emu,
        reqwest::Method::PUT,
        "deny",
        Some(json!({"ns": "test-client", "paths": ["secret"]})),
    )
    .await;
    for e in [
        c.get("secret/inner").await.unwrap_err(),
        c.set("secret", &json!(1)).await.unwrap_err(),
        c.put_if_match("secret/a", &json!(1), NULL_ETAG)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.code, ErrorCode::PermissionDenied, "{e}");
        assert!(
            e.message.starts_with("Permission denied at /secret"),
            "{}",
            e.message
        );
    }
    assert_eq!(c.get("open/x").await.unwrap(), json!(1));
    emu.stop().await.unwrap();
}

#[tokio::test]
async fn unreachable_database_is_a_connection_failure_naming_the_url() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}?ns=gone");
    let c = client(&url, 2);
    for e in [
        c.get_shallow("a").await.unwrap_err(),
        c.set("a", &json!(1)).await.unwrap_err(),
    ] {
        assert_eq!(e.code, ErrorCode::ConnectionFailed, "{e}");
        assert!(e.message.contains(&url), "{}", e.message);
        assert!(
            e.message.contains("3 attempts") && e.message.contains("check"),
            "{}",
            e.message
        );
    }
}

#[tokio::test]
async fn http_errors_map_to_codes() {
    let fake = fake_server(Arc::new(|s, _| match s.uri.split('?').next().unwrap() {
        "/notfound.json" => answer(404, r#"{"error":"Firebase error. Please ensure that you spelled the name of your Firebase correctly"}"#),
        "/bad.json" => answer(400, r#"{"error":"Invalid data; couldn't parse JSON object, array, or value."}"#),
        "/denied.json" => answer(401, r#"{"error":"Permission denied"}"#),
        "/teapot.json" => answer(418, "short and stout"),
        _ => answer(200, "null"),
    }))
    .await;
    let c = client(&fake.url(), 3);
    let e = c.get("notfound").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::DatabaseNotFound);
    assert!(
        e.message.contains(&fake.url()) && e.message.contains("databaseUrl"),
        "{}",
        e.message
    );
    let e = c.set("bad", &json!(1)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(
        e.message.contains("Invalid data; couldn't parse JSON"),
        "{}",
        e.message
    );
    let e = c.remove("denied").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::PermissionDenied);
    assert!(
        e.message.starts_with("Permission denied at /denied"),
        "{}",
        e.message
    );
    let e = c.get("teapot").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(e.message.contains("418"), "{}", e.message);
    // None of these is retried.
    assert_eq!(fake.seen().len(), 4);
}

#[tokio::test]
async fn reads_retry_500s_and_dropped_connections() {
    let fake = fake_server(Arc::new(|_, i| match i {
        0 => answer(500, r#"{"error":"internal"}"#),
        1 => answer(0, ""),
        _ => answer(200, r#"{"ok":true}"#),
    }))
    .await;
    let c = client(&fake.url(), 3);
    assert_eq!(c.get("x").await.unwrap(), json!({"ok": true}));
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test]
async fn write_with_unknown_outcome_is_not_repeated_blindly() {
    // Unconditional PUT answered 500; every re-read shows the node without our value: the PUT is
    // sent again only after each re-check, at most `max_retries` times, then
    // WRITE_OUTCOME_UNKNOWN.
    let fake = fake_server(Arc::new(|s, _| match s.method.as_str() {
        "PUT" => answer(500, r#"{"error":"internal"}"#),
        _ => answer(200, r#""somebody else""#),
    }))
    .await;
    let c = client(&fake.url(), 2);
    let e = c.set("n", &json!("mine")).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::WriteOutcomeUnknown, "{e}");
    assert!(e.message.contains("/n"), "{}", e.message);
    let methods: Vec<String> = fake.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["PUT", "GET", "PUT", "GET", "PUT", "GET"]);

    // A write an outage dropped before it was applied (the node does not hold it) is sent again
    // once the re-read shows so, and then lands.
    let fake = fake_server(Arc::new(|s, i| match (s.method.as_str(), i) {
        ("PUT", 0) => answer(0, ""),
        ("PUT", _) => answer(204, ""),
        _ => answer(200, "null"),
    }))
    .await;
    let c = client(&fake.url(), 5);
    c.set("n", &json!("mine")).await.unwrap();
    let methods: Vec<String> = fake.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["PUT", "GET", "PUT"]);

    // Same, but the value is there: the write happened.
    let fake = fake_server(Arc::new(|s, _| match s.method.as_str() {
        "PUT" => answer(0, ""),
        _ => answer(200, r#""mine""#),
    }))
    .await;
    let c = client(&fake.url(), 5);
    c.set("n", &json!("mine")).await.unwrap();
    assert_eq!(fake.seen().len(), 2);

    // POST cannot be checked: unknown right away, sent once.
    let fake = fake_server(Arc::new(|_, _| answer(500, "{}"))).await;
    let c = client(&fake.url(), 5);
    let e = c.push("list", &json!(1)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::WriteOutcomeUnknown, "{e}");
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn conditional_write_with_unknown_outcome_is_settled_by_the_etag() {
    // 1. The write landed: the re-read shows our value under a new ETag.
    let fake = fake_server(Arc::new(|s, _| match s.method.as_str() {
        "PUT" => answer(500, r#"{"error":"internal"}"#),
        _ => with_etag(answer(200, r#"{"owner":"me","at":1700000000000}"#), "e-new"),
    }))
    .await;
    let c = client(&fake.url(), 5);
    let out = c
        .put_if_match(
            "lock",
            &json!({"owner": "me", "at": {".sv": "timestamp"}}),
            "e-old",
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        CasOutcome::Written(Versioned {
            value: json!({"owner": "me", "at": 1700000000000i64}),
            etag: "e-new".into()
        })
    );
    let seen = fake.seen();
    assert_eq!(
        seen.iter().map(|s| s.method.as_str()).collect::<Vec<_>>(),
        ["PUT", "GET"]
    );
    assert_eq!(seen[0].header("if-match"), Some("e-old"));
    assert_eq!(seen[0].header("x-firebase-etag"), Some("true"));
    assert_eq!(seen[1].header("x-firebase-etag"), Some("true"));

    // 2. The node is unchanged (same ETag): the write did not happen and is safely sent again.
    let fake = fake_server(Arc::new(|s, i| match (s.method.as_str(), i) {
        ("PUT", 0) => answer(0, ""),
        ("GET", _) => with_etag(answer(200, "null"), NULL_ETAG),
        _ => with_etag(answer(200, r#"{"owner":"me"}"#), "e1"),
    }))
    .await;
    let c = client(&fake.url(), 5);
    let out = c
        .put_if_match("lock", &json!({"owner": "me"}), NULL_ETAG)
        .await
        .unwrap();
    assert_eq!(
        out,
        CasOutcome::Written(Versioned {
            value: json!({"owner": "me"}),
            etag: "e1".into()
        })
    );
    assert_eq!(
        fake.seen()
            .iter()
            .map(|s| s.method.as_str())
            .collect::<Vec<_>>(),
        ["PUT", "GET", "PUT"]
    );

    // 3. Someone else's value under another ETag: unknown.
    let fake = fake_server(Arc::new(|s, _| match s.method.as_str() {
        "PUT" | "DELETE" => answer(502, ""),
        _ => with_etag(answer(200, r#"{"owner":"other"}"#), "e9"),
    }))
    .await;
    let c = client(&fake.url(), 5);
    let e = c
        .put_if_match("lock", &json!({"owner": "me"}), "e1")
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::WriteOutcomeUnknown, "{e}");
    let e = c.delete_if_match("lock", "e1").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::WriteOutcomeUnknown, "{e}");
    assert_eq!(fake.seen().len(), 4);

    // 4. A conditional DELETE that landed: the node is gone.
    let fake = fake_server(Arc::new(|s, _| match s.method.as_str() {
        "DELETE" => answer(500, ""),
        _ => with_etag(answer(200, "null"), NULL_ETAG),
    }))
    .await;
    let c = client(&fake.url(), 5);
    let out = c.delete_if_match("lock", "e1").await.unwrap();
    assert_eq!(
        out,
        CasOutcome::Written(Versioned {
            value: Value::Null,
            etag: NULL_ETAG.into()
        })
    );
}

#[tokio::test]
async fn timeouts_retry_reads_and_are_settled_for_writes() {
    let fake = fake_server(Arc::new(|s, i| {
        let mut a = match s.method.as_str() {
            "GET" => with_etag(answer(200, "7"), "e7"),
            _ => answer(200, "7"),
        };
        if i == 0 {
            a.delay_ms = 1_500;
        }
        a
    }))
    .await;
    let c = Client::new(ClientOptions {
        url: DatabaseUrl::parse(&fake.url()).unwrap(),
        auth: Auth::EmulatorOwner,
        retry: fast_retries(2),
        request_timeout: Duration::from_millis(500),
        connect_timeout: None,
        on_retry: None,
        clock: Arc::new(SystemClock),
        auth_variable_override: None,
    })
    .unwrap();
    assert_eq!(c.get("t").await.unwrap(), json!(7));
    assert_eq!(fake.seen().len(), 2);
    // A PUT that timed out is not sent again; the re-read shows our value, so it happened.
    let c2 = Client::new(ClientOptions {
        url: DatabaseUrl::parse(&fake.url()).unwrap(),
        auth: Auth::EmulatorOwner,
        retry: fast_retries(2),
        request_timeout: Duration::from_millis(500),
        connect_timeout: None,
        on_retry: None,
        clock: Arc::new(SystemClock),
        auth_variable_override: None,
    })
    .unwrap();
    fake.seen.lock().unwrap().clear();
    c2.set("t", &json!(7)).await.unwrap();
    let methods: Vec<String> = fake.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["PUT", "GET"]);
}

/// A gate open until a deadline (a lease that is never renewed), refusing with LOCK_LOST after.
struct Until(std::time::Instant);

impl WriteGate for Until {
    fn admit(&self) -> msr_firebase::Result<Option<Duration>> {
        let now = std::time::Instant::now();
        if now >= self.0 {
            return Err(msr_firebase::Error::new(
                ErrorCode::LockLost,
                "Write refused: the lease is over",
            ));
        }
        Ok(Some(self.0 - now))
    }
}

fn gated(c: &Client, open_for: Duration) -> Client {
    c.gated(Arc::new(Until(std::time::Instant::now() + open_for)))
}

fn methods(fake: &common::Fake) -> Vec<String> {
    fake.seen().iter().map(|s| s.method.clone()).collect()
}

#[tokio::test]
async fn a_gated_write_asks_its_gate_before_every_attempt_and_waits_no_longer_than_it_allows() {
    // The lost update: the PUT's answer does not come; meanwhile the node got someone else's
    // value. The attempt is cut when the gate closes (not at the response deadline), the re-read
    // shows the other value, and the write is NOT sent over it: LOCK_LOST, outcome unknown.
    let fake = fake_server(Arc::new(|s, i| match s.method.as_str() {
        "PUT" => Answer {
            delay_ms: if i == 0 { 3_000 } else { 0 },
            ..answer(0, "")
        },
        _ => answer(200, r#""the new holder's""#),
    }))
    .await;
    let c = client_with(
        DatabaseUrl::parse(&fake.url()).unwrap(),
        Auth::EmulatorOwner,
        fast_retries(2),
    );
    let started = std::time::Instant::now();
    let e = gated(&c, Duration::from_millis(150))
        .set("n", &json!("mine"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::LockLost, "{e}");
    assert!(
        e.message.contains("may or may not have happened") && e.message.contains("not sent again"),
        "{}",
        e.message
    );
    assert!(
        started.elapsed() < Duration::from_millis(1_400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(methods(&fake), ["PUT", "GET"]);
    // Without a gate (or while it admits), a write that is not there is sent again: this
    // process holds the lock, so its write is simply the latest.
    let fake = fake_server(Arc::new(|s, _| match s.method.as_str() {
        "PUT" => answer(0, ""),
        _ => answer(200, r#""the new holder's""#),
    }))
    .await;
    let e = client(&fake.url(), 2)
        .set("n", &json!("mine"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::WriteOutcomeUnknown, "{e}");
    assert_eq!(methods(&fake), ["PUT", "GET", "PUT", "GET", "PUT", "GET"]);

    // A 503 (nothing happened) is retried only while the gate admits it: the pause outlasts the
    // gate, so no second PUT.
    let fake = fake_server(Arc::new(|_, _| answer(503, r#"{"error":"busy"}"#))).await;
    let slow = client_with(
        DatabaseUrl::parse(&fake.url()).unwrap(),
        Auth::EmulatorOwner,
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(300),
            max_delay: Duration::from_millis(300),
            window: None,
        },
    );
    let e = gated(&slow, Duration::from_millis(100))
        .update("n", json!({"a": 1}).as_object().unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::LockLost, "{e}");
    assert!(e.message.contains("did not happen"), "{}", e.message);
    assert_eq!(methods(&fake), ["PATCH"]);

    // A conditional write whose answer was lost, the node unchanged: not tried again once the
    // gate is closed.
    let fake = fake_server(Arc::new(|s, _| match s.method.as_str() {
        "PUT" => Answer {
            delay_ms: 400,
            ..answer(0, "")
        },
        _ => with_etag(answer(200, "null"), NULL_ETAG),
    }))
    .await;
    let e = gated(&client(&fake.url(), 5), Duration::from_millis(200))
        .put_if_match("lock", &json!("mine"), NULL_ETAG)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::LockLost, "{e}");
    assert_eq!(methods(&fake), ["PUT", "GET"]);

    // A closed gate: nothing is sent; reads are never gated.
    let fake = fake_server(Arc::new(|_, _| answer(200, "1"))).await;
    let closed = gated(&client(&fake.url(), 5), Duration::ZERO);
    for e in [
        closed.set("n", &json!(1)).await.unwrap_err(),
        closed.remove("n").await.unwrap_err(),
        closed.push("n", &json!(1)).await.map(|_| ()).unwrap_err(),
        closed.set_raw("n", "1".into()).await.unwrap_err(),
    ] {
        assert_eq!(e.code, ErrorCode::LockLost, "{e}");
    }
    assert_eq!(closed.get("n").await.unwrap(), json!(1));
    assert_eq!(methods(&fake), ["GET"]);
}

#[tokio::test]
async fn date_headers_feed_the_server_clock() {
    let ahead = std::time::SystemTime::now() + Duration::from_secs(3600);
    let date = httpdate::fmt_http_date(ahead);
    let fake = fake_server(Arc::new(move |_, _| {
        let mut a = answer(200, "1");
        a.headers.push(("Date", date.clone()));
        a
    }))
    .await;
    let c = client(&fake.url(), 0);
    assert_eq!(c.server_clock().now_ms(), None);
    c.get("x").await.unwrap();
    let est = c.server_clock().now_ms().unwrap();
    let expected = SystemClock.now_ms_for_test() + 3_600_000;
    assert!((est - expected).abs() < 2_000, "{est} vs {expected}");
}

// ---------------------------------------------------------------------------------------------
// auth

#[tokio::test]
async fn emulator_owner_header_and_no_token_in_urls() {
    let fake = fake_server(Arc::new(|s, _| match s.method.as_str() {
        "POST" => answer(200, r#"{"name":"-Nabcdefghijklmnopqr"}"#),
        "GET" if s.uri.contains("X") => with_etag(answer(200, "null"), NULL_ETAG),
        _ => with_etag(answer(200, "null"), "e"),
    }))
    .await;
    let c = client(&fake.url(), 0);
    c.get("a").await.unwrap();
    c.get_versioned("X").await.unwrap();
    c.get_shallow("a").await.unwrap();
    c.set("a", &json!(1)).await.unwrap();
    c.put_if_match("a", &json!(1), "e").await.unwrap();
    c.push("a", &json!(1)).await.unwrap();
    c.query(
        "a",
        &Query {
            order_by: Some(OrderBy::Child("role".into())),
            equal_to: Some(json!("ad min")),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for s in fake.seen() {
        assert_eq!(s.header("authorization"), Some("Bearer owner"), "{s:?}");
        assert!(
            !s.uri.contains("auth") && !s.uri.contains("owner") && !s.uri.contains("token"),
            "{}",
            s.uri
        );
        assert!(s.uri.contains("ns=fake"), "{}", s.uri);
    }
    let seen = fake.seen();
    let q = seen.last().unwrap();
    assert!(
        q.uri.contains("orderBy=%22role%22") && q.uri.contains("equalTo=%22ad%20min%22"),
        "{}",
        q.uri
    );
    assert!(seen.iter().any(|s| s.uri.contains("shallow=true")));
    assert!(seen
        .iter()
        .any(|s| s.uri.contains("print=silent") && s.method == "PUT"));
}

fn write_key_file(dir: &std::path::Path, token_uri: &str) -> std::path::PathBuf {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-sa-key.pem"
    ))
    .unwrap();
    let key = json!({
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "migrations@test-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    });
    let path = dir.join("key.json");
    std::fs::write(&path, serde_json::to_string_pretty(&key).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn service_account_token_is_fetched_once_and_sent_as_bearer_only() {
    let token_calls = Arc::new(AtomicUsize::new(0));
    let calls = token_calls.clone();
    let token_server = fake_server(Arc::new(move |s, _| {
        calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(s.method, "POST");
        assert!(
            s.body
                .contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"),
            "{}",
            s.body
        );
        assert!(s.body.contains("assertion="), "{}", s.body);
        let mut a = answer(
            200,
            r#"{"access_token":"tok-123","expires_in":3600,"token_type":"Bearer"}"#,
        );
        a.headers.push(("Content-Type", "application/json".into()));
        a
    }))
    .await;
    let db = fake_server(Arc::new(|s, _| match s.method.as_str() {
        "GET" => with_etag(answer(200, r#"{"v":1}"#), "e1"),
        _ => with_etag(answer(200, r#"{"v":2}"#), "e2"),
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key = write_key_file(dir.path(), &format!("{}/token", token_server.base));
    let auth = Auth::from_file(&key, &Env::default()).unwrap();
    assert_eq!(
        format!("{auth:?}"),
        "Auth::Google(service account migrations@test-project.iam.gserviceaccount.com)"
    );
    let c = client_with(
        DatabaseUrl::parse(&db.url()).unwrap(),
        auth,
        fast_retries(0),
    );
    c.get("a").await.unwrap();
    c.set("a", &json!({"v": 2})).await.unwrap();
    c.put_if_match("a", &json!({"v": 2}), "e1").await.unwrap();
    let mut s = c.stream("a").await.unwrap();
    while s.next().await.is_some() {}
    let seen = db.seen();
    assert_eq!(seen.len(), 4);
    for s in &seen {
        assert_eq!(s.header("authorization"), Some("Bearer tok-123"), "{s:?}");
        assert!(!s.uri.contains("tok-123"), "token in URL {}", s.uri);
    }
    assert_eq!(
        token_calls.load(Ordering::SeqCst),
        1,
        "token cached and reused"
    );
    assert_eq!(token_server.seen()[0].uri, "/token");
}

#[tokio::test]
async fn token_endpoint_refusal_is_auth_failed_without_secrets() {
    let token_server = fake_server(Arc::new(|_, _| {
        answer(
            400,
            r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        )
    }))
    .await;
    let db = fake_server(Arc::new(|_, _| answer(200, "null"))).await;
    let dir = tempfile::tempdir().unwrap();
    let key = write_key_file(dir.path(), &format!("{}/token", token_server.base));
    let auth = Auth::from_file(&key, &Env::default()).unwrap();
    let c = client_with(
        DatabaseUrl::parse(&db.url()).unwrap(),
        auth,
        fast_retries(0),
    );
    let e = c.get("a").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthFailed, "{e}");
    assert!(!e.message.contains("PRIVATE KEY"), "{}", e.message);
    assert!(db.seen().is_empty(), "no database request without a token");
}

#[test]
fn key_file_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let e = Auth::from_file(&missing, &Env::default()).unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthFailed);
    assert!(
        e.message.contains("nope.json") && e.message.contains("not found"),
        "{}",
        e.message
    );

    let cases: [(&str, &str, &str); 6] = [
        (
            "garbage.json",
            "this is { not json SECRET-ISH",
            "not valid JSON",
        ),
        ("array.json", "[1,2]", "not a JSON object"),
        (
            "nokey.json",
            r#"{"type":"service_account","client_email":"a@b","token_uri":"http://x"}"#,
            "private_key",
        ),
        (
            "badkey.json",
            r#"{"type":"service_account","client_email":"a@b","token_uri":"http://x","private_key":"-----BEGIN PRIVATE KEY-----\nSECRET-ISH\n-----END PRIVATE KEY-----\n"}"#,
            "PKCS#8",
        ),
        (
            "user.json",
            r#"{"type":"authorized_user","client_id":"x","refresh_token":"SECRET-ISH"}"#,
            "client_secret",
        ),
        (
            "gdch.json",
            r#"{"type":"gdch_service_account","private_key":"SECRET-ISH"}"#,
            "supported: service_account, authorized_user, external_account, impersonated_service_account",
        ),
    ];
    for (name, text, problem) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let e = Auth::from_file(&p, &Env::default()).unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthFailed, "{name}");
        assert!(e.message.contains(name), "{name}: {}", e.message);
        assert!(e.message.contains(problem), "{name}: {}", e.message);
        assert!(!e.message.contains("SECRET-ISH"), "{name}: {}", e.message);
    }
}

#[test]
fn production_clients_build_without_a_tls_provider_panic() {
    let url = DatabaseUrl::parse("https://example-db.firebaseio.com").unwrap();
    let c = client_with(url.clone(), Auth::EmulatorOwner, RetryPolicy::default());
    assert_eq!(c.url(), &url);
    assert_eq!(
        url.data_url("a/b"),
        "https://example-db.firebaseio.com/a/b.json"
    );
}

#[tokio::test]
async fn redirects_are_followed_only_within_the_database() {
    let fake = fake_server(Arc::new(|s, _| {
        if s.uri.starts_with("/moved.json") {
            let mut a = answer(307, "");
            a.headers.push(("Location", "/here.json?ns=fake".into()));
            a
        } else if s.uri.starts_with("/away.json") {
            let mut a = answer(307, "");
            a.headers
                .push(("Location", "http://127.0.0.1:9/steal.json".into()));
            a
        } else {
            answer(200, r#""here""#)
        }
    }))
    .await;
    let c = client(&fake.url(), 0);
    assert_eq!(
        c.set_echo("moved", &json!("here")).await.unwrap(),
        json!("here")
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, "PUT");
    assert_eq!(seen[1].body, r#""here""#);
    assert_eq!(seen[1].header("authorization"), Some("Bearer owner"));
    let e = c.get("away").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(e.message.contains("redirect"), "{}", e.message);
    assert_eq!(fake.seen().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Exclusive bounds and limits without an ordering (PageQuery)

fn keys_of(rows: &[(String, Value)]) -> Vec<&str> {
    rows.iter().map(|(k, _)| k.as_str()).collect()
}

/// The firebase-admin paging loop, `orderByKey().startAfter(last).limitToFirst(n)`, visits every
/// child once in key order; `endBefore` and `limitToLast` page backwards; child orderings drop
/// ties with the bound even when they fill a whole page; limits alone order by key.
#[tokio::test]
async fn exclusive_bounds_and_limits_without_ordering() {
    let (emu, url) = emulator().await;
    let c = client(&url, 0);
    let users: serde_json::Map<String, Value> = (0..25)
        .map(|i| (format!("u{i:02}"), json!({"age": i / 10, "n": i})))
        .chain([
            ("7".to_string(), json!({"age": 9})),
            ("10".to_string(), json!({"age": 9})),
        ])
        .collect();
    c.set("users", &Value::Object(users)).await.unwrap();
    let by_key = |after: Option<&str>, n: u32| PageQuery {
        query: Query {
            order_by: Some(OrderBy::Key),
            limit_to_first: Some(n),
            ..Query::default()
        },
        start_after: after.map(|a| json!(a)),
        ..PageQuery::default()
    };
    // The paging loop.
    let mut seen = Vec::new();
    let mut last: Option<String> = None;
    reset_counts(&emu).await;
    loop {
        let page = c
            .query_page("users", &by_key(last.as_deref(), 4))
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        last = page.last().map(|(k, _)| k.clone());
        seen.extend(page.into_iter().map(|(k, _)| k));
    }
    let mut want: Vec<String> = vec!["7".into(), "10".into()];
    want.extend((0..25).map(|i| format!("u{i:02}")));
    assert_eq!(
        seen, want,
        "every child once, in key order (integer keys first)"
    );
    assert_eq!(
        request_total(&emu).await,
        8,
        "27 children in pages of 4: 7 full pages and an empty one"
    );

    // Limits without an ordering order by key.
    let q = PageQuery {
        query: Query {
            limit_to_first: Some(3),
            ..Query::default()
        },
        ..PageQuery::default()
    };
    assert_eq!(
        keys_of(&c.query_page("users", &q).await.unwrap()),
        vec!["7", "10", "u00"]
    );
    let q = PageQuery {
        query: Query {
            limit_to_last: Some(2),
            ..Query::default()
        },
        ..PageQuery::default()
    };
    assert_eq!(
        keys_of(&c.query_page("users", &q).await.unwrap()),
        vec!["u23", "u24"]
    );

    // endBefore pages backwards.
    let q = PageQuery {
        query: Query {
            order_by: Some(OrderBy::Key),
            limit_to_last: Some(3),
            ..Query::default()
        },
        end_before: Some(json!("u10")),
        ..PageQuery::default()
    };
    assert_eq!(
        keys_of(&c.query_page("users", &q).await.unwrap()),
        vec!["u07", "u08", "u09"]
    );

    // By child: ten children tie at age 0; startAfter(0) skips all of them even with a page of 2.
    let by_age = |after: Option<Value>,
                  before: Option<Value>,
                  first: Option<u32>,
                  last: Option<u32>| PageQuery {
        query: Query {
            order_by: Some(OrderBy::Child("age".into())),
            limit_to_first: first,
            limit_to_last: last,
            ..Query::default()
        },
        start_after: after,
        end_before: before,
    };
    assert_eq!(
        keys_of(
            &c.query_page("users", &by_age(Some(json!(0)), None, Some(2), None))
                .await
                .unwrap()
        ),
        vec!["u10", "u11"]
    );
    assert_eq!(
        keys_of(
            &c.query_page("users", &by_age(None, Some(json!(2)), None, Some(2)))
                .await
                .unwrap()
        ),
        vec!["u18", "u19"]
    );
    let all_between = c
        .query_page("users", &by_age(Some(json!(0)), Some(json!(2)), None, None))
        .await
        .unwrap();
    assert_eq!(all_between.len(), 10, "only age 1");

    // Refused as the SDKs refuse them, before any request.
    reset_counts(&emu).await;
    for bad in [
        PageQuery {
            query: Query {
                order_by: Some(OrderBy::Key),
                start_at: Some(json!("a")),
                ..Query::default()
            },
            start_after: Some(json!("b")),
            ..PageQuery::default()
        },
        PageQuery {
            query: Query {
                order_by: Some(OrderBy::Key),
                ..Query::default()
            },
            start_after: Some(json!(5)),
            ..PageQuery::default()
        },
        PageQuery {
            start_after: Some(json!("a")),
            ..PageQuery::default()
        },
    ] {
        let e = c.query_page("users", &bad).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest, "{bad:?}");
    }
    assert_eq!(request_total(&emu).await, 0);
    emu.stop().await.unwrap();
}
