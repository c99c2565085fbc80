//! `/.settings/rules.json`: a namespace's Security Rules, for admins only (401 otherwise).
//! `GET` returns the stored text (comments kept; the open rules when the namespace has none),
//! `?format=strict` the same as plain JSON; `PUT` replaces them with the body, a rules document
//! (a document that does not parse or check is a 400 naming its line and column).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::data::{header, namespace, query_params};
use super::response::{bad_request, error, full, json_response, read_body, respond, Body};
use super::security::{who, Who};
use super::state::State;
use crate::rules::{Rules, OPEN_RULES, PERMISSION_DENIED};

pub const RULES_PATH: &str = "/.settings/rules.json";

pub async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let params = query_params(&req);
    let ns = match namespace(&req, &params) {
        Ok(ns) => ns,
        Err(msg) => return bad_request(msg),
    };
    let authorization = header(&req, "authorization");
    if !state.levers().token_accepted(authorization.as_deref()) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized request.");
    }
    match who(authorization.as_deref(), &params) {
        Err(msg) => return bad_request(msg),
        Ok((Who::Admin, _)) => {}
        Ok((Who::User(_), _)) => return error(StatusCode::UNAUTHORIZED, PERMISSION_DENIED),
    }
    let strict = params.iter().any(|(k, v)| k == "format" && v == "strict");
    match *req.method() {
        Method::GET => {
            let rules = state.rules().of(&ns);
            if strict {
                let doc = match &rules {
                    Some(r) => r.strict().clone(),
                    None => Rules::parse(OPEN_RULES)
                        .expect("the open rules parse")
                        .strict()
                        .clone(),
                };
                return json_response(StatusCode::OK, &doc, true);
            }
            let text = rules.map_or_else(|| OPEN_RULES.to_string(), |r| r.text().to_string());
            respond(
                StatusCode::OK,
                full(text),
                Some("application/json; charset=utf-8"),
            )
        }
        Method::PUT => {
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(res) => return res,
            };
            let Ok(text) = std::str::from_utf8(&body) else {
                return bad_request("The rules document is not UTF-8 text");
            };
            match Rules::parse(text) {
                Ok(rules) => {
                    state.rules().set(Some(&ns), rules);
                    json_response(StatusCode::OK, &json!({ "status": "ok" }), false)
                }
                Err(e) => bad_request(e.to_string()),
            }
        }
        ref other => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {other} is not supported on {RULES_PATH} (GET or PUT)"),
        ),
    }
}
