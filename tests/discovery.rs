//! Discovery (`--all-instances --project <id>`) against a fake of the Firebase Realtime
//! Database Management API on loopback (`common::google`, the same server as the fake token
//! services): every page is read, only active data instances are taken, the token is the
//! credential's read-only Firebase one, transient failures are retried, a refused cached token is
//! replaced once, and a 403 says what to grant — without a secret in any message.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::google::*;
use msr_firebase::discovery::{base_url, ManagementApi};
use msr_firebase::rtdb::auth::{Env, FIREBASE_READONLY_SCOPES};
use msr_firebase::rtdb::{Auth, RetryPolicy};
use msr_firebase::ErrorCode;
use serde_json::{json, Value};

const PROJECT: &str = "shop-prod";

fn assert_no_secret(text: &str) {
    for s in ["SECRET", "BEGIN PRIVATE KEY", "ya29."] {
        assert!(!text.contains(s), "secret {s:?} in: {text}");
    }
}

fn instance(id: &str, kind: &str, state: &str) -> Value {
    json!({
        "name": format!("projects/123456/locations/europe-west1/instances/{id}"),
        "project": "projects/123456",
        "databaseUrl": format!("https://{id}.europe-west1.firebasedatabase.app"),
        "type": kind,
        "state": state,
    })
}

fn write(dir: &Path, v: &Value) -> PathBuf {
    let p = dir.join("key.json");
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

/// The API on `g` as the service account of a key file pointing at `g`, with short pauses.
fn api(g: &FakeGoogle, dir: &Path) -> ManagementApi {
    let key = write(dir, &g.service_account_json());
    let env = Env {
        credentials_file: None,
        gcloud_file: None,
        metadata_host: "127.0.0.1:1".into(),
        allow_executables: false,
    };
    let auth = Auth::application_default_for(Some(&key), &env, &FIREBASE_READONLY_SCOPES).unwrap();
    ManagementApi::new(base_url(Some(&g.server.base)).unwrap(), auth).with_retry(RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        window: None,
    })
}

fn serve(g: &FakeGoogle, instances: Vec<Value>, page_size: usize) {
    let mut st = g.state.lock().unwrap();
    st.project = PROJECT.into();
    st.instances = instances;
    st.page_size = page_size;
}

fn page_tokens(g: &FakeGoogle) -> Vec<Option<String>> {
    g.server
        .seen()
        .iter()
        .filter(|s| s.uri.starts_with("/v1beta/"))
        .map(|s| {
            let (_, q) = s.uri.split_once('?').unwrap();
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "pageToken")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

#[tokio::test]
async fn every_page_is_read_and_only_active_data_instances_are_taken() {
    let g = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    serve(
        &g,
        vec![
            instance("shop-prod-default-rtdb", "DEFAULT_DATABASE", "ACTIVE"),
            instance("shard-1", "USER_DATABASE", "ACTIVE"),
            instance("shard-2", "USER_DATABASE", "DISABLED"),
            instance("shard-3", "USER_DATABASE", "ACTIVE"),
            instance("odd", "DATABASE_INSTANCE_TYPE_UNSPECIFIED", "ACTIVE"),
            instance("shard-4", "USER_DATABASE", "ACTIVE"),
            instance("gone", "USER_DATABASE", "DELETED"),
        ],
        2,
    );
    let found = api(&g, dir.path()).discover(PROJECT).await.unwrap();
    let names: Vec<&str> = found.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["shop-prod-default-rtdb", "shard-1", "shard-3", "shard-4"]
    );
    assert_eq!(
        found.databases()[1],
        (
            "shard-1".to_string(),
            "https://shard-1.europe-west1.firebasedatabase.app".to_string()
        )
    );
    let skipped: Vec<(&str, &str)> = found
        .skipped
        .iter()
        .map(|s| (s.instance.name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped[0].0 == "shard-2" && skipped[0].1.contains("DISABLED"));
    assert!(skipped[1].0 == "odd" && skipped[1].1.contains("DATABASE_INSTANCE_TYPE_UNSPECIFIED"));
    assert!(skipped[2].0 == "gone" && skipped[2].1.contains("DELETED"));
    // 7 instances, 2 a page: 4 requests, each asking for the page after the last.
    assert_eq!(found.requests, 4);
    assert_eq!(
        page_tokens(&g),
        [
            None,
            Some("after-2".into()),
            Some("after-4".into()),
            Some("after-6".into())
        ]
    );
    // One token, asked for with the read-only Firebase scope (the fake only serves `ro-` ones).
    assert_eq!(g.calls("jwt-bearer"), 1);
    assert_eq!(g.calls("instances"), 4);
}

#[tokio::test]
async fn a_403_names_the_identity_the_role_and_the_api_without_secrets() {
    let g = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    serve(&g, vec![instance("shard-1", "USER_DATABASE", "ACTIVE")], 0);
    // Another project than the credential may see: the fake says 403, as the API does.
    let e = api(&g, dir.path())
        .discover("shop-staging")
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::PermissionDenied);
    for part in [
        "project shop-staging",
        "HTTP 403",
        "The caller does not have permission",
        SA_EMAIL,
        "firebasedatabase.instances.list",
        "roles/firebasedatabase.viewer",
        "--all-instances",
    ] {
        assert!(e.message.contains(part), "{part:?} missing: {}", e.message);
    }
    assert_no_secret(&e.message);
    // The API disabled in the project: the fix is to enable it.
    g.state.lock().unwrap().refusals.push_back((
        403,
        json!({"error": {"code": 403, "status": "PERMISSION_DENIED", "message":
            "Firebase Realtime Database Management API has not been used in project 123456 before or it is disabled."}}),
    ));
    let e = api(&g, dir.path()).discover(PROJECT).await.unwrap_err();
    assert!(
        e.message
            .contains("gcloud services enable firebasedatabase.googleapis.com --project shop-prod"),
        "{}",
        e.message
    );
    assert_no_secret(&e.message);
}

#[tokio::test]
async fn transient_failures_are_retried_and_a_refused_cached_token_replaced_once() {
    let g = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    serve(&g, vec![instance("shard-1", "USER_DATABASE", "ACTIVE")], 0);
    let api = api(&g, dir.path());
    {
        let mut st = g.state.lock().unwrap();
        st.refusals
            .push_back((503, json!({"error": {"message": "backend unavailable"}})));
        st.refusals
            .push_back((429, json!({"error": {"status": "RESOURCE_EXHAUSTED"}})));
    }
    let found = api.discover(PROJECT).await.unwrap();
    assert_eq!(found.instances.len(), 1);
    assert_eq!(found.requests, 3, "two retries, then the page");
    // The token is revoked: the cached one is refused, a new one is fetched, the list goes on.
    g.set_token("ya29.SECRET-access-2");
    let found = api.discover(PROJECT).await.unwrap();
    assert_eq!(found.requests, 2);
    assert_eq!(g.calls("jwt-bearer"), 2);
    // Refused again right after it was issued: not fetched a third time, the credential is wrong.
    for _ in 0..2 {
        g.state.lock().unwrap().refusals.push_back((
            401,
            json!({"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "Request had invalid authentication credentials."}}),
        ));
    }
    let e = api.discover(PROJECT).await.unwrap_err();
    assert_eq!(g.calls("jwt-bearer"), 3);
    assert_eq!(e.code, ErrorCode::AuthFailed, "{}", e.message);
    assert!(e.message.contains(SA_EMAIL), "{}", e.message);
    assert_no_secret(&e.message);
    // An API that stays down: the retries end, the error says where it was asked.
    {
        let mut st = g.state.lock().unwrap();
        for _ in 0..4 {
            st.refusals.push_back((503, json!({})));
        }
    }
    let e = api.discover(PROJECT).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ConnectionFailed);
    assert!(e.message.contains(&g.server.base), "{}", e.message);
    assert!(
        e.message.contains("MSR_FIREBASE_MANAGEMENT_API"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn nothing_to_run_on_and_bad_projects_are_refused_with_the_reason() {
    let g = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    serve(
        &g,
        vec![instance("shard-1", "USER_DATABASE", "DISABLED")],
        0,
    );
    let api = api(&g, dir.path());
    let e = api.discover(PROJECT).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ConfigInvalid);
    assert!(
        e.message.contains("shard-1: state DISABLED"),
        "{}",
        e.message
    );
    let seen = g.calls("instances");
    let e = api.discover("../../v1/x").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ConfigInvalid);
    assert_eq!(
        g.calls("instances"),
        seen,
        "no request for a bad project id"
    );
    g.state.lock().unwrap().refusals.push_back((
        404,
        json!({"error": {"code": 404, "status": "NOT_FOUND", "message": "Project not found"}}),
    ));
    let e = api.discover(PROJECT).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::DatabaseNotFound);
    assert!(e.message.contains("check --project"), "{}", e.message);
}

#[tokio::test]
async fn the_metadata_server_gives_the_read_only_token_too() {
    let g = FakeGoogle::start().await;
    serve(&g, vec![instance("shard-1", "USER_DATABASE", "ACTIVE")], 0);
    let env = Env {
        credentials_file: None,
        gcloud_file: None,
        metadata_host: g.host(),
        allow_executables: false,
    };
    let auth = Auth::application_default_for(None, &env, &FIREBASE_READONLY_SCOPES).unwrap();
    let api = ManagementApi::new(base_url(Some(&g.server.base)).unwrap(), auth);
    let found = api.discover(PROJECT).await.unwrap();
    assert_eq!(found.instances[0].name, "shard-1");
    assert_eq!(g.calls("metadata"), 1);
}
