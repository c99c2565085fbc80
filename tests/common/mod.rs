//! Set-up shared by the Rust integration tests: an embedded emulator on 127.0.0.1 (port 0) and
//! its test levers, a scripted HTTP server that records every request (for what the emulator
//! cannot inject), and fake Google token services (`google`). Each test crate uses the parts it
//! needs.
#![allow(dead_code)]

pub mod google;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use msr_firebase::emulator::{Emulator, EmulatorOptions};
use serde_json::Value;

/// A fresh embedded emulator on a free loopback port.
pub async fn emulator() -> Emulator {
    Emulator::start(EmulatorOptions::default())
        .await
        .expect("emulator")
}

/// A client for namespace `test` of `emu`, with a connection pool and server-clock estimate of
/// its own, on `clock`.
pub fn emulator_client(
    emu: &Emulator,
    clock: Arc<dyn msr_firebase::rtdb::Clock>,
    retry: msr_firebase::rtdb::RetryPolicy,
    request_timeout: Duration,
) -> msr_firebase::rtdb::Client {
    msr_firebase::rtdb::Client::new(msr_firebase::rtdb::ClientOptions {
        url: msr_firebase::rtdb::DatabaseUrl::parse(&format!("{}?ns=test", emu.url()))
            .expect("url"),
        auth: msr_firebase::rtdb::Auth::EmulatorOwner,
        retry,
        request_timeout,
        connect_timeout: None,
        on_retry: None,
        clock,
        auth_variable_override: None,
    })
    .expect("client")
}

/// A client on `url` (an emulator's namespace) acting as the database owner, retrying a failed
/// request `max_retries` times after 5-20 ms.
pub fn owner_client(url: &str, max_retries: u32) -> msr_firebase::rtdb::Client {
    client_as(url, max_retries, None)
}

/// `owner_client`, acting as `auth` (`databaseAuthVariableOverride`; `None`: an admin).
pub fn client_as(
    url: &str,
    max_retries: u32,
    auth: Option<serde_json::Value>,
) -> msr_firebase::rtdb::Client {
    msr_firebase::rtdb::Client::new(msr_firebase::rtdb::ClientOptions {
        url: msr_firebase::rtdb::DatabaseUrl::parse(url).expect("url"),
        auth: msr_firebase::rtdb::Auth::EmulatorOwner,
        retry: msr_firebase::rtdb::RetryPolicy {
            max_retries,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            window: None,
        },
        request_timeout: Duration::from_secs(10),
        connect_timeout: None,
        on_retry: None,
        clock: Arc::new(msr_firebase::rtdb::SystemClock),
        auth_variable_override: auth,
    })
    .expect("client")
}

/// A lock service (no shift) with a lease of `timeout_ms` on `client`.
pub fn lock_service_on(
    client: msr_firebase::rtdb::Client,
    timeout_ms: u64,
) -> msr_firebase::lock::LockService {
    msr_firebase::lock::LockService::new(
        client,
        None,
        msr_firebase::lock::LockOptions {
            timeout_ms,
            ..Default::default()
        },
    )
}

/// Call a test lever (`/.emulator/<path>`); its JSON answer (`null` when it has none).
pub async fn lever(
    emu: &Emulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut rb = reqwest::Client::new().request(method, format!("{}/.emulator/{path}", emu.url()));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.expect("lever");
    assert!(
        resp.status().is_success(),
        "lever {path}: {}",
        resp.status()
    );
    serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null)
}

/// Reset the emulator's request counts.
pub async fn reset_counts(emu: &Emulator) {
    lever(emu, reqwest::Method::DELETE, "requests", None).await;
}

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake server answers. `status == 0` drops the connection without an answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay_ms: u64,
}

pub fn answer(status: u16, body: impl Into<String>) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: body.into(),
        delay_ms: 0,
    }
}

pub fn with_etag(mut a: Answer, etag: &str) -> Answer {
    a.headers.push(("ETag", etag.to_string()));
    a
}

pub type Script = Arc<dyn Fn(&Seen, usize) -> Answer + Send + Sync>;

pub struct Fake {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    pub fn url(&self) -> String {
        format!("{}?ns=fake", self.base)
    }
}

pub async fn fake_server(script: Script) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    let script = script.clone();
                    async move {
                        let method = req.method().to_string();
                        let uri = req.uri().to_string();
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                            .collect();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let s = Seen {
                            method,
                            uri,
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        };
                        let index = {
                            let mut log = seen.lock().unwrap();
                            log.push(s.clone());
                            log.len() - 1
                        };
                        let a = script(&s, index);
                        if a.delay_ms > 0 {
                            tokio::time::sleep(Duration::from_millis(a.delay_ms)).await;
                        }
                        if a.status == 0 {
                            return Err(std::io::Error::other("dropping the connection"));
                        }
                        let mut resp = hyper::Response::builder().status(a.status);
                        for (k, v) in a.headers {
                            resp = resp.header(k, v);
                        }
                        Ok::<_, std::io::Error>(resp.body(Full::new(Bytes::from(a.body))).unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Fake { base, seen }
}

/// A proxy on 127.0.0.1 in front of `target` (`http://host:port`) that passes every request on
/// and its answer back, except that the first `cuts` answers to requests `cut` picks end half way
/// through their body: the connection is dropped there, as a network that breaks off does.
/// Returns its base URL and the URIs of the requests `cut` picked.
pub async fn cutting_proxy(
    target: String,
    cuts: usize,
    cut: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    use futures_util::{stream, StreamExt};
    use http_body_util::StreamBody;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let picked: Arc<Mutex<Vec<String>>> = Arc::default();
    let (picked2, cut) = (picked.clone(), Arc::new(cut));
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let (picked, cut, http, target) =
                (picked2.clone(), cut.clone(), http.clone(), target.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (picked, cut, http, target) =
                        (picked.clone(), cut.clone(), http.clone(), target.clone());
                    async move {
                        let method = req.method().clone();
                        let uri = req.uri().to_string();
                        let headers = req.headers().clone();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let mut fwd = http.request(method.clone(), format!("{target}{uri}"));
                        for (k, v) in headers.iter() {
                            if !["host", "content-length", "transfer-encoding", "connection"]
                                .contains(&k.as_str())
                            {
                                fwd = fwd.header(k, v);
                            }
                        }
                        let res = fwd.body(body).send().await.unwrap();
                        let status = res.status();
                        let mut out = hyper::Response::builder().status(status.as_u16());
                        for (k, v) in res.headers() {
                            if k != "content-length" && k != "transfer-encoding" {
                                out = out.header(k, v);
                            }
                        }
                        let text = res.bytes().await.unwrap();
                        let cutting = cut(method.as_str(), &uri) && {
                            let mut p = picked.lock().unwrap();
                            p.push(uri.clone());
                            p.len() <= cuts
                        };
                        let body = if cutting {
                            // The first half goes out (given time to be sent), then the
                            // connection is dropped.
                            let half = hyper::body::Frame::data(text.slice(..text.len() / 2));
                            let cut = async {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                Err(std::io::Error::other("cut"))
                            };
                            let pieces = stream::iter([Ok(half)]).chain(stream::once(cut));
                            BodyExt::boxed(StreamBody::new(pieces))
                        } else {
                            Full::new(text).map_err(|never| match never {}).boxed()
                        };
                        Ok::<_, std::io::Error>(out.body(body).unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(conn), svc)
                    .await;
            });
        }
    });
    (base, picked)
}
