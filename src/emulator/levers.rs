//! The test levers' HTTP endpoint, `/.emulator/...` (documented in `mod.rs`): request counts,
//! deny and allow rules, a required bearer token, latency, injected faults, the server clock offset, the keep-alive interval,
//! the write-size limit (`write_size`), export and reset. Lever requests are not counted, delayed or denied.
//! The request journal and the delay lever have modules of their own (`journal`, `delay`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::response::{bad_request, error, json_response, read_json, Body};
use super::state::{FaultMode, Levers, LostResponses, Outage, State, WriteEvent, ALL_NAMESPACES};
use crate::rtdb::path;

/// `{"ns": "<namespace>", "paths": ["a/b", ...]}` (`ns` omitted: every namespace).
async fn read_rules(
    req: Request<Incoming>,
    lever: &str,
) -> Result<(String, Vec<Vec<String>>), Response<Body>> {
    let body = read_json(req).await?;
    let ns = match body.get("ns") {
        None | Some(Value::Null) => ALL_NAMESPACES.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad_request(format!("{lever}: \"ns\" must be a string"))),
    };
    let Some(paths) = body.get("paths").and_then(Value::as_array) else {
        return Err(bad_request(format!(
            "{lever}: expected {{\"ns\": \"<namespace>\", \"paths\": [\"a/b\", ...]}}"
        )));
    };
    let mut rules = Vec::new();
    for p in paths {
        let Some(p) = p.as_str() else {
            return Err(bad_request(format!("{lever}: paths must be strings")));
        };
        match path::segments(p) {
            Ok(segs) => rules.push(segs),
            Err(e) => return Err(bad_request(format!("{lever}: {}", e.message))),
        }
    }
    Ok((ns, rules))
}

/// Replace one namespace's rules; no paths removes them.
fn set_rules(map: &mut HashMap<String, Vec<Vec<String>>>, ns: String, rules: Vec<Vec<String>>) {
    if rules.is_empty() {
        map.remove(&ns);
    } else {
        map.insert(ns, rules);
    }
}

pub async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let name = req
        .uri()
        .path()
        .trim_start_matches("/.emulator")
        .trim_matches('/')
        .to_string();
    let ok = |v: Value| json_response(StatusCode::OK, &v, false);
    match (method, name.as_str()) {
        (Method::GET, "requests") => ok(state.levers().counts_json()),
        (Method::DELETE, "requests") => {
            state.levers().reset_counts();
            ok(state.levers().counts_json())
        }
        (Method::GET, "deny") => ok(state.levers().deny_json()),
        (Method::DELETE, "deny") => {
            state.levers().deny.clear();
            ok(state.levers().deny_json())
        }
        (Method::PUT, "deny") => match read_rules(req, "deny").await {
            Ok((ns, rules)) => {
                let mut levers = state.levers();
                set_rules(&mut levers.deny, ns, rules);
                ok(levers.deny_json())
            }
            Err(res) => res,
        },
        (Method::GET, "allow") => ok(state.levers().allow_json()),
        (Method::DELETE, "allow") => {
            state.levers().allow.clear();
            ok(state.levers().allow_json())
        }
        (Method::PUT, "allow") => match read_rules(req, "allow").await {
            Ok((ns, rules)) => {
                let mut levers = state.levers();
                set_rules(&mut levers.allow, ns, rules);
                ok(levers.allow_json())
            }
            Err(res) => res,
        },
        (Method::GET, "auth") => ok(state.levers().auth_json()),
        (Method::DELETE, "auth") => {
            state.levers().required_tokens.clear();
            ok(state.levers().auth_json())
        }
        (Method::PUT, "auth") => match read_json(req).await {
            Ok(b) => {
                let tokens: Option<Vec<String>> =
                    b.get("tokens").and_then(Value::as_array).and_then(|a| {
                        a.iter()
                            .map(|t| t.as_str().filter(|t| !t.is_empty()).map(str::to_string))
                            .collect()
                    });
                match tokens {
                    Some(t) => {
                        let mut levers = state.levers();
                        levers.required_tokens = t;
                        ok(levers.auth_json())
                    }
                    None => bad_request("auth: expected {\"tokens\": [\"<access token>\", ...]} (empty: accept any)"),
                }
            }
            Err(res) => res,
        },
        (Method::GET, "latency") => ok(json!({ "ms": state.levers().latency_ms })),
        (Method::PUT, "latency") => match read_json(req).await {
            Ok(b) => match b.get("ms").and_then(Value::as_u64) {
                Some(ms) => {
                    state.levers().latency_ms = ms;
                    ok(json!({ "ms": ms }))
                }
                None => bad_request("latency: expected {\"ms\": <non-negative integer>}"),
            },
            Err(res) => res,
        },
        (Method::GET, "faults") => {
            ok(json!({ "unavailableProbability": state.levers().unavailable_probability }))
        }
        (Method::PUT, "faults") => match read_json(req).await {
            Ok(b) => match b.get("unavailableProbability").and_then(Value::as_f64) {
                Some(p) if (0.0..=1.0).contains(&p) => {
                    state.levers().unavailable_probability = p;
                    ok(json!({ "unavailableProbability": p }))
                }
                _ => bad_request(
                    "faults: expected {\"unavailableProbability\": <number between 0 and 1>}",
                ),
            },
            Err(res) => res,
        },
        (Method::GET, "clock") => {
            let l = state.levers();
            ok(json!({ "offsetMs": l.clock_offset_ms, "now": l.now_ms() }))
        }
        (Method::PUT, "clock") => match read_json(req).await {
            Ok(b) => match b.get("offsetMs").and_then(Value::as_i64) {
                Some(off) => {
                    let mut l = state.levers();
                    l.clock_offset_ms = off;
                    ok(json!({ "offsetMs": off, "now": l.now_ms() }))
                }
                None => bad_request("clock: expected {\"offsetMs\": <integer>}"),
            },
            Err(res) => res,
        },
        (Method::GET, "limits") => ok(limits_json(&state.levers())),
        (Method::PUT, "limits") => match read_json(req).await {
            Ok(b) => {
                let response = b.get("responseBytes").map(|v| v.as_u64().filter(|n| *n > 0));
                let stream = b.get("streamAboveBytes").map(Value::as_u64);
                match (response, stream) {
                    (Some(None), _) | (_, Some(None)) | (None, None) => bad_request(
                        "limits: expected {\"responseBytes\": <positive integer>} (the largest response a read may have) and/or {\"streamAboveBytes\": <integer>} (plain reads larger than that are streamed)",
                    ),
                    (response, stream) => {
                        let mut l = state.levers();
                        if let Some(Some(n)) = response {
                            l.max_response_bytes = n as usize;
                        }
                        if let Some(Some(n)) = stream {
                            l.stream_above_bytes = n as usize;
                        }
                        ok(limits_json(&l))
                    }
                }
            }
            Err(res) => res,
        },
        (Method::GET, "write-size-limit") => ok(state.levers().write_size.json()),
        (Method::DELETE, "write-size-limit") => {
            let mut l = state.levers();
            l.write_size = Default::default();
            ok(l.write_size.json())
        }
        (Method::PUT, "write-size-limit") => match read_json(req).await {
            Ok(b) => {
                let mut l = state.levers();
                match l.write_size.apply(&b) {
                    Ok(()) => ok(l.write_size.json()),
                    Err(msg) => bad_request(msg),
                }
            }
            Err(res) => res,
        },
        (Method::GET, "streams") => ok(state.levers().streams_json()),
        (Method::DELETE, "streams") => {
            let mut levers = state.levers();
            levers.stream_refusal = None;
            levers.stream_close_after_ms = None;
            ok(levers.streams_json())
        }
        (Method::PUT, "streams") => match read_json(req).await {
            Ok(b) => {
                let refuse = b.get("refuse").and_then(Value::as_u64).map(|c| c as u16);
                let close = b.get("closeAfterMs").and_then(Value::as_u64);
                let status_ok = refuse.is_none_or(|c| (400..600).contains(&c));
                if !status_ok || (b.get("refuse").is_some_and(|v| !v.is_null()) && refuse.is_none()) {
                    bad_request("streams: expected {\"refuse\": <HTTP error status 400-599 or null>, \"closeAfterMs\": <ms or null>}")
                } else {
                    let mut levers = state.levers();
                    levers.stream_refusal = refuse;
                    levers.stream_close_after_ms = close;
                    ok(levers.streams_json())
                }
            }
            Err(res) => res,
        },
        (Method::GET, "keepalive") => ok(json!({ "ms": state.levers().keepalive_ms })),
        (Method::PUT, "keepalive") => match read_json(req).await {
            Ok(b) => match b.get("ms").and_then(Value::as_u64).filter(|ms| *ms > 0) {
                Some(ms) => {
                    state.levers().keepalive_ms = ms;
                    ok(json!({ "ms": ms }))
                }
                None => bad_request("keepalive: expected {\"ms\": <positive integer>}"),
            },
            Err(res) => res,
        },
        (Method::GET, "outage") => ok(state.levers().outage_json()),
        (Method::PUT, "outage") => match read_json(req).await {
            Ok(b) => {
                let mode = FaultMode::parse(b.get("mode").and_then(Value::as_str));
                let ns = match b.get("ns") {
                    None | Some(Value::Null) => Some(ALL_NAMESPACES.to_string()),
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    Some(_) => None,
                };
                match (b.get("ms").and_then(Value::as_u64), mode, ns) {
                    (Some(ms), Some(mode), Some(ns)) => {
                        let mut l = state.levers();
                        let until = Instant::now() + Duration::from_millis(ms);
                        l.outages.insert(ns, Outage { until, mode });
                        ok(l.outage_json())
                    }
                    _ => bad_request(
                        "outage: expected {\"ms\": <non-negative integer>, \"mode\": \"drop\" (default) or \"500\", \"ns\": \"<namespace>\" (default: every namespace)}",
                    ),
                }
            }
            Err(res) => res,
        },
        (Method::DELETE, "outage") => {
            state.levers().outages.clear();
            ok(state.levers().outage_json())
        }
        (Method::GET, "lost-responses") => ok(state.levers().lost_responses_json()),
        (Method::PUT, "lost-responses") => match read_json(req).await {
            Ok(b) => match lost_responses(&b) {
                Some(l) => {
                    let mut levers = state.levers();
                    levers.lost_responses = Some(l);
                    ok(levers.lost_responses_json())
                }
                None => bad_request(
                    "lost-responses: expected {\"skip\": <writes to let through, default 0>, \"count\": <writes that lose their \
                     response, default 1, null for all>, \"probability\": <0..1, default 1>, \"mode\": \"drop\" (default) or \"500\"}",
                ),
            },
            Err(res) => res,
        },
        (Method::DELETE, "lost-responses") => {
            state.levers().lost_responses = None;
            ok(state.levers().lost_responses_json())
        }
        (m, "journal") => super::journal::lever(state, &m),
        (_, "delay") => super::delay::lever(state, req).await,
        (Method::GET, "export") => ok(state.store().export()),
        (Method::POST, "reset") => {
            // Data first, under the store lock, with an event so open streams see the wipe.
            {
                let mut store = state.store();
                let namespaces = store.namespaces();
                store.clear();
                for ns in namespaces {
                    let _ = state.events.send(Arc::new(WriteEvent::Put {
                        ns,
                        path: Vec::new(),
                        data: Value::Null,
                    }));
                }
            }
            *state.levers() = Levers::default();
            state.rules().reset();
            ok(json!({ "reset": true }))
        }
        (method, _) => error(
            StatusCode::NOT_FOUND,
            format!("Unknown emulator lever: {method} /.emulator/{name}"),
        ),
    }
}

fn limits_json(l: &Levers) -> Value {
    json!({ "responseBytes": l.max_response_bytes, "streamAboveBytes": l.stream_above_bytes })
}

/// The lost-responses lever's settings from its JSON body.
fn lost_responses(b: &Value) -> Option<LostResponses> {
    let skip = match b.get("skip") {
        None => 0,
        Some(v) => v.as_u64()?,
    };
    let count = match b.get("count") {
        None => Some(1),
        Some(Value::Null) => None,
        Some(v) => Some(v.as_u64()?),
    };
    let probability = match b.get("probability") {
        None => 1.0,
        Some(v) => v.as_f64().filter(|p| (0.0..=1.0).contains(p))?,
    };
    let mode = FaultMode::parse(match b.get("mode") {
        None => None,
        Some(v) => Some(v.as_str()?),
    })?;
    Some(LostResponses {
        skip,
        count,
        probability,
        mode,
        lost: 0,
    })
}
