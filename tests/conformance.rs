//! REST conformance suite for the Realtime Database's REST protocol as the service speaks it, written
//! with raw `reqwest` (not the crate's client) so it tests the server, not our client.
//!
//! By default every test starts its own embedded emulator (`msr_firebase::emulator`) on
//! 127.0.0.1, port 0. When `FIREBASE_DATABASE_EMULATOR_HOST` is set, the protocol tests run
//! against that external emulator instead, each in a namespace of its own; the tests of the
//! embedded emulator's own test levers (`/.emulator/...`), lifecycle and namespace defaults still
//! run, on an embedded emulator of their own (`embedded_target`), never skipped. To run it against
//! Google's emulator (needs the Firebase CLI and Java 21):
//!
//! ```sh
//! firebase emulators:exec --only database "FIREBASE_DATABASE_EMULATOR_HOST=127.0.0.1:9000 cargo test --release --target x86_64-unknown-linux-gnu --test conformance"
//! ```

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use msr_firebase::emulator::{Emulator, EmulatorOptions};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PUSH_CHARS: &str = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

fn http_client() -> reqwest::Client {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer owner"));
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Where a test talks to: the embedded emulator or the external one.
struct Target {
    base: String,
    ns: String,
    http: reqwest::Client,
    emu: Option<Emulator>,
}

/// The response, read whole.
struct Resp {
    status: StatusCode,
    etag: Option<String>,
    content_type: Option<String>,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
    fn etag(&self) -> String {
        self.etag.clone().expect("an ETag header")
    }
    /// A `{"error": "<message>"}` body; returns the message.
    fn error_message(&self) -> String {
        let v = self.json();
        assert_eq!(v.as_object().map(|m| m.len()), Some(1), "error body {v}");
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("error body {v}"))
            .to_string()
    }
    #[track_caller]
    fn assert_error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "body: {}", self.text);
        self.error_message()
    }
}

fn unique_ns() -> String {
    format!("conf-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn target() -> Target {
    target_with(None).await
}

async fn target_with(import: Option<Value>) -> Target {
    let ns = unique_ns();
    match std::env::var("FIREBASE_DATABASE_EMULATOR_HOST")
        .ok()
        .filter(|h| !h.is_empty())
    {
        Some(host) => {
            let t = Target {
                base: format!("http://{host}"),
                ns,
                http: http_client(),
                emu: None,
            };
            if let Some(data) = import {
                t.put("", data).await;
            }
            t
        }
        None => {
            let import = import.map(|data| json!({ ns.clone(): data }));
            let emu = Emulator::start(EmulatorOptions {
                import,
                ..Default::default()
            })
            .await
            .unwrap();
            Target {
                base: emu.url(),
                ns,
                http: http_client(),
                emu: Some(emu),
            }
        }
    }
}

/// For tests of the embedded emulator itself (levers, lifecycle): always an embedded emulator,
/// whatever `FIREBASE_DATABASE_EMULATOR_HOST` says.
async fn embedded_target() -> Target {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    Target {
        base: emu.url(),
        ns: unique_ns(),
        http: http_client(),
        emu: Some(emu),
    }
}

impl Target {
    /// `<base>/<path>.json?ns=<ns>&<query>`
    fn url(&self, path: &str, query: &str) -> String {
        let path = path.trim_matches('/');
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("&{query}")
        };
        format!("{}/{path}.json?ns={}{q}", self.base, self.ns)
    }

    async fn send(
        &self,
        method: Method,
        url: String,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Resp {
        let mut req = self.http.request(method, url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let h = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let (etag, content_type) = (h("etag"), h("content-type"));
        let text = res.text().await.unwrap();
        Resp {
            status,
            etag,
            content_type,
            text,
        }
    }

    async fn req(
        &self,
        method: Method,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        self.send(
            method,
            self.url(path, query),
            headers,
            body.map(|b| b.to_string()),
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.req(Method::GET, path, "", &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text);
        r.json()
    }

    /// GET with `X-Firebase-ETag: true`: (value, etag).
    async fn get_etag(&self, path: &str) -> (Value, String) {
        let r = self
            .req(Method::GET, path, "", &[("X-Firebase-ETag", "true")], None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text);
        (r.json(), r.etag())
    }

    async fn put(&self, path: &str, value: Value) -> Value {
        let r = self.req(Method::PUT, path, "", &[], Some(value)).await;
        assert_eq!(r.status, StatusCode::OK, "PUT {path}: {}", r.text);
        r.json()
    }

    /// A test lever of the embedded emulator.
    async fn lever(&self, method: Method, name: &str, body: Option<Value>) -> Value {
        let r = self
            .send(
                method,
                format!("{}/.emulator/{name}", self.base),
                &[],
                body.map(|b| b.to_string()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "lever {name}: {}", r.text);
        r.json()
    }

    async fn finish(self) {
        if let Some(emu) = self.emu {
            emu.stop().await.unwrap();
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(ks: &[&str]) -> BTreeSet<String> {
    ks.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Plain methods, pruning, errors

#[tokio::test]
async fn get_missing_is_null() {
    let t = target().await;
    let r = t.req(Method::GET, "nothing/here", "", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), Value::Null);
    assert!(r.content_type.unwrap().starts_with("application/json"));
    assert_eq!(r.etag, None, "ETags only come when asked for");
    t.finish().await;
}

#[tokio::test]
async fn put_get_delete() {
    let t = target().await;
    let v = json!({"name": "x", "n": 1, "ok": true, "nested": {"deep": {"s": "t"}}});
    assert_eq!(t.put("a/b", v.clone()).await, v);
    assert_eq!(t.get("a/b").await, v);
    assert_eq!(t.get("a/b/nested/deep/s").await, json!("t"));
    assert_eq!(t.get("a").await, json!({"b": v}));
    assert_eq!(t.put("a/b/n", json!(2.5)).await, json!(2.5));
    assert_eq!(
        t.put("a/b/name", json!("é ü \"quoted\"")).await,
        json!("é ü \"quoted\"")
    );
    let r = t.req(Method::DELETE, "a/b/nested", "", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), Value::Null);
    assert_eq!(
        t.get("a/b").await,
        json!({"name": "é ü \"quoted\"", "n": 2.5, "ok": true})
    );
    // PUT replaces the node.
    assert_eq!(t.put("a/b", json!({"only": 1})).await, json!({"only": 1}));
    assert_eq!(t.get("a/b").await, json!({"only": 1}));
    // DELETE of a missing node is fine.
    let r = t.req(Method::DELETE, "never/was", "", &[], None).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, Value::Null));
    t.finish().await;
}

#[tokio::test]
async fn empty_objects_and_nulls_are_pruned() {
    let t = target().await;
    t.put("p/keep", json!(1)).await;
    t.put("p/x/y", json!(1)).await;
    // Writing {} or null deletes; empty parents disappear.
    t.put("p/x/y", json!({})).await;
    assert_eq!(t.get("p").await, json!({"keep": 1}));
    t.put("p/keep", Value::Null).await;
    assert_eq!(t.get("p").await, Value::Null);
    t.put("q", json!({"a": {"b": {}}, "c": null, "d": 1})).await;
    assert_eq!(t.get("q").await, json!({"d": 1}));
    t.put("q/d", json!({"e": {}})).await;
    assert_eq!(t.get("q").await, Value::Null);
    assert_eq!(t.get("").await, Value::Null);
    t.finish().await;
}

#[tokio::test]
async fn arrays_round_trip() {
    let t = target().await;
    t.put("arr", json!(["a", "b", "c"])).await;
    assert_eq!(t.get("arr").await, json!(["a", "b", "c"]));
    assert_eq!(t.get("arr/1").await, json!("b"));
    t.put("arr/1", Value::Null).await;
    assert_eq!(t.get("arr").await, json!(["a", null, "c"]));
    t.finish().await;
}

#[tokio::test]
async fn invalid_json_and_bad_keys_are_400_with_error_bodies() {
    let t = target().await;
    let r = t
        .send(Method::PUT, t.url("a", ""), &[], Some("{not json".into()))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    let r = t
        .send(Method::PUT, t.url("a", ""), &[], Some(String::new()))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    let r = t
        .send(Method::POST, t.url("a", ""), &[], Some("[1,".into()))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    let r = t
        .send(Method::PATCH, t.url("a", ""), &[], Some("nope".into()))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    // Bad keys in the path ('.' '$' '#' '[' ']'; '#' and brackets percent-encoded).
    for p in ["a.b", "x/1.2.3", "a$b", "a%23b", "a%5Bb", "a%5Db"] {
        let r = t.req(Method::PUT, p, "", &[], Some(json!(1))).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = t.req(Method::GET, p, "", &[], None).await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
    // Bad keys inside written data, at any depth, for PUT, POST and PATCH.
    for bad in [
        json!({"a.b": 1}),
        json!({"ok": {"x$": 1}}),
        json!({"ok": {"deep": {"#": 1}}}),
        json!({"[": 1}),
        json!({"tab\t": 1}),
    ] {
        let r = t.req(Method::PUT, "k", "", &[], Some(bad.clone())).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = t.req(Method::POST, "k", "", &[], Some(bad.clone())).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = t
            .req(Method::PATCH, "k", "", &[], Some(json!({"child": bad})))
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
    let r = t
        .req(Method::PATCH, "k", "", &[], Some(json!({"a.b/c": 1})))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    // Key length: 768 bytes fine, 769 not.
    let long_ok = "k".repeat(768);
    t.put("len", json!({ long_ok.clone(): 1 })).await;
    assert_eq!(t.get(&format!("len/{long_ok}")).await, json!(1));
    let r = t
        .req(
            Method::PUT,
            "len",
            "",
            &[],
            Some(json!({ "k".repeat(769): 1 })),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    // Nothing of the refused writes was stored.
    assert_eq!(keys(&t.get("").await), set(&["len"]));
    t.finish().await;
}

#[tokio::test]
async fn depth_of_32_is_400() {
    let t = target().await;
    let path31 = vec!["d"; 31].join("/");
    t.put(&path31, json!(1)).await;
    let path32 = vec!["d"; 32].join("/");
    t.req(Method::PUT, &path32, "", &[], Some(json!(1)))
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    // Depth counts the path plus the nesting of the data.
    let path30 = vec!["e"; 30].join("/");
    t.put(&path30, json!({"x": 1})).await;
    t.req(Method::PUT, &path30, "", &[], Some(json!({"x": {"y": 1}})))
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    t.finish().await;
}

#[tokio::test]
async fn not_a_data_endpoint() {
    let t = embedded_target().await;
    let r = t
        .send(
            Method::GET,
            format!("{}/a/b?ns={}", t.base, t.ns),
            &[],
            None,
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND);
    let r = t
        .send(
            Method::PUT,
            format!("{}/a/b?ns={}", t.base, t.ns),
            &[],
            Some("1".into()),
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(t.get("a/b").await, Value::Null);
    t.finish().await;
}

#[tokio::test]
async fn namespaces_are_separate() {
    let t = target().await;
    t.put("x", json!("mine")).await;
    let other = format!("{}/x.json?ns={}", t.base, unique_ns());
    let r = t.send(Method::GET, other, &[], None).await;
    assert_eq!(r.json(), Value::Null);
    if let Some(emu) = &t.emu {
        assert_eq!(emu.export(), json!({ t.ns.clone(): {"x": "mine"} }));
    }
    t.finish().await;
}

#[tokio::test]
async fn import_and_export() {
    let t = target_with(Some(json!({"seed": {"a": 1, "list": [1, 2]}}))).await;
    assert_eq!(t.get("seed").await, json!({"a": 1, "list": [1, 2]}));
    if let Some(emu) = &t.emu {
        t.put("seed/b", json!(2)).await;
        assert_eq!(
            emu.export(),
            json!({ t.ns.clone(): {"seed": {"a": 1, "b": 2, "list": [1, 2]}} })
        );
        let bad = Emulator::start(EmulatorOptions {
            import: Some(json!({"ns": {"a.b": 1}})),
            ..Default::default()
        })
        .await;
        assert!(bad.is_err());
    }
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// ETags and conditional requests

#[tokio::test]
async fn missing_node_has_null_etag() {
    let t = target().await;
    let (v, tag) = t.get_etag("no/such/node").await;
    assert_eq!(v, Value::Null);
    assert_eq!(tag, "null_etag");
    t.finish().await;
}

#[tokio::test]
async fn etags_follow_content() {
    let t = target().await;
    let r = t
        .req(
            Method::PUT,
            "e",
            "",
            &[("X-Firebase-ETag", "true")],
            Some(json!({"a": 1, "b": {"c": 2}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let put_tag = r.etag();
    assert_ne!(put_tag, "null_etag");
    let (v, tag) = t.get_etag("e").await;
    assert_eq!(v, json!({"a": 1, "b": {"c": 2}}));
    assert_eq!(tag, put_tag, "PUT returns the new ETag");
    // A shallow GET carries the same ETag as the full value.
    let r = t
        .req(
            Method::GET,
            "e",
            "shallow=true",
            &[("X-Firebase-ETag", "true")],
            None,
        )
        .await;
    assert_eq!(r.json(), json!({"a": true, "b": true}));
    assert_eq!(r.etag(), tag);
    // A change below the node changes its ETag; writing the same value back restores it.
    t.put("e/b/c", json!(3)).await;
    let (_, changed) = t.get_etag("e").await;
    assert_ne!(changed, tag);
    t.put("e/b/c", json!(2)).await;
    assert_eq!(t.get_etag("e").await.1, tag);
    // Without asking there is no ETag.
    let r = t.req(Method::PUT, "e/a", "", &[], Some(json!(5))).await;
    assert_eq!(r.etag, None);
    // DELETE asked for an ETag gives null_etag.
    let r = t
        .req(
            Method::DELETE,
            "e",
            "",
            &[("X-Firebase-ETag", "true")],
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.etag()),
        (StatusCode::OK, "null_etag".to_string())
    );
    t.finish().await;
}

#[tokio::test]
async fn conditional_put_matches_or_412s() {
    let t = target().await;
    t.put("lock", json!({"owner": "a", "n": 1})).await;
    let (_, tag) = t.get_etag("lock").await;
    // Match: written, and the new ETag comes back when asked for.
    let r = t
        .req(
            Method::PUT,
            "lock",
            "",
            &[("if-match", &tag), ("X-Firebase-ETag", "true")],
            Some(json!({"owner": "b", "n": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json(), json!({"owner": "b", "n": 2}));
    let new_tag = r.etag();
    assert_ne!(new_tag, tag);
    assert_eq!(
        t.get_etag("lock").await,
        (json!({"owner": "b", "n": 2}), new_tag.clone())
    );
    // Stale ETag: 412, nothing written, body = current value as plain JSON, ETag = current.
    let r = t
        .req(
            Method::PUT,
            "lock",
            "",
            &[("if-match", &tag)],
            Some(json!({"owner": "c"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.json(), json!({"owner": "b", "n": 2}));
    assert_eq!(r.etag(), new_tag);
    assert_eq!(t.get("lock").await, json!({"owner": "b", "n": 2}));
    // A made-up ETag, a list and '*' are mismatches too.
    for bogus in ["garbage", "*", &format!("{new_tag}, {tag}")] {
        let r = t
            .req(
                Method::PUT,
                "lock",
                "",
                &[("if-match", bogus)],
                Some(json!(1)),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::PRECONDITION_FAILED,
            "if-match {bogus}"
        );
    }
    // A 412 on a child reports the child's value and ETag; a missing node reports null.
    let r = t
        .req(
            Method::PUT,
            "lock/owner",
            "",
            &[("if-match", "x")],
            Some(json!("z")),
        )
        .await;
    assert_eq!(
        (r.status, r.json(), r.etag()),
        (
            StatusCode::PRECONDITION_FAILED,
            json!("b"),
            t.get_etag("lock/owner").await.1
        )
    );
    let r = t
        .req(
            Method::PUT,
            "missing",
            "",
            &[("if-match", &new_tag)],
            Some(json!("z")),
        )
        .await;
    assert_eq!(
        (r.status, r.json(), r.etag()),
        (
            StatusCode::PRECONDITION_FAILED,
            Value::Null,
            "null_etag".to_string()
        )
    );
    assert_eq!(t.get("missing").await, Value::Null);
    // Conditional PUT of null deletes.
    let r = t
        .req(
            Method::PUT,
            "lock",
            "",
            &[("if-match", &new_tag)],
            Some(Value::Null),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.get("lock").await, Value::Null);
    t.finish().await;
}

#[tokio::test]
async fn null_etag_means_create_only_if_absent() {
    let t = target().await;
    let r = t
        .req(
            Method::PUT,
            "once",
            "",
            &[("if-match", "null_etag")],
            Some(json!({"by": "first"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json(), json!({"by": "first"}));
    let r = t
        .req(
            Method::PUT,
            "once",
            "",
            &[("if-match", "null_etag")],
            Some(json!({"by": "second"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.json(), json!({"by": "first"}));
    assert_eq!(r.etag(), t.get_etag("once").await.1);
    assert_eq!(t.get("once").await, json!({"by": "first"}));
    t.finish().await;
}

#[tokio::test]
async fn conditional_delete() {
    let t = target().await;
    t.put("d", json!({"v": 1})).await;
    let (_, tag) = t.get_etag("d").await;
    t.put("d/v", json!(2)).await;
    let r = t
        .req(Method::DELETE, "d", "", &[("if-match", &tag)], None)
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.json(), json!({"v": 2}));
    let current = r.etag();
    assert_eq!(t.get("d").await, json!({"v": 2}));
    let r = t
        .req(Method::DELETE, "d", "", &[("if-match", &current)], None)
        .await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, Value::Null));
    assert_eq!(t.get("d").await, Value::Null);
    // Deleting a missing node conditionally on null_etag succeeds.
    let r = t
        .req(Method::DELETE, "d", "", &[("if-match", "null_etag")], None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    t.finish().await;
}

#[tokio::test]
async fn if_match_on_get_post_patch_is_400() {
    let t = target().await;
    t.put("c", json!({"v": 1})).await;
    let (_, tag) = t.get_etag("c").await;
    for (m, body) in [
        (Method::GET, None),
        (Method::POST, Some(json!({"x": 1}))),
        (Method::PATCH, Some(json!({"v": 2}))),
    ] {
        let r = t.req(m.clone(), "c", "", &[("if-match", &tag)], body).await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
    assert_eq!(t.get("c").await, json!({"v": 1}), "nothing written");
    t.finish().await;
}

#[tokio::test]
async fn if_none_match_gives_304_when_unchanged() {
    let t = target().await;
    t.put("n", json!({"v": 1})).await;
    let (_, tag) = t.get_etag("n").await;
    let r = t
        .req(Method::GET, "n", "", &[("if-none-match", &tag)], None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(r.text, "");
    t.put("n/v", json!(2)).await;
    let r = t
        .req(
            Method::GET,
            "n",
            "",
            &[("if-none-match", &tag), ("X-Firebase-ETag", "true")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"v": 2}));
    assert_ne!(r.etag(), tag);
    // null_etag on a missing node.
    let r = t
        .req(
            Method::GET,
            "gone",
            "",
            &[("if-none-match", "null_etag")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    t.finish().await;
}

/// Contention: 20 clients each add 1 to one counter 25 times with conditional-PUT loops.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_compare_and_set_increments_are_exact() {
    const TASKS: usize = 20;
    const INCREMENTS: usize = 25;
    let t = Arc::new(target().await);
    t.put("counter", json!(0)).await;
    let conflicts = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let (t, conflicts, barrier) = (t.clone(), conflicts.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            let http = http_client();
            let url = t.url("counter", "");
            barrier.wait().await;
            for _ in 0..INCREMENTS {
                let res = http
                    .get(&url)
                    .header("X-Firebase-ETag", "true")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK);
                let mut tag = res.headers()["etag"].to_str().unwrap().to_string();
                let mut value: Value = res.json().await.unwrap();
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts < 10_000, "no progress");
                    let next = value.as_i64().unwrap() + 1;
                    let res = http
                        .put(&url)
                        .header("if-match", &tag)
                        .body(next.to_string())
                        .send()
                        .await
                        .unwrap();
                    match res.status() {
                        StatusCode::OK => break,
                        StatusCode::PRECONDITION_FAILED => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                            tag = res.headers()["etag"].to_str().unwrap().to_string();
                            value = res.json().await.unwrap();
                        }
                        other => panic!("unexpected {other}: {}", res.text().await.unwrap()),
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(t.get("counter").await, json!(TASKS * INCREMENTS));
    let conflicts = conflicts.load(Ordering::Relaxed);
    eprintln!("{conflicts} conflicts (412s)");
    assert!(
        conflicts > 0,
        "no 412 happened: contention was not exercised"
    );
    if let Ok(t) = Arc::try_unwrap(t) {
        t.finish().await;
    }
}

/// firebase-admin-python's `db` module over REST: `get_if_changed` sends `if-none-match` and
/// `set_if_unchanged` sends `if-match`, neither with `X-Firebase-ETag`, and both return the
/// response's `ETag`; `transaction` reads with `get(etag=True)` and loops on
/// `set_if_unchanged`. Its integration tests against the real service (test_get_if_changed,
/// test_set_if_unchanged, test_transaction) expect a string ETag from every one of these calls.
#[tokio::test]
async fn python_admin_sdk_conditional_requests_get_etags_unasked() {
    let t = target().await;
    let data = json!({"dinosaurs": {"a": 1}, "scores": {"b": 2}});
    t.put("python", data.clone()).await;

    // get_if_changed('wrong_etag') -> (True, data, <etag>)
    let r = t
        .req(
            Method::GET,
            "python",
            "",
            &[("if-none-match", "wrong_etag")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json(), data);
    let etag = r
        .etag
        .clone()
        .expect("an ETag on a conditional GET, unasked");
    assert_eq!(etag, t.get_etag("python").await.1, "the current ETag");
    // get_if_changed(etag) -> (False, None, None): 304, no body.
    let r = t
        .req(Method::GET, "python", "", &[("if-none-match", &etag)], None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(r.text, "");

    // set_if_unchanged('invalid-etag', v) -> (False, current, <etag>): a 412 with both.
    let pushed = json!({"name": "Edward Cope", "since": 1800});
    t.put("python/users/edward", pushed.clone()).await;
    let update = json!({"name": "Jack Horner", "since": 1940});
    let r = t
        .req(
            Method::PUT,
            "python/users/edward",
            "",
            &[("if-match", "invalid-etag")],
            Some(update.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.json(), pushed);
    let etag = r.etag.clone().expect("an ETag on a 412");
    // set_if_unchanged(etag, v) -> (True, v, <new etag>), the new ETag differing from the old.
    let r = t
        .req(
            Method::PUT,
            "python/users/edward",
            "",
            &[("if-match", &etag)],
            Some(update.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json(), update);
    let new_etag = r
        .etag
        .clone()
        .expect("an ETag on a conditional PUT, unasked");
    assert_ne!(new_etag, etag);
    assert_eq!(
        t.get_etag("python/users/edward").await,
        (update.clone(), new_etag.clone())
    );
    // ... also under print=silent (204).
    let r = t
        .req(
            Method::PUT,
            "python/users/edward",
            "print=silent",
            &[("if-match", &new_etag)],
            Some(json!({"name": "Jack Horner", "since": 1941})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let silent_etag = r.etag.clone().expect("an ETag on a silent conditional PUT");
    assert_eq!(silent_etag, t.get_etag("python/users/edward").await.1);

    // transaction(): get(etag=True), then set_if_unchanged until it lands. Another writer gets
    // in between once; the loop continues from the 412's value and ETag alone.
    let (mut value, mut etag) = t.get_etag("python/users/edward").await;
    t.put("python/users/edward/since", json!(2000)).await;
    let mut tries = 0;
    let committed = loop {
        tries += 1;
        assert!(tries <= 25, "transaction aborted after failed retries");
        let mut next = value.clone();
        next["name"] = json!(format!("{} Owen", value["name"].as_str().unwrap()));
        next["since"] = json!(value["since"].as_i64().unwrap() + 4);
        let r = t
            .req(
                Method::PUT,
                "python/users/edward",
                "",
                &[("if-match", &etag)],
                Some(next.clone()),
            )
            .await;
        let tag = r.etag.clone().expect("an ETag on every conditional PUT");
        if r.status == StatusCode::OK {
            break next;
        }
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
        (value, etag) = (r.json(), tag);
    };
    assert_eq!(tries, 2);
    assert_eq!(
        committed,
        json!({"name": "Jack Horner Owen", "since": 2004})
    );
    assert_eq!(t.get("python/users/edward").await, committed);

    // A conditional DELETE answers with the ETag of what is now there: null_etag.
    let (_, tag) = t.get_etag("python/users/edward").await;
    let r = t
        .req(
            Method::DELETE,
            "python/users/edward",
            "",
            &[("if-match", &tag)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.etag.as_deref(), Some("null_etag"));
    // Plain requests still get no ETag unless asked for.
    let r = t.req(Method::GET, "python", "", &[], None).await;
    assert_eq!(r.etag, None);
    let r = t
        .req(Method::PUT, "python/x", "", &[], Some(json!(1)))
        .await;
    assert_eq!(r.etag, None);
    t.finish().await;
}

/// Strings: at most 10 MB of UTF-8.
#[tokio::test]
async fn strings_over_10_mb_are_400() {
    let t = target().await;
    let ten_mb = 10 * 1024 * 1024;
    let r = t
        .req(
            Method::PUT,
            "s",
            "print=silent",
            &[],
            Some(json!("x".repeat(ten_mb))),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for body in [
        json!("x".repeat(ten_mb + 1)),
        json!({"deep": {"text": "é".repeat(ten_mb / 2 + 1)}}),
    ] {
        let r = t.req(Method::PUT, "s2", "", &[], Some(body)).await;
        let msg = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(msg.contains("10 MB"), "{msg}");
    }
    let r = t
        .req(
            Method::PATCH,
            "",
            "",
            &[],
            Some(json!({"s3/a": "y".repeat(ten_mb + 1)})),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    assert_eq!(t.get("s2").await, Value::Null, "nothing written");
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// print, shallow, queries

#[tokio::test]
async fn print_silent_is_204_and_pretty_is_json() {
    let t = target().await;
    let silent = |r: Resp| {
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        assert_eq!(r.text, "");
    };
    silent(
        t.req(Method::PUT, "s/a", "print=silent", &[], Some(json!(1)))
            .await,
    );
    silent(
        t.req(
            Method::POST,
            "s/list",
            "print=silent",
            &[],
            Some(json!("x")),
        )
        .await,
    );
    silent(
        t.req(
            Method::PATCH,
            "s",
            "print=silent",
            &[],
            Some(json!({"b": 2})),
        )
        .await,
    );
    silent(t.req(Method::GET, "s", "print=silent", &[], None).await);
    let v = t.get("s").await;
    assert_eq!((v["a"].clone(), v["b"].clone()), (json!(1), json!(2)));
    assert_eq!(
        v["list"].as_object().unwrap().len(),
        1,
        "the silent POST wrote"
    );
    let r = t.req(Method::GET, "s", "print=pretty", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), v);
    assert!(r.text.contains('\n'), "pretty output is indented");
    let r = t
        .req(
            Method::PUT,
            "s/c",
            "print=pretty",
            &[],
            Some(json!({"d": 1})),
        )
        .await;
    assert_eq!(r.json(), json!({"d": 1}));
    t.finish().await;
}

#[tokio::test]
async fn shallow_reads() {
    let t = target().await;
    t.put("sh", json!({"a": {"deep": 1}, "b": 2, "c": "s"}))
        .await;
    let r = t.req(Method::GET, "sh", "shallow=true", &[], None).await;
    assert_eq!(r.json(), json!({"a": true, "b": true, "c": true}));
    let r = t.req(Method::GET, "sh/b", "shallow=true", &[], None).await;
    assert_eq!(r.json(), json!(2));
    let r = t
        .req(Method::GET, "sh/none", "shallow=true", &[], None)
        .await;
    assert_eq!(r.json(), Value::Null);
    let r = t
        .req(Method::GET, "sh", "shallow=true&print=pretty", &[], None)
        .await;
    assert_eq!(r.json(), json!({"a": true, "b": true, "c": true}));
    for mixed in [
        "shallow=true&orderBy=%22%24key%22",
        "shallow=true&orderBy=%22%24key%22&limitToFirst=1",
    ] {
        let r = t.req(Method::GET, "sh", mixed, &[], None).await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
    t.finish().await;
}

/// URL-encode a query value.
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn queries_with_json_arguments() {
    let t = target().await;
    t.put(
        "people",
        json!({
            "carol": {"age": 30, "role": "admin"},
            "alice": {"age": 25, "role": "user"},
            "bob": {"age": 25, "role": "admin"},
            "dave": {"role": "user"},
            "erin": {"age": "old"},
            "2": {"age": 40},
            "10": {"age": 41},
        }),
    )
    .await;
    let q = |params: &[(&str, &str)]| {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect();
        let t = &t;
        let shown = format!("{params:?}");
        async move {
            let r = t
                .req(Method::GET, "people", &query.join("&"), &[], None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{shown}: {}", r.text);
            keys(&r.json())
        }
    };
    assert_eq!(
        q(&[("orderBy", "\"age\""), ("equalTo", "25")]).await,
        set(&["alice", "bob"])
    );
    assert_eq!(
        q(&[("orderBy", "\"age\""), ("startAt", "26")]).await,
        set(&["carol", "2", "10", "erin"])
    );
    assert_eq!(
        q(&[("orderBy", "\"age\""), ("startAt", "26"), ("endAt", "40")]).await,
        set(&["carol", "2"])
    );
    assert_eq!(
        q(&[("orderBy", "\"age\""), ("startAt", "\"a\"")]).await,
        set(&["erin"])
    );
    // null < numbers: dave (no age) first; ties by key (alice < bob).
    assert_eq!(
        q(&[("orderBy", "\"age\""), ("limitToFirst", "2")]).await,
        set(&["dave", "alice"])
    );
    assert_eq!(
        q(&[("orderBy", "\"age\""), ("limitToFirst", "3")]).await,
        set(&["dave", "alice", "bob"])
    );
    // strings after numbers: erin is last.
    assert_eq!(
        q(&[("orderBy", "\"age\""), ("limitToLast", "2")]).await,
        set(&["10", "erin"])
    );
    assert_eq!(
        q(&[("orderBy", "\"role\""), ("equalTo", "\"admin\"")]).await,
        set(&["bob", "carol"])
    );
    // $key: integer keys first, numerically.
    assert_eq!(
        q(&[("orderBy", "\"$key\""), ("limitToFirst", "2")]).await,
        set(&["2", "10"])
    );
    assert_eq!(
        q(&[
            ("orderBy", "\"$key\""),
            ("startAt", "\"b\""),
            ("endAt", "\"d\"")
        ])
        .await,
        set(&["bob", "carol"])
    );
    assert_eq!(
        q(&[("orderBy", "\"$key\""), ("limitToLast", "1")]).await,
        set(&["erin"])
    );
    // Results carry the whole children.
    let r = t
        .req(
            Method::GET,
            "people",
            &format!("orderBy={}&equalTo=30", enc("\"age\"")),
            &[],
            None,
        )
        .await;
    assert_eq!(r.json(), json!({"carol": {"age": 30, "role": "admin"}}));
    t.finish().await;
}

#[tokio::test]
async fn value_ordering() {
    let t = target().await;
    t.put(
        "scores",
        json!({"a": 3, "b": "x", "c": true, "d": 1, "e": false, "f": {"o": 1}, "g": 2}),
    )
    .await;
    let q = |query: String| {
        let t = &t;
        async move {
            let r = t.req(Method::GET, "scores", &query, &[], None).await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
            keys(&r.json())
        }
    };
    let by_value = enc("\"$value\"");
    // false < true < numbers < strings < objects
    assert_eq!(
        q(format!("orderBy={by_value}&limitToFirst=2")).await,
        set(&["e", "c"])
    );
    assert_eq!(
        q(format!("orderBy={by_value}&startAt=1&endAt=2")).await,
        set(&["d", "g"])
    );
    assert_eq!(
        q(format!("orderBy={by_value}&limitToLast=2")).await,
        set(&["b", "f"])
    );
    assert_eq!(
        q(format!("orderBy={by_value}&equalTo=true")).await,
        set(&["c"])
    );
    t.finish().await;
}

#[tokio::test]
async fn bad_queries_are_400() {
    let t = target().await;
    t.put("bq", json!({"a": 1})).await;
    for query in [
        "startAt=1".to_string(),      // filter without orderBy
        "limitToFirst=1".to_string(), // limit without orderBy
        "orderBy=age".to_string(),    // not JSON-quoted
        format!("orderBy={}&startAt=abc", enc("\"$value\"")), // unquoted string value
        format!("orderBy={}&limitToFirst=abc", enc("\"$value\"")), // not a number
        format!("orderBy={}&limitToFirst=-1", enc("\"$value\"")), // negative
    ] {
        let r = t.req(Method::GET, "bq", &query, &[], None).await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Server values, push ids, PATCH

#[tokio::test]
async fn server_values_are_resolved() {
    let t = target().await;
    let before = now_ms();
    let echo = t
        .put(
            "sv",
            json!({"at": {".sv": "timestamp"}, "n": {".sv": {"increment": 5}}}),
        )
        .await;
    let after = now_ms();
    let at = echo["at"]
        .as_i64()
        .expect("PUT echo has the resolved timestamp");
    assert!(
        before - 1000 <= at && at <= after + 1000,
        "{before} <= {at} <= {after}"
    );
    assert_eq!(
        echo["n"],
        json!(5),
        "increment of a missing value starts at 0"
    );
    assert_eq!(t.get("sv").await, echo);
    assert_eq!(
        t.put("sv/n", json!({".sv": {"increment": 2}})).await,
        json!(7)
    );
    assert_eq!(
        t.put("sv/n", json!({".sv": {"increment": -10}})).await,
        json!(-3)
    );
    assert_eq!(
        t.put("sv/n", json!({".sv": {"increment": 0.5}})).await,
        json!(-2.5)
    );
    t.put("sv/s", json!("text")).await;
    assert_eq!(
        t.put("sv/s", json!({".sv": {"increment": 1}})).await,
        json!(1),
        "non-numeric counts as 0"
    );
    // Inside a conditional PUT.
    let (_, tag) = t.get_etag("sv").await;
    let echo = t
        .req(
            Method::PUT,
            "sv",
            "",
            &[("if-match", &tag)],
            Some(json!({"at": {".sv": "timestamp"}, "n": {".sv": {"increment": 1}}})),
        )
        .await;
    assert_eq!(echo.status, StatusCode::OK, "{}", echo.text);
    let echo = echo.json();
    assert!(echo["at"].as_i64().unwrap() >= at);
    assert_eq!(echo["n"], json!(-1.5));
    let r = t
        .req(
            Method::PUT,
            "lock",
            "",
            &[("if-match", "null_etag")],
            Some(json!({"owner": "me", "at": {".sv": "timestamp"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["at"].is_i64());
    // In PATCH (multi-path) and POST.
    let r = t
        .req(
            Method::PATCH,
            "sv",
            "",
            &[],
            Some(json!({"n": {".sv": {"increment": 1.5}}, "x/at": {".sv": "timestamp"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.get("sv/n").await, json!(0));
    assert!(t.get("sv/x/at").await.as_i64().unwrap() >= at);
    let r = t
        .req(
            Method::POST,
            "log",
            "",
            &[],
            Some(json!({"at": {".sv": "timestamp"}})),
        )
        .await;
    let name = r.json()["name"].as_str().unwrap().to_string();
    assert!(t.get(&format!("log/{name}/at")).await.is_i64());
    // Unknown server values are refused.
    t.req(
        Method::PUT,
        "sv/bad",
        "",
        &[],
        Some(json!({".sv": "nonsense"})),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST);
    t.finish().await;
}

#[tokio::test]
async fn post_creates_time_ordered_push_ids() {
    let t = target().await;
    let mut names = Vec::new();
    for i in 0..30 {
        let r = t
            .req(Method::POST, "items", "", &[], Some(json!({"i": i})))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let v = r.json();
        assert_eq!(keys(&v), set(&["name"]));
        let name = v["name"].as_str().unwrap().to_string();
        assert_eq!(name.len(), 20, "{name}");
        assert!(name.chars().all(|c| PUSH_CHARS.contains(c)), "{name}");
        names.push(name);
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, names, "push ids sort in creation order");
    sorted.dedup();
    assert_eq!(sorted.len(), 30);
    let all = t.get("items").await;
    for (i, n) in names.iter().enumerate() {
        assert_eq!(all[n], json!({"i": i}));
    }
    t.finish().await;
}

#[tokio::test]
async fn multi_path_patch() {
    let t = target().await;
    t.put(
        "u",
        json!({"a": {"b": 0, "keep": 1}, "c": 1, "d": {"old": true}}),
    )
    .await;
    let patch = json!({"a/b": 1, "c": null, "d/e/f": "x", "g": {"h": 2}});
    let r = t
        .req(Method::PATCH, "u", "", &[], Some(patch.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json(), patch, "PATCH echoes the patch");
    assert_eq!(
        t.get("u").await,
        json!({"a": {"b": 1, "keep": 1}, "d": {"old": true, "e": {"f": "x"}}, "g": {"h": 2}})
    );
    // A plain child replaced by PATCH is replaced whole (not merged).
    t.req(Method::PATCH, "u", "", &[], Some(json!({"d": {"new": 1}})))
        .await;
    assert_eq!(t.get("u/d").await, json!({"new": 1}));
    // Atomic: one bad path refuses the whole update.
    let r = t
        .req(
            Method::PATCH,
            "u",
            "",
            &[],
            Some(json!({"a/b": 99, "bad.key": 1})),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    assert_eq!(t.get("u/a/b").await, json!(1));
    // Non-object bodies are refused.
    t.req(Method::PATCH, "u", "", &[], Some(json!(5)))
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Event streams

struct Sse {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl Sse {
    async fn open(t: &Target, path: &str) -> Sse {
        let res = t
            .http
            .get(t.url(path, ""))
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Sse {
            stream: res.bytes_stream().boxed(),
            buf: Vec::new(),
        }
    }

    /// Next event (name, data); None when the stream ended.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw_bytes: Vec<u8> = self.buf.drain(..end + 2).collect();
                let raw = String::from_utf8(raw_bytes).expect("UTF-8 event");
                let mut name = String::new();
                let mut data = String::new();
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                return Some((
                    name,
                    serde_json::from_str(&data)
                        .unwrap_or_else(|e| panic!("event data {data:?}: {e}")),
                ));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("an event within 10 s")?;
            self.buf.extend_from_slice(&chunk.ok()?);
        }
    }

    /// Next event other than keep-alive.
    async fn next_data(&mut self) -> (String, Value) {
        loop {
            let ev = self.next().await.expect("stream still open");
            if ev.0 != "keep-alive" {
                return ev;
            }
        }
    }
}

#[tokio::test]
async fn event_stream_puts_and_patches() {
    let t = target().await;
    t.put("room/a", json!(1)).await;
    let mut s = Sse::open(&t, "room").await;
    assert_eq!(
        s.next_data().await,
        ("put".into(), json!({"path": "/", "data": {"a": 1}}))
    );
    // A descendant.
    t.put("room/b/c", json!("x")).await;
    assert_eq!(
        s.next_data().await,
        ("put".into(), json!({"path": "/b/c", "data": "x"}))
    );
    // The node itself.
    t.put("room", json!({"z": 1})).await;
    assert_eq!(
        s.next_data().await,
        ("put".into(), json!({"path": "/", "data": {"z": 1}}))
    );
    // An ancestor.
    t.put("", json!({"room": {"y": 2}, "other": 1})).await;
    assert_eq!(
        s.next_data().await,
        ("put".into(), json!({"path": "/", "data": {"y": 2}}))
    );
    // A multi-path update at the node.
    t.req(
        Method::PATCH,
        "room",
        "",
        &[],
        Some(json!({"y": 3, "w/v": true})),
    )
    .await;
    let (name, data) = s.next_data().await;
    assert_eq!(name, "patch");
    assert_eq!(data["path"], json!("/"));
    assert_eq!(data["data"], json!({"y": 3, "w/v": true}));
    // A delete.
    let r = t.req(Method::DELETE, "room/y", "", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        s.next_data().await,
        ("put".into(), json!({"path": "/y", "data": null}))
    );
    // A write elsewhere sends nothing: the next event is the one after it.
    t.put("other", json!(2)).await;
    t.put("room/q", json!(1)).await;
    assert_eq!(
        s.next_data().await,
        ("put".into(), json!({"path": "/q", "data": 1}))
    );
    // Server values arrive resolved.
    t.put("room/n", json!({".sv": {"increment": 4}})).await;
    assert_eq!(
        s.next_data().await,
        ("put".into(), json!({"path": "/n", "data": 4}))
    );
    t.finish().await;
}

#[tokio::test]
async fn event_stream_keepalive_and_end_on_stop() {
    let t = embedded_target().await;
    t.lever(Method::PUT, "keepalive", Some(json!({"ms": 50})))
        .await;
    let mut s = Sse::open(&t, "k").await;
    assert_eq!(
        s.next().await.unwrap(),
        ("put".into(), json!({"path": "/", "data": null}))
    );
    assert_eq!(s.next().await.unwrap(), ("keep-alive".into(), Value::Null));
    let started = Instant::now();
    t.finish().await;
    // The stream ends once the emulator stops (keep-alives may still be buffered).
    while let Some((name, _)) = s.next().await {
        assert_eq!(name, "keep-alive");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------------------
// Levers (embedded emulator only)

/// Reads whose response would pass the limit (the service's 256 MB; the `limits` lever lowers
/// it) are refused with the service's text, whole reads, shallow reads and queries alike;
/// smaller reads of the same node (a shallow listing, a page) still work.
#[tokio::test]
async fn lever_limits_refuses_reads_over_the_response_size() {
    let t = embedded_target().await;
    assert_eq!(
        t.lever(Method::GET, "limits", None).await,
        json!({"responseBytes": 268435456, "streamAboveBytes": 4194304})
    );
    let users: serde_json::Map<String, Value> = (0..100)
        .map(|i| (format!("u{i:03}"), json!({"name": "x".repeat(90)})))
        .collect();
    t.put("big/users", Value::Object(users)).await;
    let whole = t.req(Method::GET, "big", "", &[], None).await.text.len();
    t.lever(Method::PUT, "limits", Some(json!({"responseBytes": whole})))
        .await;
    assert_eq!(
        t.get("big").await["users"]["u042"]["name"]
            .as_str()
            .unwrap()
            .len(),
        90
    );
    // `{"users":` and `}` are 10 bytes: below this, the users query is too big as well.
    t.lever(
        Method::PUT,
        "limits",
        Some(json!({"responseBytes": whole - 11})),
    )
    .await;
    let too_big =
        "The data requested exceeds the maximum size that can be accessed with a single request.";
    let r = t.req(Method::GET, "big", "", &[], None).await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    let r = t
        .req(
            Method::GET,
            "big/users",
            "orderBy=%22%24key%22&startAt=%22u000%22",
            &[],
            None,
        )
        .await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    // A page and a shallow listing fit.
    let r = t
        .req(
            Method::GET,
            "big/users",
            "orderBy=%22%24key%22&startAt=%22u010%22&limitToFirst=10",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(keys(&r.json()).len(), 10);
    assert_eq!(
        keys(
            &t.req(Method::GET, "big/users", "shallow=true", &[], None)
                .await
                .json()
        )
        .len(),
        100
    );
    // A shallow listing over the limit is refused too.
    t.lever(Method::PUT, "limits", Some(json!({"responseBytes": 100})))
        .await;
    let r = t
        .req(Method::GET, "big/users", "shallow=true", &[], None)
        .await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    // Writes are not reads: a PUT whose echo is large still works.
    let r = t
        .req(Method::PUT, "big/w", "", &[], Some(json!("y".repeat(500))))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t
        .send(
            Method::PUT,
            format!("{}/.emulator/limits", t.base),
            &[],
            Some("{\"responseBytes\": 0}".into()),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    t.lever(Method::POST, "reset", None).await;
    assert_eq!(
        t.lever(Method::GET, "limits", None).await,
        json!({"responseBytes": 268435456, "streamAboveBytes": 4194304})
    );
    t.finish().await;
}

/// Records of every kind a read writes out: objects too big to be packed (a long `bio`) and
/// small ones, arrays, fractions, escaped and non-ASCII text, priorities on objects and on
/// primitives; about 0.9 KB each.
fn mixed_records(n: usize) -> Value {
    let users: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            let v = match i % 4 {
                0 => json!({"name": format!("Zoë \"{i}\"\n"), "score": i as f64 / 7.0,
                            "tags": ["a", "b", i], "bio": "z".repeat(1100), ".priority": i}),
                1 => {
                    json!({"name": format!("u{i}"), "score": -(i as f64), "bio": "y".repeat(1150)})
                }
                2 => json!({".value": format!("only {i}"), ".priority": format!("p{i}")}),
                _ => json!({"n": i, "deep": {"a": {"b": [true, false]}}, "bio": "x".repeat(1200)}),
            };
            (format!("u{i:05}"), v)
        })
        .collect();
    Value::Object(users)
}

/// The reads the streamed-read tests compare, each with `X-Firebase-ETag: true`.
async fn whole_reads(t: &Target) -> Vec<Resp> {
    let mut out = Vec::new();
    for path in ["big", "big/users"] {
        for query in ["", "format=export"] {
            let r = t
                .req(
                    Method::GET,
                    path,
                    query,
                    &[("X-Firebase-ETag", "true")],
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{path}?{query}: {}", r.text);
            out.push(r);
        }
    }
    out
}

async fn streamed_reads(t: &Target) -> u64 {
    t.lever(Method::GET, "requests", None).await["streamedReads"]
        .as_u64()
        .unwrap()
}

/// A plain read of an object whose JSON passes the `limits` lever's `streamAboveBytes` is
/// streamed from a snapshot (counted in `streamedReads`) and answers exactly what the same read
/// answers unstreamed — status, bytes, content type, ETag — plain and `format=export`; smaller
/// nodes, shallow reads, queries and `print=pretty` are rendered whole as before.
#[tokio::test]
async fn lever_limits_big_reads_are_streamed_with_the_same_bytes() {
    let t = embedded_target().await;
    t.put("big/users", mixed_records(2_000)).await;
    t.put("big/n", json!(1.5)).await;
    // About 1.8 MB: under the default 4 MB, rendered whole.
    let whole = whole_reads(&t).await;
    assert_eq!(streamed_reads(&t).await, 0);
    assert!(whole[0].text.len() > 1_500_000, "{}", whole[0].text.len());
    assert_ne!(whole[0].text, whole[1].text, "export keeps the priorities");
    t.lever(
        Method::PUT,
        "limits",
        Some(json!({"streamAboveBytes": 100_000})),
    )
    .await;
    assert_eq!(
        t.lever(Method::GET, "limits", None).await,
        json!({"responseBytes": 268435456, "streamAboveBytes": 100_000})
    );
    let streamed = whole_reads(&t).await;
    assert_eq!(streamed_reads(&t).await, 4);
    for (a, b) in whole.iter().zip(&streamed) {
        assert!(a.text == b.text, "the streamed bytes differ");
        assert_eq!((&a.etag, &a.content_type), (&b.etag, &b.content_type));
    }
    // Not streamed: a small node, a shallow read, a query, print=pretty.
    for (path, query) in [
        ("big/users/u00003", ""),
        ("big", "shallow=true"),
        ("big/users", "orderBy=%22%24key%22&limitToFirst=1500"),
        ("big/users", "print=pretty"),
    ] {
        let r = t.req(Method::GET, path, query, &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}?{query}: {}", r.text);
    }
    assert_eq!(streamed_reads(&t).await, 4);
    t.finish().await;
}

/// A streamed read over the response-size limit is refused with the same 400 as an unstreamed
/// one, before any byte of the data is sent; at exactly the limit it is answered.
#[tokio::test]
async fn streamed_reads_over_the_response_size_are_the_same_400() {
    let t = embedded_target().await;
    t.put("big/users", mixed_records(500)).await;
    let size = t.req(Method::GET, "big", "", &[], None).await.text.len();
    let limits = |response: usize, stream: usize| json!({"responseBytes": response, "streamAboveBytes": stream});
    t.lever(Method::PUT, "limits", Some(limits(size - 1, 1 << 30)))
        .await;
    let unstreamed = t.req(Method::GET, "big", "", &[], None).await;
    t.lever(Method::PUT, "limits", Some(limits(size - 1, 1_000)))
        .await;
    let streamed = t.req(Method::GET, "big", "", &[], None).await;
    assert_eq!(
        streamed.assert_error(StatusCode::BAD_REQUEST),
        "The data requested exceeds the maximum size that can be accessed with a single request."
    );
    assert_eq!(
        (streamed.status, &streamed.text, &streamed.content_type),
        (
            unstreamed.status,
            &unstreamed.text,
            &unstreamed.content_type
        )
    );
    assert_eq!(streamed_reads(&t).await, 0);
    t.lever(Method::PUT, "limits", Some(limits(size, 1_000)))
        .await;
    let r = t.req(Method::GET, "big", "", &[], None).await;
    assert_eq!((r.status, r.text.len()), (StatusCode::OK, size));
    assert_eq!(streamed_reads(&t).await, 1);
    t.finish().await;
}

/// A big read's body shows the data as it was when the read arrived: writes sent while its body
/// is still unread (12 MB, far more than the pieces in flight) complete at once, and the body
/// read afterwards has none of them; the next read has them all.
#[tokio::test]
async fn a_streamed_read_shows_the_data_as_it_was_while_writes_go_on() {
    let t = embedded_target().await;
    let users: serde_json::Map<String, Value> = (0..6_000)
        .map(|i| {
            let user = json!({"name": format!("User {i}"), "bio": "b".repeat(2_000)});
            (format!("u{i:05}"), user)
        })
        .collect();
    t.put("big/users", Value::Object(users.clone())).await;
    let res = t
        .http
        .get(t.url("big/users", ""))
        .send()
        .await
        .expect("the read's answer");
    assert_eq!(res.status(), StatusCode::OK);
    // The body unread: writes at its start, middle and end, and a new member.
    t.put("big/users/u00000/name", json!("changed")).await;
    t.put("big/users/u05999/name", json!("changed")).await;
    let r = t
        .req(Method::DELETE, "big/users/u03000", "", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    t.put("big/users/u99999", json!({"name": "new"})).await;
    let body: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert!(
        body == Value::Object(users),
        "the body changed under the read"
    );
    let now = t.get("big/users").await;
    assert_eq!(now["u00000"]["name"], json!("changed"));
    assert_eq!(now["u05999"]["name"], json!("changed"));
    assert_eq!(now.get("u03000"), None);
    assert_eq!(now["u99999"]["name"], json!("new"));
    assert_eq!(streamed_reads(&t).await, 2);
    t.finish().await;
}

/// A multi-path PATCH costs the store work linear in its key count: 40,000 keys take about 10x
/// the work of 4,000 (the `storeSteps` count: binary-search steps and entries moved), not 100x.
#[tokio::test]
async fn patch_work_is_linear_in_its_key_count() {
    let t = embedded_target().await;
    let mut steps = Vec::new();
    for n in [4_000usize, 40_000] {
        let at = format!("linear{n}");
        t.put(&at, json!({"keep": true})).await;
        let patch: serde_json::Map<String, Value> = (0..n)
            .map(|i| {
                (
                    format!("users/u{i:06}/profile"),
                    json!({"n": i, "s": "abc"}),
                )
            })
            .collect();
        t.lever(Method::DELETE, "requests", None).await;
        let r = t
            .req(
                Method::PATCH,
                &at,
                "print=silent",
                &[],
                Some(Value::Object(patch)),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        steps.push(
            t.lever(Method::GET, "requests", None).await["storeSteps"]
                .as_u64()
                .unwrap(),
        );
        let last = format!("{at}/users/u{:06}/profile/n", n - 1);
        assert_eq!(t.get(&last).await, json!(n - 1));
    }
    let ratio = steps[1] as f64 / steps[0] as f64;
    assert!(
        ratio < 15.0,
        "4k keys: {} steps, 40k keys: {} steps ({ratio:.1}x; quadratic would be ~100x)",
        steps[0],
        steps[1]
    );
    t.finish().await;
}

#[tokio::test]
async fn lever_request_counts() {
    let t = embedded_target().await;
    t.put("a/b", json!(1)).await;
    t.get("a/b").await;
    t.get("a/b").await;
    t.get("/").await;
    t.req(Method::DELETE, "a", "", &[], None).await;
    t.req(Method::GET, "bad.key", "", &[], None).await;
    let counts = t.lever(Method::GET, "requests", None).await;
    assert_eq!(counts["total"], json!(6), "{counts}");
    assert_eq!(counts["byMethod"], json!({"GET": 4, "PUT": 1, "DELETE": 1}));
    assert_eq!(counts["byPath"]["GET /a/b"], json!(2));
    assert_eq!(counts["byPath"]["PUT /a/b"], json!(1));
    assert_eq!(counts["byPath"]["GET /"], json!(1));
    assert_eq!(counts["byPath"]["DELETE /a"], json!(1));
    // Lever requests are not counted; DELETE resets.
    t.lever(Method::DELETE, "requests", None).await;
    let counts = t.lever(Method::GET, "requests", None).await;
    assert_eq!(
        counts,
        json!({"total": 0, "byMethod": {}, "byPath": {}, "storeSteps": 0, "connections": 0, "streamedReads": 0, "refused": [], "refusedTotal": 0,
               "triggers": {"disabled": 0, "enabled": 0, "disabledByPath": {}}})
    );
    t.finish().await;
}

#[tokio::test]
async fn lever_deny_gives_401_permission_denied() {
    let t = embedded_target().await;
    t.put("migrations/_lock", json!({"owner": "x"})).await;
    t.put("migrations/history/v1", json!("ok")).await;
    t.lever(
        Method::PUT,
        "deny",
        Some(json!({"ns": t.ns, "paths": ["migrations/_lock"]})),
    )
    .await;
    let denied = [
        (Method::GET, "migrations/_lock", None),
        (Method::GET, "migrations/_lock/owner", None),
        (Method::GET, "migrations", None),
        (Method::GET, "", None),
        (Method::PUT, "migrations/_lock", Some(json!({"owner": "y"}))),
        (Method::PUT, "migrations/_lock/owner", Some(json!("y"))),
        (
            Method::PATCH,
            "migrations",
            Some(json!({"_lock/owner": "y"})),
        ),
        (Method::POST, "migrations/_lock", Some(json!(1))),
        (Method::DELETE, "migrations/_lock", None),
        (Method::DELETE, "migrations", None),
    ];
    for (m, p, body) in denied {
        let r = t.req(m.clone(), p, "", &[], body).await;
        assert_eq!(
            r.assert_error(StatusCode::UNAUTHORIZED),
            "Permission denied",
            "{m} {p}"
        );
    }
    // Event streams too.
    let r = t
        .http
        .get(t.url("migrations", ""))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Siblings and other namespaces are untouched.
    assert_eq!(t.get("migrations/history").await, json!({"v1": "ok"}));
    let other = t
        .send(
            Method::GET,
            format!("{}/migrations/_lock.json?ns={}", t.base, unique_ns()),
            &[],
            None,
        )
        .await;
    assert_eq!(other.status, StatusCode::OK);
    // Clearing the rules restores access; nothing was written meanwhile.
    t.lever(Method::DELETE, "deny", None).await;
    assert_eq!(t.get("migrations/_lock").await, json!({"owner": "x"}));
    // Without "ns", a rule applies to every namespace.
    t.lever(Method::PUT, "deny", Some(json!({"paths": ["x"]})))
        .await;
    t.req(Method::GET, "x/y", "", &[], None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    t.finish().await;
}

#[tokio::test]
async fn lever_outage_fails_every_request_for_its_window_then_ends() {
    let t = embedded_target().await;
    t.put("o", json!(1)).await;
    let before = t.lever(Method::GET, "requests", None).await["total"]
        .as_u64()
        .unwrap();
    t.lever(Method::PUT, "outage", Some(json!({"ms": 60_000})))
        .await;
    // Dropped: the connection closes without an answer, and nothing happens.
    for (m, body) in [
        (Method::GET, None),
        (Method::PUT, Some("2")),
        (Method::DELETE, None),
    ] {
        let mut rb = t.http.request(m.clone(), t.url("o", ""));
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let e = rb.send().await.expect_err("no answer during an outage");
        assert!(
            !e.is_connect(),
            "{m}: the connection was made, then dropped: {e}"
        );
    }
    assert!(
        t.lever(Method::GET, "outage", None).await["remainingMs"]
            .as_u64()
            .unwrap()
            > 50_000
    );
    t.lever(Method::DELETE, "outage", None).await;
    assert_eq!(t.get("o").await, json!(1), "nothing was applied");
    // Requests during the outage are counted.
    let after = t.lever(Method::GET, "requests", None).await["total"]
        .as_u64()
        .unwrap();
    assert_eq!(after - before, 4);
    // The 500 mode, and the window ends by itself.
    t.lever(
        Method::PUT,
        "outage",
        Some(json!({"ms": 300, "mode": "500"})),
    )
    .await;
    t.req(Method::PUT, "o", "", &[], Some(json!(3)))
        .await
        .assert_error(StatusCode::INTERNAL_SERVER_ERROR);
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    assert_eq!(t.put("o", json!(4)).await, json!(4));
    let r = t
        .send(
            Method::PUT,
            format!("{}/.emulator/outage", t.base),
            &[],
            Some("{\"ms\": -1}".into()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    t.finish().await;
}

#[tokio::test]
async fn lever_outage_on_one_namespace_leaves_the_others_serving() {
    let t = embedded_target().await;
    let other = format!("{}-b", t.ns);
    let other_url = |path: &str| format!("{}/{path}.json?ns={other}", t.base);
    t.put("o", json!(1)).await;
    let put_other = |v: Value| t.http.put(other_url("o")).body(v.to_string()).send();
    assert!(put_other(json!(1)).await.unwrap().status().is_success());
    let shown = t
        .lever(
            Method::PUT,
            "outage",
            Some(json!({"ms": 60_000, "mode": "500", "ns": t.ns})),
        )
        .await;
    // Only that namespace is down: the every-namespace outage is off.
    assert_eq!(shown["remainingMs"], json!(0), "{shown}");
    assert!(shown["namespaces"][&t.ns]["remainingMs"].as_u64().unwrap() > 50_000);
    assert_eq!(shown["namespaces"][&t.ns]["mode"], json!("500"));
    t.req(Method::PUT, "o", "", &[], Some(json!(2)))
        .await
        .assert_error(StatusCode::INTERNAL_SERVER_ERROR);
    t.req(Method::GET, "o", "", &[], None)
        .await
        .assert_error(StatusCode::INTERNAL_SERVER_ERROR);
    // The other namespace serves reads and writes meanwhile.
    assert!(put_other(json!(2)).await.unwrap().status().is_success());
    let read = t.http.get(other_url("o")).send().await.unwrap();
    assert_eq!(read.text().await.unwrap(), "2");
    // A second namespace down too, its requests dropped.
    t.lever(
        Method::PUT,
        "outage",
        Some(json!({"ms": 60_000, "ns": other})),
    )
    .await;
    assert!(
        put_other(json!(3)).await.is_err(),
        "dropped without an answer"
    );
    // DELETE ends them all: both serve, nothing of the outage was applied.
    t.lever(Method::DELETE, "outage", None).await;
    assert_eq!(t.get("o").await, json!(1));
    let read = t.http.get(other_url("o")).send().await.unwrap();
    assert_eq!(read.text().await.unwrap(), "2");
    // A namespace that is not a string is refused.
    let r = t
        .send(
            Method::PUT,
            format!("{}/.emulator/outage", t.base),
            &[],
            Some(json!({"ms": 10, "ns": 7}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.error_message().contains("\"ns\""), "{}", r.text);
    t.finish().await;
}

#[tokio::test]
async fn lever_lost_responses_apply_the_write_then_lose_its_answer() {
    let t = embedded_target().await;
    // The second write loses its response; the first and third are answered.
    t.lever(
        Method::PUT,
        "lost-responses",
        Some(json!({"skip": 1, "count": 1})),
    )
    .await;
    assert_eq!(t.put("w/a", json!(1)).await, json!(1));
    let e = t
        .http
        .put(t.url("w/b", ""))
        .body("2")
        .send()
        .await
        .expect_err("the answer to the second write is lost");
    assert!(!e.is_connect(), "{e}");
    assert_eq!(t.put("w/c", json!(3)).await, json!(3));
    // ...but the write itself was applied.
    assert_eq!(t.get("w").await, json!({"a": 1, "b": 2, "c": 3}));
    assert_eq!(
        t.lever(Method::GET, "lost-responses", None).await["lost"],
        json!(1)
    );
    // Reads are never affected; 500 mode answers every write with 500 after applying it, for
    // every write method (a conditional PUT included).
    t.lever(
        Method::PUT,
        "lost-responses",
        Some(json!({"count": null, "mode": "500"})),
    )
    .await;
    assert_eq!(t.get("w/a").await, json!(1));
    let (_, tag) = t.get_etag("w/a").await;
    for (m, path, headers, body) in [
        (
            Method::PUT,
            "w/a",
            vec![("if-match", tag.as_str())],
            Some(json!(10)),
        ),
        (Method::PATCH, "w", vec![], Some(json!({"d": 4}))),
        (Method::POST, "w/list", vec![], Some(json!("x"))),
        (Method::DELETE, "w/c", vec![], None),
    ] {
        t.req(m, path, "", &headers, body)
            .await
            .assert_error(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let w = t.get("w").await;
    assert_eq!(
        (w["a"].clone(), w["d"].clone(), w.get("c")),
        (json!(10), json!(4), None)
    );
    assert_eq!(w["list"].as_object().map(|m| m.len()), Some(1));
    // A write that fails (412) keeps its answer.
    let r = t
        .req(
            Method::PUT,
            "w/a",
            "",
            &[("if-match", "nope")],
            Some(json!(11)),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    t.lever(Method::DELETE, "lost-responses", None).await;
    assert_eq!(t.put("w/e", json!(5)).await, json!(5));
    t.finish().await;
}

#[tokio::test]
async fn lever_faults_inject_503_before_anything() {
    let t = embedded_target().await;
    t.lever(
        Method::PUT,
        "faults",
        Some(json!({"unavailableProbability": 1.0})),
    )
    .await;
    for (m, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!(1))),
        (Method::POST, Some(json!(1))),
        (Method::PATCH, Some(json!({"a": 1}))),
        (Method::DELETE, None),
    ] {
        let r = t.req(m, "f", "", &[], body).await;
        r.assert_error(StatusCode::SERVICE_UNAVAILABLE);
    }
    t.lever(
        Method::PUT,
        "faults",
        Some(json!({"unavailableProbability": 0.5})),
    )
    .await;
    let (mut ok, mut unavailable) = (0, 0);
    for i in 0..200 {
        let r = t
            .req(Method::PUT, &format!("f/{i}"), "", &[], Some(json!(i)))
            .await;
        match r.status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => unavailable += 1,
            other => panic!("{other}"),
        }
    }
    assert!(
        ok > 40 && unavailable > 40,
        "{ok} ok, {unavailable} unavailable"
    );
    t.lever(
        Method::PUT,
        "faults",
        Some(json!({"unavailableProbability": 0})),
    )
    .await;
    // Exactly the accepted writes happened (the children may come back as an array).
    let stored = match t.get("f").await {
        Value::Array(a) => a.iter().filter(|v| !v.is_null()).count(),
        Value::Object(m) => m.len(),
        other => panic!("{other}"),
    };
    assert_eq!(stored, ok);
    // Bad lever input is a 400.
    let r = t
        .send(
            Method::PUT,
            format!("{}/.emulator/faults", t.base),
            &[],
            Some("{\"unavailableProbability\": 2}".into()),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    t.finish().await;
}

#[tokio::test]
async fn lever_latency_delays_requests() {
    let t = embedded_target().await;
    t.lever(Method::PUT, "latency", Some(json!({"ms": 300})))
        .await;
    let started = Instant::now();
    t.put("l", json!(1)).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Levers themselves are not delayed.
    let started = Instant::now();
    assert_eq!(
        t.lever(Method::GET, "latency", None).await,
        json!({"ms": 300})
    );
    assert!(started.elapsed() < Duration::from_millis(300));
    t.lever(Method::PUT, "latency", Some(json!({"ms": 0})))
        .await;
    t.finish().await;
}

#[tokio::test]
async fn lever_delay_holds_the_matching_request_and_the_journal_logs_every_request() {
    let t = embedded_target().await;
    t.lever(Method::PUT, "journal", None).await;
    let set = t
        .lever(
            Method::PUT,
            "delay",
            Some(json!({"method": "put", "path": "d/x", "ms": 400})),
        )
        .await;
    assert_eq!(set["count"], json!(1), "{set}");
    // Another method or path is not delayed.
    let started = Instant::now();
    t.put("d/y", json!(1)).await;
    t.get("d/x").await;
    assert!(started.elapsed() < Duration::from_millis(400));
    // The matching request waits, once; the lever shows it waiting meanwhile.
    let t = Arc::new(t);
    let (t2, started) = (t.clone(), Instant::now());
    let held = tokio::spawn(async move { t2.put("d/x", json!(2)).await });
    let mut waiting = json!(null);
    for _ in 0..50 {
        waiting = t.lever(Method::GET, "delay", None).await;
        if waiting["waiting"] == json!(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(waiting["waiting"], json!(1), "{waiting}");
    held.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    let after = t.lever(Method::GET, "delay", None).await;
    assert_eq!(
        (
            after["delayed"].clone(),
            after["waiting"].clone(),
            after["count"].clone()
        ),
        (json!(1), json!(0), json!(0))
    );
    let started = Instant::now();
    t.put("d/x", json!(3)).await;
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "delayed once only"
    );

    // The journal: every data request in order, with server times and the client's address.
    let j = t.lever(Method::GET, "journal", None).await;
    let entries = j["entries"].as_array().unwrap();
    let seen: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().to_string(),
                e["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("PUT", "/d/y"),
            ("GET", "/d/x"),
            ("PUT", "/d/x"),
            ("PUT", "/d/x")
        ]
        .map(|(m, p)| (m.to_string(), p.to_string()))
    );
    let held = &entries[2];
    let waited = held["doneAt"].as_i64().unwrap() - held["at"].as_i64().unwrap();
    assert!(waited >= 390, "{held}");
    assert_eq!(held["status"], json!(200));
    assert_eq!(held["ns"], json!(t.ns));
    assert!(
        held["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{held}"
    );
    t.lever(Method::DELETE, "journal", None).await;
    t.put("d/z", json!(1)).await;
    assert_eq!(
        t.lever(Method::GET, "journal", None).await["entries"],
        json!([])
    );
    match Arc::try_unwrap(t) {
        Ok(t) => t.finish().await,
        Err(_) => panic!("target still shared"),
    }
}

#[tokio::test]
async fn lever_clock_offset_moves_server_timestamps() {
    let t = embedded_target().await;
    t.lever(Method::PUT, "clock", Some(json!({"offsetMs": 3_600_000})))
        .await;
    let at = t
        .put("c", json!({".sv": "timestamp"}))
        .await
        .as_i64()
        .unwrap();
    assert!(at >= now_ms() + 3_500_000, "{at}");
    t.finish().await;
}

#[tokio::test]
async fn lever_reset_clears_data_levers_and_counts() {
    let t = embedded_target().await;
    let emu = t.emu.as_ref().expect("embedded");
    t.put("r", json!(1)).await;
    t.lever(Method::PUT, "deny", Some(json!({"paths": ["z"]})))
        .await;
    t.lever(Method::PUT, "latency", Some(json!({"ms": 5})))
        .await;
    let r = t
        .send(
            Method::POST,
            format!("{}/.emulator/reset", t.base),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(emu.export(), json!({}));
    assert_eq!(
        t.lever(Method::GET, "requests", None).await["total"],
        json!(0)
    );
    assert_eq!(
        t.lever(Method::GET, "latency", None).await,
        json!({"ms": 0})
    );
    assert_eq!(
        t.lever(Method::GET, "deny", None).await,
        json!({"rules": {}})
    );
    assert_eq!(t.get("z").await, Value::Null);
    let r = t
        .send(Method::GET, format!("{}/.emulator/nope", t.base), &[], None)
        .await;
    r.assert_error(StatusCode::NOT_FOUND);
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle (embedded only)

#[tokio::test]
async fn starts_fast_and_stops_gracefully() {
    let started = Instant::now();
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert!(emu.url().starts_with("http://127.0.0.1:"));
    assert_eq!(emu.host_port(), emu.addr().to_string());
    let url = emu.url();
    let http = http_client();
    http.put(format!("{url}/.emulator/latency"))
        .body("{\"ms\": 400}")
        .send()
        .await
        .unwrap();
    // A request in flight when stop() is called still completes.
    let in_flight = tokio::spawn({
        let http = http.clone();
        let url = url.clone();
        async move {
            http.put(format!("{url}/x.json"))
                .body("1")
                .send()
                .await
                .map(|r| r.status())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    emu.stop().await.unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap(), StatusCode::OK);
    // Afterwards nothing listens.
    let fresh = reqwest::Client::new();
    assert!(fresh.get(format!("{url}/x.json")).send().await.is_err());
}

#[tokio::test]
async fn namespace_defaults_to_default_or_host_label() {
    let t = embedded_target().await;
    let emu = t.emu.as_ref().expect("embedded");
    let r = t
        .send(
            Method::PUT,
            format!("{}/x.json", t.base),
            &[],
            Some("1".into()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t
        .send(
            Method::PUT,
            format!("{}/y.json", t.base),
            &[("Host", "mydb.localhost")],
            Some("2".into()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(emu.export(), json!({"default": {"x": 1}, "mydb": {"y": 2}}));
    let r = t
        .send(
            Method::GET,
            format!("{}/x.json?ns=bad%20ns", t.base),
            &[],
            None,
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    t.finish().await;
}

/// The streams lever: event streams refused with a chosen HTTP status (as a proxy that does not
/// pass them), or ended by the server after a while; cleared by DELETE.
#[tokio::test]
async fn lever_streams_refuses_or_ends_event_streams() {
    let t = embedded_target().await;
    t.put("n", json!(1)).await;
    t.lever(Method::PUT, "streams", Some(json!({"refuse": 400})))
        .await;
    let r = t
        .req(
            Method::GET,
            "n",
            "",
            &[("Accept", "text/event-stream")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.error_message().contains("streams"), "{}", r.text);
    // Plain reads are not affected.
    assert_eq!(t.get("n").await, json!(1));
    let shown = t
        .lever(Method::PUT, "streams", Some(json!({"closeAfterMs": 150})))
        .await;
    assert_eq!(shown, json!({"refuse": null, "closeAfterMs": 150}));
    let mut s = Sse::open(&t, "n").await;
    assert_eq!(
        s.next_data().await,
        ("put".into(), json!({"path": "/", "data": 1}))
    );
    // Ended by the server (keep-alives every 30 s would come later).
    assert_eq!(s.next().await, None);
    let cleared = t.lever(Method::DELETE, "streams", None).await;
    assert_eq!(cleared, json!({"refuse": null, "closeAfterMs": null}));
    let bad = t
        .send(
            Method::PUT,
            format!("{}/.emulator/streams", t.base),
            &[],
            Some(json!({"refuse": 200}).to_string()),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    t.finish().await;
}

/// Connections that carried data requests are counted: a client's kept-alive connection is
/// reused for request after request.
#[tokio::test]
async fn lever_requests_counts_connections() {
    let t = embedded_target().await;
    t.lever(Method::DELETE, "requests", None).await;
    let fresh = http_client();
    for i in 0..5 {
        let r = fresh
            .put(t.url("c", ""))
            .body(json!(i).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap();
    }
    let counts = t.lever(Method::GET, "requests", None).await;
    assert_eq!(
        (counts["total"].clone(), counts["connections"].clone()),
        (json!(5), json!(1))
    );
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Security Rules and indexes (Google's emulator evaluates rules; it does not enforce indexes)

impl Target {
    fn rules_url(&self, query: &str) -> String {
        format!("{}/.settings/rules.json?ns={}{query}", self.base, self.ns)
    }

    /// `PUT /.settings/rules.json` as the owner.
    async fn put_rules(&self, text: &str) -> Resp {
        self.send(Method::PUT, self.rules_url(""), &[], Some(text.to_string()))
            .await
    }

    /// A data request acting as `auth` (`auth_variable_override`), with the owner's token.
    async fn as_user(
        &self,
        auth: &Value,
        method: Method,
        path: &str,
        query: &str,
        body: Option<Value>,
    ) -> Resp {
        let q = format!(
            "auth_variable_override={}{}{query}",
            enc(&auth.to_string()),
            if query.is_empty() { "" } else { "&" }
        );
        self.req(method, path, &q, &[], body).await
    }

    /// A data request with no credentials at all.
    async fn anonymous(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = reqwest::Client::new().request(method, self.url(path, ""));
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        Resp {
            status,
            etag: None,
            content_type: None,
            text: res.text().await.unwrap(),
        }
    }
}

#[tokio::test]
async fn rules_document_is_stored_as_text_and_only_admins_touch_it() {
    let t = target().await;
    // A namespace without rules is open.
    let r = t
        .send(Method::GET, t.rules_url("&format=strict"), &[], None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json()["rules"].is_object(), "{}", r.text);
    assert_eq!(
        t.anonymous(Method::PUT, "open", Some(json!(1)))
            .await
            .status,
        StatusCode::OK
    );

    let doc = "{\n  // who may read\n  \"rules\": {\".read\": true, /* and write */ \".write\": \"auth != null\"}\n}\n";
    let r = t.put_rules(doc).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = t.send(Method::GET, t.rules_url(""), &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("// who may read"),
        "comments kept: {}",
        r.text
    );
    let r = t
        .send(Method::GET, t.rules_url("&format=strict"), &[], None)
        .await;
    assert_eq!(
        r.json(),
        json!({"rules": {".read": true, ".write": "auth != null"}})
    );

    // A document that does not parse is refused, naming where; the rules stay as they were.
    let r = t
        .put_rules("{\n  \"rules\": {\n  \".read\": true\n  \".write\": true}\n}")
        .await;
    let msg = r.assert_error(StatusCode::BAD_REQUEST);
    if t.emu.is_some() {
        assert_eq!(msg, "4:3: Expected ',' or '}' after a property value");
        let r = t
            .put_rules(r#"{"rules": {".read": "auth.uid == $uid"}}"#)
            .await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "1:34: Unknown variable '$uid'."
        );
    }
    let r = t
        .send(Method::GET, t.rules_url("&format=strict"), &[], None)
        .await;
    assert_eq!(r.json()["rules"][".write"], "auth != null");

    // Only admins: no credentials is a 401, for reading and for writing the rules.
    let anon = reqwest::Client::new();
    let r = anon.get(t.rules_url("")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = anon
        .put(t.rules_url(""))
        .body(r#"{"rules": {".write": true}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    if t.emu.is_some() {
        let r = t
            .send(
                Method::PUT,
                t.rules_url(&format!(
                    "&auth_variable_override={}",
                    enc(r#"{"uid":"u"}"#)
                )),
                &[],
                Some(r#"{"rules": {".write": true}}"#.into()),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::UNAUTHORIZED),
            "Permission denied"
        );
    }
    t.finish().await;
}

/// The rules firebase-admin-python's integration suite installs, and what its
/// `TestAuthVariableOverride` expects of them.
#[tokio::test]
async fn rules_decide_reads_and_writes_by_auth_and_admins_bypass_them() {
    let t = target().await;
    let r = t
        .put_rules(
            r#"{"rules": {"db": {
                "protected": {"$uid": {".read": "auth != null", ".write": "$uid === auth.uid"}},
                "admin": {".read": "false", ".write": "false"},
                "public": {".read": "true"}
            }}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The owner writes anywhere, rules or not.
    for p in [
        "db/admin",
        "db/protected/user1",
        "db/protected/user2",
        "db/public",
    ] {
        t.put(p, json!("test")).await;
    }
    let user1 = json!({"uid": "user1"});
    let denied = |r: Resp| {
        assert_eq!(
            r.assert_error(StatusCode::UNAUTHORIZED),
            "Permission denied"
        )
    };
    denied(t.as_user(&user1, Method::GET, "db/admin", "", None).await);
    denied(
        t.as_user(&user1, Method::PUT, "db/admin", "", Some(json!("test2")))
            .await,
    );
    let r = t
        .as_user(&user1, Method::GET, "db/protected/user2", "", None)
        .await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!("test")));
    denied(
        t.as_user(
            &user1,
            Method::PUT,
            "db/protected/user2",
            "",
            Some(json!("test2")),
        )
        .await,
    );
    let r = t
        .as_user(
            &user1,
            Method::PUT,
            "db/protected/user1",
            "",
            Some(json!("test2")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Reading over the readable children is not a read of them: rules are not filters.
    denied(
        t.as_user(
            &user1,
            Method::GET,
            "db/protected",
            &format!("orderBy={}&limitToFirst=2", enc("\"$key\"")),
            None,
        )
        .await,
    );
    denied(
        t.as_user(&user1, Method::DELETE, "db/protected/user2", "", None)
            .await,
    );
    denied(
        t.as_user(&user1, Method::POST, "db/protected", "", Some(json!(1)))
            .await,
    );
    denied(
        t.as_user(
            &user1,
            Method::PATCH,
            "db/protected",
            "",
            Some(json!({"user1": 1, "user2": 2})),
        )
        .await,
    );
    // Unauthenticated: by override or with no credentials at all.
    let r = t
        .as_user(&Value::Null, Method::GET, "db/public", "", None)
        .await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!("test")));
    denied(
        t.as_user(&Value::Null, Method::GET, "db/protected/user1", "", None)
            .await,
    );
    assert_eq!(
        t.anonymous(Method::GET, "db/public", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        t.anonymous(Method::GET, "db/protected/user1", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.anonymous(Method::PUT, "db/public", Some(json!(1)))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A denied conditional write is a 401, not a 412 revealing the value.
    let r = t
        .req(
            Method::PUT,
            "db/admin",
            &format!("auth_variable_override={}", enc(&user1.to_string())),
            &[("if-match", "wrong")],
            Some(json!(1)),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    // Event streams are reads.
    let r = t
        .http
        .get(t.url(
            "db/admin",
            &format!("auth_variable_override={}", enc(&user1.to_string())),
        ))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Nothing denied was written.
    assert_eq!(
        t.get("db").await,
        json!({"admin": "test", "protected": {"user1": "test2", "user2": "test"}, "public": "test"})
    );
    t.finish().await;
}

#[tokio::test]
async fn validate_rules_and_multi_path_writes_are_all_or_nothing() {
    let t = target().await;
    let r = t
        .put_rules(
            r#"{"rules": {".read": true, "users": {"$uid": {
                ".write": "auth != null && auth.uid === $uid",
                ".validate": "newData.hasChildren(['name'])",
                "name": {".validate": "newData.isString() && newData.val().length > 0"},
                "age": {".validate": "newData.isNumber() && newData.val() >= 0"}
            }}}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    t.put(
        "users",
        json!({"u1": {"name": "Ann", "age": 30}, "u2": {"name": "Bob"}}),
    )
    .await;
    let u1 = json!({"uid": "u1"});
    let ok = |r: Resp| assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let denied = |r: Resp| {
        assert_eq!(
            r.assert_error(StatusCode::UNAUTHORIZED),
            "Permission denied"
        )
    };
    ok(
        t.as_user(&u1, Method::PATCH, "users/u1", "", Some(json!({"age": 31})))
            .await,
    );
    // One path denied: the whole PATCH is refused.
    denied(
        t.as_user(
            &u1,
            Method::PATCH,
            "",
            "",
            Some(json!({"users/u1/age": 32, "users/u2/age": 1})),
        )
        .await,
    );
    // One path invalid: refused whole.
    denied(
        t.as_user(
            &u1,
            Method::PATCH,
            "users/u1",
            "",
            Some(json!({"age": -1, "name": "Anne"})),
        )
        .await,
    );
    // Every .validate on the way holds for the data after the whole write.
    denied(
        t.as_user(&u1, Method::PUT, "users/u1", "", Some(json!({"age": 1})))
            .await,
    );
    ok(t.as_user(
        &u1,
        Method::PATCH,
        "users/u1",
        "",
        Some(json!({"name": "Anne", "age": 33})),
    )
    .await);
    // Deletes are not validated, but the parent that remains still is.
    denied(
        t.as_user(&u1, Method::DELETE, "users/u1/name", "", None)
            .await,
    );
    ok(t.as_user(&u1, Method::DELETE, "users/u1/age", "", None)
        .await);
    assert_eq!(
        t.get("users").await,
        json!({"u1": {"name": "Anne"}, "u2": {"name": "Bob"}})
    );
    ok(t.as_user(&u1, Method::DELETE, "users/u1", "", None).await);
    assert_eq!(t.get("users").await, json!({"u2": {"name": "Bob"}}));
    t.finish().await;
}

#[tokio::test]
async fn unindexed_queries_are_refused_with_the_services_text() {
    let t = embedded_target().await;
    t.put(
        "users",
        json!({"a": {"email": "x@y", "age": 3}, "b": {"email": "z@y", "age": 1}}),
    )
    .await;
    t.put("scores", json!({"a": 2, "b": 1})).await;
    let order = |o: &str| format!("orderBy={}", enc(&format!("\"{o}\"")));
    // Without rules nothing is checked (as Google's emulator).
    let r = t.req(Method::GET, "users", &order("age"), &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = t
        .put_rules(
            r#"{"rules": {".read": true, ".write": true,
                "users": {".indexOn": ["email"]}, "scores": {".indexOn": ".value"}}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The owner too: indexes are not a permission.
    let r = t.req(Method::GET, "users", &order("age"), &[], None).await;
    assert_eq!(
        r.assert_error(StatusCode::BAD_REQUEST),
        "Index not defined, add \".indexOn\": \"age\", for path \"/users\", to the rules"
    );
    let r = t
        .req(
            Method::GET,
            "users",
            &format!("{}&limitToFirst=1", order("$value")),
            &[],
            None,
        )
        .await;
    assert_eq!(
        r.assert_error(StatusCode::BAD_REQUEST),
        "Index not defined, add \".indexOn\": \".value\", for path \"/users\", to the rules"
    );
    let r = t
        .as_user(
            &json!({"uid": "u"}),
            Method::GET,
            "users",
            &order("age"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Indexed ones and $key pass.
    let r = t
        .req(
            Method::GET,
            "users",
            &format!("{}&equalTo={}", order("email"), enc("\"z@y\"")),
            &[],
            None,
        )
        .await;
    assert_eq!((r.status, keys(&r.json())), (StatusCode::OK, set(&["b"])));
    let r = t
        .req(
            Method::GET,
            "scores",
            &format!("{}&limitToFirst=1", order("$value")),
            &[],
            None,
        )
        .await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"b": 1})));
    let r = t
        .req(
            Method::GET,
            "users",
            &format!("{}&limitToFirst=1", order("$key")),
            &[],
            None,
        )
        .await;
    assert_eq!((r.status, keys(&r.json())), (StatusCode::OK, set(&["a"])));
    t.finish().await;
}

#[tokio::test]
async fn rules_load_at_start_are_saved_beside_an_export_and_survive_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("db.rules.json");
    std::fs::write(&good, "{\n  // the owner's app only\n  \"rules\": {\"app\": {\".read\": \"auth != null\", \".write\": \"auth != null\"}}\n}\n").unwrap();
    let bad = dir.path().join("bad.rules.json");
    std::fs::write(
        &bad,
        "{\"rules\": {\n  \".read\": \"auth.uid === $uid\"\n}}\n",
    )
    .unwrap();
    let file = |path: &std::path::Path| msr_firebase::emulator::RulesFile {
        namespace: None,
        path: path.to_path_buf(),
    };

    let err = Emulator::start(EmulatorOptions {
        rules: vec![file(&bad)],
        ..Default::default()
    })
    .await
    .err()
    .expect("bad rules fail the start");
    assert_eq!(
        err.message,
        format!("{}:2:26: Unknown variable '$uid'.", bad.display())
    );

    let emu = Emulator::start(EmulatorOptions {
        rules: vec![file(&good)],
        ..Default::default()
    })
    .await
    .unwrap();
    let t = Target {
        base: emu.url(),
        ns: unique_ns(),
        http: http_client(),
        emu: Some(emu),
    };
    assert_eq!(
        t.anonymous(Method::GET, "app", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    t.put("app/x", json!(1)).await;
    // Rules of one namespace, set over the wire.
    let r = t.put_rules(r#"{"rules": {".read": true}}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        t.anonymous(Method::GET, "app", None).await.status,
        StatusCode::OK
    );

    // Saved whole: the data, and the rules beside it.
    let data = dir.path().join("sandbox.json");
    let emu = t.emu.as_ref().unwrap();
    let mut out = Vec::new();
    emu.write_export(&mut out).unwrap();
    std::fs::write(&data, out).unwrap();
    let beside = msr_firebase::emulator::rules_file_beside(&data);
    assert_eq!(beside, dir.path().join("sandbox.rules.json"));
    std::fs::write(&beside, emu.saved_rules().expect("rules to save")).unwrap();
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("sandbox.rules.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["*"], json!(std::fs::read_to_string(&good).unwrap()));
    assert_eq!(saved[&t.ns], json!(r#"{"rules": {".read": true}}"#));

    // A reset goes back to the rules the emulator started with.
    t.lever(Method::POST, "reset", None).await;
    assert_eq!(
        t.anonymous(Method::GET, "app", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    t.finish().await;

    // Loaded again from the export: the same data and the same rules per namespace.
    let emu = Emulator::start(EmulatorOptions {
        import_file: Some(data.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let again = Target {
        base: emu.url(),
        ns: saved
            .as_object()
            .unwrap()
            .keys()
            .find(|k| *k != "*")
            .unwrap()
            .clone(),
        http: http_client(),
        emu: Some(emu),
    };
    assert_eq!(again.get("app/x").await, json!(1));
    assert_eq!(
        again.anonymous(Method::GET, "app", None).await.status,
        StatusCode::OK
    );
    let other = Target {
        ns: unique_ns(),
        ..again
    };
    assert_eq!(
        other.anonymous(Method::GET, "app", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    other.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Write-size limits and disableTriggers

/// 40 users of about 130 bytes each: about 5.5 KB of JSON under `big`.
fn big_users() -> Value {
    Value::Object(
        (0..40)
            .map(|i| (format!("u{i:03}"), json!({"name": "x".repeat(100), "n": i})))
            .collect(),
    )
}

#[tokio::test]
async fn write_size_limit_refuses_writes_over_the_budget_and_changes_nothing() {
    let t = embedded_target().await;
    // A fresh emulator: unlimited, the default budgets (1 MB per second of the service's time).
    let mb = 1024 * 1024;
    assert_eq!(
        t.lever(Method::GET, "write-size-limit", None).await,
        json!({"default": "unlimited", "namespaces": {},
               "budgets": {"tiny": mb, "small": 10 * mb, "medium": 30 * mb, "large": 60 * mb}})
    );
    t.put("big", big_users()).await;
    let whole = t.req(Method::GET, "big", "", &[], None).await.text.len();
    assert!((5000..6000).contains(&whole), "{whole}");
    // Budgets in bytes so small data is too big: large = 3000 bytes.
    let set = t
        .lever(
            Method::PUT,
            "write-size-limit",
            Some(json!({"default": "large", "ns": t.ns,
                        "budgets": {"tiny": 300, "small": 1000, "medium": 2000, "large": 3000}})),
        )
        .await;
    assert_eq!(set["namespaces"][&t.ns], json!("large"));
    assert_eq!(set["default"], json!("unlimited"));
    let (before, tag) = t.get_etag("big").await;
    let mut s = Sse::open(&t, "big").await;
    s.next_data().await;
    t.lever(Method::DELETE, "requests", None).await;

    let too_big = "WRITE_TOO_BIG: Data to write exceeds the maximum size that can be modified with a single request.";
    // A DELETE of the big node: refused although its body is empty; so are a PUT over it, a
    // multi-path PATCH deleting it, and a conditional DELETE with the right ETag.
    let r = t.req(Method::DELETE, "big", "", &[], None).await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    let r = t
        .req(Method::PUT, "big", "", &[], Some(json!("small")))
        .await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    let r = t
        .req(
            Method::PATCH,
            "",
            "",
            &[],
            Some(json!({"big": null, "x": 1})),
        )
        .await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    // The same below the root: a PATCH at `big` replacing 30 of its users (about 3.5 KB), and
    // one replacing a user's name at each of them (each found from the PATCH's location).
    let all: serde_json::Map<String, Value> =
        (0..30).map(|i| (format!("u{i:03}"), json!(1))).collect();
    let r = t
        .req(Method::PATCH, "big", "", &[], Some(Value::Object(all)))
        .await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    let names: serde_json::Map<String, Value> = (0..30)
        .map(|i| (format!("u{i:03}/name"), json!("y")))
        .collect();
    let r = t
        .req(Method::PATCH, "big", "", &[], Some(Value::Object(names)))
        .await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    let r = t
        .req(
            Method::DELETE,
            "big",
            "",
            &[("if-match", tag.as_str())],
            None,
        )
        .await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    // A body over the budget, even where nothing is replaced (a POST).
    let r = t
        .req(Method::POST, "list", "", &[], Some(json!("y".repeat(3100))))
        .await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    // Asking for more than the default does not raise it.
    let r = t
        .req(Method::DELETE, "big", "writeSizeLimit=unlimited", &[], None)
        .await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    // Nothing changed: data, ETag, no event (the next one is the write after them), and the
    // counts name each refusal as too big.
    assert_eq!(t.get_etag("big").await, (before.clone(), tag.clone()));
    assert_eq!(t.get("x").await, Value::Null);
    let counts = t.lever(Method::GET, "requests", None).await;
    assert_eq!(counts["refusedTotal"], json!(8), "{counts}");
    assert!(
        counts["refused"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == 400 && r["reason"] == "tooBig"),
        "{counts}"
    );
    assert_eq!(
        counts["refused"][0],
        json!({"method": "DELETE", "path": "/big", "status": 400, "reason": "tooBig"})
    );

    // Under the budget: deleting one user, a multi-path PATCH of several, a PUT of a small
    // value elsewhere, all succeed.
    let r = t.req(Method::DELETE, "big/u000", "", &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        s.next_data().await,
        ("put".into(), json!({"path": "/u000", "data": null}))
    );
    let r = t
        .req(
            Method::PATCH,
            "big",
            "",
            &[],
            Some(json!({"u001": null, "u002": null, "u003/n": 7})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(t.get("big/u003/n").await, json!(7));
    assert_eq!(t.get("big/u001").await, Value::Null);
    // The PATCH's paths add up: each replaces a user, 20 users are over 2000 bytes (medium).
    let twenty: serde_json::Map<String, Value> = (10..30)
        .map(|i| (format!("u{i:03}"), Value::Null))
        .collect();
    let r = t
        .req(
            Method::PATCH,
            "big",
            "writeSizeLimit=medium",
            &[],
            Some(Value::Object(twenty.clone())),
        )
        .await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    assert_eq!(keys(&t.get("big").await).len(), 37);
    // A request lowers the limit: 1000 bytes of body pass `large` (3000), not `tiny` (300).
    let body = json!("z".repeat(1000));
    let r = t
        .req(
            Method::PUT,
            "w",
            "writeSizeLimit=tiny",
            &[],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), too_big);
    assert_eq!(t.get("w").await, Value::Null);
    let r = t
        .req(
            Method::PUT,
            "w",
            "writeSizeLimit=large",
            &[],
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A bad level is a 400 naming the levels, nothing written.
    let r = t
        .req(Method::PUT, "w", "writeSizeLimit=huge", &[], Some(json!(1)))
        .await;
    let msg = r.assert_error(StatusCode::BAD_REQUEST);
    assert!(
        msg.contains("writeSizeLimit") && msg.contains("tiny, small, medium, large or unlimited"),
        "{msg}"
    );
    assert_eq!(t.get("w").await, body);

    // Other namespaces keep their own default (unlimited here).
    let other = format!("{}/big.json?ns={}-other", t.base, t.ns);
    let r = t
        .send(
            Method::PUT,
            other.clone(),
            &[],
            Some(big_users().to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t.send(Method::DELETE, other, &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Bad lever bodies are refused and change nothing; DELETE resets to unlimited.
    for bad in [
        json!({"default": "huge"}),
        json!({"ns": t.ns}),
        json!({"budgets": {"tiny": 0}}),
    ] {
        let r = t
            .send(
                Method::PUT,
                format!("{}/.emulator/write-size-limit", t.base),
                &[],
                Some(bad.to_string()),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
    let r = t.req(Method::DELETE, "big", "", &[], None).await;
    r.assert_error(StatusCode::BAD_REQUEST);
    let reset = t.lever(Method::DELETE, "write-size-limit", None).await;
    assert_eq!(reset["namespaces"], json!({}));
    let r = t.req(Method::DELETE, "big", "", &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(t.get("big").await, Value::Null);
    t.finish().await;
}

/// A default for every namespace (`ns` omitted), and the Rust API the rehearsal uses.
#[tokio::test]
async fn write_size_limit_for_every_namespace_and_from_rust() {
    let t = embedded_target().await;
    t.put("big", big_users()).await;
    t.lever(
        Method::PUT,
        "write-size-limit",
        Some(json!({"default": "small", "budgets": {"small": 2000}})),
    )
    .await;
    let r = t.req(Method::DELETE, "big", "", &[], None).await;
    r.assert_error(StatusCode::BAD_REQUEST);
    t.lever(Method::DELETE, "write-size-limit", None).await;
    let emu = t.emu.as_ref().unwrap();
    emu.set_write_size_limit(
        Some(&t.ns),
        msr_firebase::emulator::WriteSizeLevel::Medium,
        Some(msr_firebase::emulator::WriteBudgets {
            tiny: 10,
            small: 100,
            medium: 1000,
            large: 10_000,
        }),
    );
    let r = t.req(Method::DELETE, "big", "", &[], None).await;
    r.assert_error(StatusCode::BAD_REQUEST);
    let r = t
        .req(
            Method::DELETE,
            "big/u005",
            "writeSizeLimit=medium",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    t.finish().await;
}

#[tokio::test]
async fn disable_triggers_is_accepted_on_writes_and_counted() {
    let t = embedded_target().await;
    t.lever(Method::PUT, "journal", None).await;
    let q = "disableTriggers=true";
    for (method, path, query, body) in [
        (Method::PUT, "a", q, Some(json!(1))),
        (Method::PATCH, "", q, Some(json!({"b": 2}))),
        (Method::POST, "list", q, Some(json!(3))),
        (Method::DELETE, "a", q, None),
        (Method::PUT, "c", "disableTriggers=false", Some(json!(4))),
        (Method::PUT, "d", "", Some(json!(5))),
        (
            Method::PUT,
            "e",
            "disableTriggers=true&writeSizeLimit=tiny&print=silent",
            Some(json!(6)),
        ),
    ] {
        let r = t.req(method.clone(), path, query, &[], body).await;
        assert!(r.status.is_success(), "{method} {path}?{query}: {}", r.text);
    }
    // A bad value: 400, nothing written, in neither count.
    let r = t
        .req(Method::PUT, "f", "disableTriggers=yes", &[], Some(json!(7)))
        .await;
    let msg = r.assert_error(StatusCode::BAD_REQUEST);
    assert!(
        msg.contains("disableTriggers") && msg.contains("true or false"),
        "{msg}"
    );
    assert_eq!(t.get("f").await, Value::Null);
    // Reads are not writes: not counted.
    let r = t.req(Method::GET, "b", q, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    let counts = t.lever(Method::GET, "requests", None).await;
    assert_eq!(
        counts["triggers"],
        json!({"disabled": 5, "enabled": 2,
               "disabledByPath": {"PUT /a": 1, "PATCH /": 1, "POST /list": 1, "DELETE /a": 1, "PUT /e": 1}})
    );
    // The journal marks each write.
    let j = t.lever(Method::GET, "journal", None).await;
    let marks: Vec<(String, bool, Value)> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                format!(
                    "{} {}",
                    e["method"].as_str().unwrap(),
                    e["path"].as_str().unwrap()
                ),
                e["disableTriggers"].as_bool().unwrap(),
                e["writeSizeLimit"].clone(),
            )
        })
        .collect();
    assert_eq!(marks[0], ("PUT /a".into(), true, Value::Null));
    assert_eq!(marks[4], ("PUT /c".into(), false, Value::Null));
    assert_eq!(marks[5], ("PUT /d".into(), false, Value::Null));
    assert_eq!(marks[6], ("PUT /e".into(), true, json!("tiny")));
    assert_eq!(marks[9], ("GET /b".into(), false, Value::Null));
    // Reset with the counts.
    t.lever(Method::DELETE, "requests", None).await;
    assert_eq!(
        t.lever(Method::GET, "requests", None).await["triggers"],
        json!({"disabled": 0, "enabled": 0, "disabledByPath": {}})
    );
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Priorities (`.priority` / `.value`, `format=export`, `$priority`, `getPriority()`)

impl Target {
    /// GET `path?format=export` (the data with priorities).
    async fn export_get(&self, path: &str) -> Value {
        let r = self
            .req(Method::GET, path, "format=export", &[], None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text);
        r.json()
    }
}

#[tokio::test]
async fn priorities_are_written_kept_and_read_with_format_export_only() {
    let t = embedded_target().await;
    t.put(
        "users",
        json!({"a": {"n": 1, ".priority": 2}, "b": {".value": "x", ".priority": "p"}, "c": 3, "d": {".value": 4}}),
    )
    .await;
    // A plain read leaves them out; format=export has them.
    assert_eq!(
        t.get("users").await,
        json!({"a": {"n": 1}, "b": "x", "c": 3, "d": 4})
    );
    assert_eq!(
        t.export_get("users").await,
        json!({"a": {"n": 1, ".priority": 2}, "b": {".value": "x", ".priority": "p"}, "c": 3, "d": 4})
    );
    assert_eq!(t.get("users/b").await, json!("x"));
    assert_eq!(
        t.export_get("users/b").await,
        json!({".value": "x", ".priority": "p"})
    );
    // The priority at its own path.
    assert_eq!(t.get("users/a/.priority").await, json!(2));
    assert_eq!(t.get("users/b/.priority").await, json!("p"));
    assert_eq!(t.get("users/c/.priority").await, Value::Null);
    assert_eq!(t.get("missing/.priority").await, Value::Null);
    // A priority is not a child: shallow reads and queries do not list it.
    let r = t.req(Method::GET, "users", "shallow=true", &[], None).await;
    assert_eq!(
        r.json(),
        json!({"a": true, "b": true, "c": true, "d": true})
    );
    let r = t
        .req(
            Method::GET,
            "users/a",
            &format!("orderBy={}", enc("\"$key\"")),
            &[],
            None,
        )
        .await;
    assert_eq!(r.json(), json!({"n": 1}));

    // POST and PATCH write them too.
    let r = t
        .req(
            Method::POST,
            "users",
            "",
            &[],
            Some(json!({"n": 5, ".priority": 1.5})),
        )
        .await;
    let name = r.json()["name"].as_str().unwrap().to_string();
    assert_eq!(
        t.export_get(&format!("users/{name}")).await,
        json!({"n": 5, ".priority": 1.5})
    );
    let r = t
        .req(
            Method::PATCH,
            "users",
            "",
            &[],
            Some(json!({"e": {".value": true, ".priority": 7}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        t.export_get("users/e").await,
        json!({".value": true, ".priority": 7})
    );
    assert_eq!(t.get("users/e").await, json!(true));

    // A priority on nothing is nothing; null is no priority.
    t.put("lonely", json!({".priority": 1})).await;
    assert_eq!(t.export_get("lonely").await, Value::Null);
    t.put("plain", json!({"x": 1, ".priority": null})).await;
    assert_eq!(t.export_get("plain").await, json!({"x": 1}));

    // Refused: a priority that is not a number or a string, `.value` beside data, a push under
    // `.priority`, an unknown format. Nothing changes.
    for (path, body) in [
        ("users/a", json!({"n": 1, ".priority": {"x": 1}})),
        ("users/a", json!({"n": 1, ".priority": true})),
        ("users/a", json!({".value": 1, "k": 2})),
        ("users/a", json!({".value": {"k": 2}, ".priority": 1})),
        ("users/a/.priority", json!({"x": 1})),
    ] {
        let r = t.req(Method::PUT, path, "", &[], Some(body.clone())).await;
        let msg = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(
            msg.contains("priority") || msg.contains(".value"),
            "{body}: {msg}"
        );
    }
    let r = t
        .req(Method::POST, "users/a/.priority", "", &[], Some(json!(1)))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    let r = t.req(Method::GET, "users", "format=nope", &[], None).await;
    assert!(r.assert_error(StatusCode::BAD_REQUEST).contains("export"));
    assert_eq!(
        t.export_get("users/a").await,
        json!({"n": 1, ".priority": 2})
    );
    t.finish().await;
}

#[tokio::test]
async fn a_priority_is_set_and_removed_at_its_path_and_follows_writes_as_the_service_keeps_it() {
    let t = embedded_target().await;
    t.put("n", json!({"obj": {"x": 1}, "prim": 3, "arr": ["a", "b"]}))
        .await;
    // PUT <path>/.priority: an object gets a `.priority`, a primitive becomes `.value` + it.
    assert_eq!(t.put("n/obj/.priority", json!("k")).await, json!("k"));
    t.put("n/prim/.priority", json!(9)).await;
    t.put("n/arr/.priority", json!(1)).await;
    assert_eq!(
        t.export_get("n").await,
        json!({"obj": {"x": 1, ".priority": "k"}, "prim": {".value": 3, ".priority": 9}, "arr": {"0": "a", "1": "b", ".priority": 1}})
    );
    assert_eq!(
        t.get("n").await,
        json!({"obj": {"x": 1}, "prim": 3, "arr": ["a", "b"]})
    );
    // On a missing node it does nothing.
    t.put("n/missing/.priority", json!(1)).await;
    assert_eq!(t.get("n/missing").await, Value::Null);
    // DELETE <path>/.priority removes it; the data stays.
    let r = t
        .req(Method::DELETE, "n/prim/.priority", "", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(t.export_get("n/prim").await, json!(3));
    // Writing below a node keeps its priority (a prioritised primitive that gets children
    // keeps the priority, not the value); replacing the node replaces it.
    t.put("n/prim/.priority", json!(9)).await;
    t.put("n/prim/child", json!(1)).await;
    assert_eq!(
        t.export_get("n/prim").await,
        json!({"child": 1, ".priority": 9})
    );
    t.req(Method::DELETE, "n/prim/child", "", &[], None).await;
    assert_eq!(t.export_get("n/prim").await, Value::Null);
    t.put("n/obj", json!({"y": 2})).await;
    assert_eq!(t.export_get("n/obj").await, json!({"y": 2}));
    // PATCH keys may end in `.priority`; they apply after the update's data, so a node the
    // update creates gets its priority.
    let r = t
        .req(
            Method::PATCH,
            "n",
            "",
            &[],
            Some(json!({"obj/.priority": 4, "fresh/v": 1, "fresh/.priority": "f", "ghost/.priority": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(t.export_get("n/obj").await, json!({"y": 2, ".priority": 4}));
    assert_eq!(
        t.export_get("n/fresh").await,
        json!({"v": 1, ".priority": "f"})
    );
    assert_eq!(t.get("n/ghost").await, Value::Null);
    let r = t
        .req(
            Method::PATCH,
            "n/obj",
            "",
            &[],
            Some(json!({".priority": {"no": 1}})),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);
    // The namespace's root has one too.
    t.put(".priority", json!(0)).await;
    assert_eq!(t.get(".priority").await, json!(0));
    t.finish().await;
}

#[tokio::test]
async fn order_by_priority_puts_none_first_then_numbers_then_strings_ties_by_key() {
    let t = embedded_target().await;
    t.put(
        "q",
        json!({
            "s-b": {".value": 1, ".priority": "b"},
            "s-a": {"x": 1, ".priority": "a"},
            "n-2": {"x": 1, ".priority": 2},
            "n-1b": {"x": 1, ".priority": 1},
            "n-1a": {".value": "v", ".priority": 1},
            "none-b": {"x": 1},
            "none-a": 5,
        }),
    )
    .await;
    let query = |q: &str| format!("orderBy={}{q}", enc("\"$priority\""));
    let keys_in_order = |text: &str| -> Vec<String> {
        // The emulator writes a query's results in its order; the keys in the text show it.
        let v: Value = serde_json::from_str(text).unwrap();
        let mut ks: Vec<(usize, String)> = v
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k.clone()))
            .collect();
        ks.sort();
        ks.into_iter().map(|(_, k)| k).collect()
    };
    let r = t.req(Method::GET, "q", &query(""), &[], None).await;
    assert_eq!(
        keys_in_order(&r.text),
        ["none-a", "none-b", "n-1a", "n-1b", "n-2", "s-a", "s-b"]
    );
    // Plain values in the results; with format=export, their priorities.
    assert_eq!(r.json()["n-1a"], json!("v"));
    let r = t
        .req(
            Method::GET,
            "q",
            &(query("&limitToFirst=3") + "&format=export"),
            &[],
            None,
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"none-a": 5, "none-b": {"x": 1}, "n-1a": {".value": "v", ".priority": 1}})
    );
    for (q, want) in [
        ("&limitToFirst=2", vec!["none-a", "none-b"]),
        ("&limitToLast=2", vec!["s-a", "s-b"]),
        ("&startAt=1&endAt=2", vec!["n-1a", "n-1b", "n-2"]),
        ("&equalTo=1", vec!["n-1a", "n-1b"]),
        (&format!("&startAt={}", enc("\"a\"")), vec!["s-a", "s-b"]),
        ("&startAt=2&limitToFirst=2", vec!["n-2", "s-a"]),
    ] {
        let r = t.req(Method::GET, "q", &query(q), &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
        assert_eq!(keys_in_order(&r.text), want, "{q}");
    }
    t.finish().await;
}

#[tokio::test]
async fn a_priority_change_changes_the_etag() {
    let t = embedded_target().await;
    t.put("e", json!({"x": 1})).await;
    let (_, plain) = t.get_etag("e").await;
    t.put("e/.priority", json!(3)).await;
    let (v, with) = t.get_etag("e").await;
    assert_eq!(v, json!({"x": 1}));
    assert_ne!(plain, with, "a priority change changes the ETag");
    // A conditional write with the ETag from before the priority changed is refused.
    let r = t
        .req(
            Method::PUT,
            "e",
            "",
            &[("if-match", &plain)],
            Some(json!({"x": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text);
    assert_eq!(r.json(), json!({"x": 1}));
    assert_eq!(r.etag(), with);
    // Back without it: the same ETag as before (equal data, equal ETags).
    t.req(Method::DELETE, "e/.priority", "", &[], None).await;
    assert_eq!(t.get_etag("e").await.1, plain);
    t.finish().await;
}

#[tokio::test]
async fn rules_get_priority_reads_stored_and_written_priorities() {
    let t = embedded_target().await;
    t.put(
        "items",
        json!({"open": {"v": 1, ".priority": "open"}, "shut": {"v": 1, ".priority": "shut"}, "none": {"v": 1}}),
    )
    .await;
    let rules = r#"{"rules": {
        "items": {"$id": {
            ".write": "data.getPriority() === 'open' || !data.exists()",
            ".validate": "newData.getPriority() === null || newData.getPriority() === 'open' || newData.getPriority() === 'shut'"
        }},
        "ranked": {".read": "data.child('x').getPriority() === 5"}
    }}"#;
    let r = t.put_rules(rules).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let user = json!({"uid": "u1"});
    // The stored priority decides `.write`.
    let r = t
        .as_user(&user, Method::PUT, "items/open/v", "", Some(json!(2)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for id in ["shut", "none"] {
        let r = t
            .as_user(
                &user,
                Method::PUT,
                &format!("items/{id}/v"),
                "",
                Some(json!(2)),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::UNAUTHORIZED),
            "Permission denied",
            "{id}"
        );
    }
    // The written priority decides `.validate`, for data with a priority and for a write at
    // `<path>/.priority` (a write of the node: its own `.write` and `.validate` rules).
    let r = t
        .as_user(
            &user,
            Method::PUT,
            "items/new",
            "",
            Some(json!({"v": 1, ".priority": "nope"})),
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED);
    let r = t
        .as_user(
            &user,
            Method::PUT,
            "items/new",
            "",
            Some(json!({"v": 1, ".priority": "shut"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = t
        .as_user(
            &user,
            Method::PUT,
            "items/open/.priority",
            "",
            Some(json!("nope")),
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED);
    let r = t
        .as_user(
            &user,
            Method::PUT,
            "items/open/.priority",
            "",
            Some(json!("shut")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Now shut: the same user can no longer write it.
    let r = t
        .as_user(&user, Method::PUT, "items/open/v", "", Some(json!(3)))
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.export_get("items/open").await,
        json!({"v": 2, ".priority": "shut"})
    );
    // A primitive's priority, read by `.read`.
    t.put("ranked/x", json!({".value": "y", ".priority": 4}))
        .await;
    let r = t.as_user(&user, Method::GET, "ranked", "", None).await;
    r.assert_error(StatusCode::UNAUTHORIZED);
    t.put("ranked/x/.priority", json!(5)).await;
    let r = t.as_user(&user, Method::GET, "ranked", "", None).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"x": "y"})));
    t.finish().await;
}

#[tokio::test]
async fn imports_exports_and_streamed_imports_keep_priorities() {
    let data = json!({"a": {"x": 1, ".priority": 1}, "b": {".value": "s", ".priority": "p"}});
    let emu = Emulator::start(EmulatorOptions {
        import: Some(json!({"db": data.clone()})),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = Target {
        base: emu.url(),
        ns: "db".into(),
        http: http_client(),
        emu: Some(emu),
    };
    assert_eq!(t.export_get("").await, data);
    assert_eq!(
        t.lever(Method::GET, "export", None).await,
        json!({"db": data.clone()})
    );
    // Export-on-exit's writer, imported again from the file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("saved.json");
    let mut out = Vec::new();
    t.emu.as_ref().unwrap().write_export(&mut out).unwrap();
    std::fs::write(&file, out).unwrap();
    // A streamed import (what a rehearsal's copy uses), in pieces cut anywhere.
    let text = serde_json::to_vec(&json!({"c": {"y": 2, ".priority": 3}})).unwrap();
    let pieces: Vec<msr_firebase::Result<bytes::Bytes>> = text
        .chunks(5)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    t.emu
        .as_ref()
        .unwrap()
        .import_stream("db", "more", futures_util::stream::iter(pieces))
        .await
        .unwrap();
    assert_eq!(
        t.export_get("more").await,
        json!({"c": {"y": 2, ".priority": 3}})
    );
    t.finish().await;
    let emu = Emulator::start(EmulatorOptions {
        import_file: Some(file),
        ..Default::default()
    })
    .await
    .unwrap();
    let again = Target {
        base: emu.url(),
        ns: "db".into(),
        http: http_client(),
        emu: Some(emu),
    };
    assert_eq!(again.export_get("").await, data);
    assert_eq!(again.get("").await, json!({"a": {"x": 1}, "b": "s"}));
    again.finish().await;
}
