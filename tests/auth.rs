//! Application Default Credentials end to end against fake Google token services on loopback
//! (`common::google`): every credential type and the metadata server, the chain's order and
//! its "nothing found" message, token caching and refresh, and that no secret leaks into an
//! error or a `Debug` output.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::google::*;
use msr_firebase::rtdb::auth::{Env, METADATA_TIMEOUT};
use msr_firebase::rtdb::Auth;
use msr_firebase::ErrorCode;
use serde_json::{json, Value};

/// Every secret the fakes hand out or accept; none may ever appear in a message.
const SECRETS: [&str; 4] = ["SECRET", "BEGIN PRIVATE KEY", "ya29.", "src-"];

fn assert_no_secret(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "secret {s:?} in: {text}");
    }
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

/// An environment with nothing in it: no GOOGLE_APPLICATION_CREDENTIALS, no gcloud file, and
/// a metadata host that refuses connections.
fn empty_env(dir: &Path) -> Env {
    Env {
        credentials_file: None,
        gcloud_file: Some(
            dir.join("gcloud")
                .join("application_default_credentials.json"),
        ),
        metadata_host: "127.0.0.1:1".into(),
        allow_executables: false,
    }
}

async fn token_of(auth: &Auth) -> String {
    auth.header()
        .await
        .expect("token")
        .trim_start_matches("Bearer ")
        .to_string()
}

#[tokio::test]
async fn service_account_key_is_exchanged_at_its_token_uri_and_cached() {
    let g = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key.json", &g.service_account_json());
    let auth = Auth::application_default(Some(&key), &empty_env(dir.path())).unwrap();
    assert_eq!(auth.identity(), format!("service account {SA_EMAIL}"));
    let first = auth.bearer().await.unwrap();
    assert_eq!(first.header, "Bearer ya29.SECRET-access-1");
    assert!(first.fresh);
    let again = auth.bearer().await.unwrap();
    assert!(!again.fresh, "the cached token is reused");
    assert_eq!(g.calls("jwt-bearer"), 1);
    assert_no_secret(&format!("{auth:?} {first:?}"));
}

#[tokio::test]
async fn chain_order_explicit_then_env_then_gcloud_then_metadata() {
    let g = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sa = write(dir.path(), "sa.json", &g.service_account_json());
    let user = write(dir.path(), "user.json", &g.authorized_user_json());
    std::fs::create_dir_all(dir.path().join("gcloud")).unwrap();
    let gcloud = write(
        &dir.path().join("gcloud"),
        "application_default_credentials.json",
        &g.authorized_user_json(),
    );
    let env = Env {
        credentials_file: Some(user.clone()),
        gcloud_file: Some(gcloud.clone()),
        metadata_host: g.host(),
        allow_executables: false,
    };
    // 1. explicit wins over GOOGLE_APPLICATION_CREDENTIALS.
    let a = Auth::application_default(Some(&sa), &env).unwrap();
    assert_eq!(a.identity(), format!("service account {SA_EMAIL}"));
    // 2. then GOOGLE_APPLICATION_CREDENTIALS.
    let a = Auth::application_default(None, &env).unwrap();
    assert!(a.identity().contains("user.json"), "{}", a.identity());
    token_of(&a).await;
    assert_eq!(g.calls("refresh_token"), 1);
    // 3. then gcloud's application-default file.
    let env3 = Env {
        credentials_file: None,
        ..env.clone()
    };
    let a = Auth::application_default(None, &env3).unwrap();
    assert!(
        a.identity()
            .contains("application_default_credentials.json"),
        "{}",
        a.identity()
    );
    // 4. then the metadata server.
    std::fs::remove_file(&gcloud).unwrap();
    let a = Auth::application_default(None, &env3).unwrap();
    assert!(a.identity().contains("metadata server"), "{}", a.identity());
    assert_eq!(token_of(&a).await, "ya29.SECRET-access-1");
    assert_eq!(g.calls("metadata"), 1);
    assert_eq!(
        g.calls("jwt-bearer"),
        0,
        "no request was made for the skipped steps"
    );
}

#[tokio::test]
async fn authorized_user_refresh_token_from_gcloud_file() {
    let g = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = empty_env(dir.path());
    std::fs::create_dir_all(dir.path().join("gcloud")).unwrap();
    write(
        &dir.path().join("gcloud"),
        "application_default_credentials.json",
        &g.authorized_user_json(),
    );
    let a = Auth::application_default(None, &env).unwrap();
    g.set_token("ya29.SECRET-user");
    assert_eq!(token_of(&a).await, "ya29.SECRET-user");
    // A revoked refresh token: the message says what to do, not what the token was.
    let mut bad = g.authorized_user_json();
    bad["refresh_token"] = json!("SECRET-revoked");
    env.credentials_file = Some(write(dir.path(), "revoked.json", &bad));
    let e = Auth::application_default(None, &env)
        .unwrap()
        .header()
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthFailed);
    assert!(
        e.message.contains("invalid_grant")
            && e.message.contains("gcloud auth application-default login"),
        "{}",
        e.message
    );
    assert_no_secret(&e.message);
}

#[tokio::test]
async fn external_account_with_a_file_sourced_subject_token() {
    let g = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("oidc-token"), format!("{SUBJECT_TOKEN}\n")).unwrap();
    let file = write(
        dir.path(),
        "wif.json",
        // A relative path resolves against the credentials file's directory.
        &g.external_account_json(json!({"file": "oidc-token"}), false),
    );
    let env = Env {
        credentials_file: Some(file),
        ..empty_env(dir.path())
    };
    let a = Auth::application_default(None, &env).unwrap();
    assert_eq!(a.identity(), format!("external account {AUDIENCE}"));
    assert_eq!(token_of(&a).await, "ya29.SECRET-access-1");
    assert_eq!(
        g.state.lock().unwrap().sts_scopes,
        vec![DB_SCOPES.to_string()]
    );
    // The subject token is read again for every exchange: one the pool does not trust.
    std::fs::write(dir.path().join("oidc-token"), "SECRET-other-token").unwrap();
    let same = Auth::application_default(None, &env).unwrap();
    assert_eq!(
        token_of(&same).await,
        "ya29.SECRET-access-1",
        "the same file shares the cached token"
    );
    a.invalidate("Bearer ya29.SECRET-access-1").await;
    let e = same.header().await.unwrap_err();
    assert!(
        e.message.contains("could not be verified") && e.message.contains(AUDIENCE),
        "{}",
        e.message
    );
    assert_no_secret(&e.message);
}

#[tokio::test]
async fn external_account_url_sourced_then_impersonating_a_service_account() {
    let g = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    let src = json!({
        "url": g.url("/subject"),
        "headers": {"X-Subject-Key": "ci"},
        "format": {"type": "json", "subject_token_field_name": "id_token"},
    });
    let file = write(dir.path(), "wif.json", &g.external_account_json(src, true));
    let a = Auth::application_default(Some(&file), &empty_env(dir.path())).unwrap();
    assert_eq!(
        a.identity(),
        format!("external account {AUDIENCE} (as service account {TARGET_EMAIL})")
    );
    g.set_token("ya29.SECRET-impersonated");
    assert_eq!(token_of(&a).await, "ya29.SECRET-impersonated");
    assert_eq!(
        (g.calls("subject"), g.calls("sts"), g.calls("iam")),
        (1, 1, 1)
    );
    // STS is asked for cloud-platform only; the database scopes go to the impersonation.
    assert_eq!(
        g.state.lock().unwrap().sts_scopes,
        vec!["https://www.googleapis.com/auth/cloud-platform".to_string()]
    );
}

#[cfg(unix)]
#[tokio::test]
async fn external_account_executable_sourced_only_when_allowed() {
    use std::os::unix::fs::PermissionsExt;
    let g = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("print-token.sh");
    std::fs::write(
        &exe,
        format!(
            "#!/bin/sh\n[ \"$GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE\" = \"{AUDIENCE}\" ] || exit 3\n\
             echo '{{\"version\":1,\"success\":true,\"token_type\":\"{ID_TOKEN_TYPE}\",\"id_token\":\"{SUBJECT_TOKEN}\",\"expiration_time\":9999999999}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = json!({"executable": {"command": format!("{} --flag", exe.display()), "timeout_millis": 5000}});
    let file = write(dir.path(), "wif.json", &g.external_account_json(src, false));
    let env = empty_env(dir.path());
    let e = Auth::application_default(Some(&file), &env)
        .unwrap()
        .header()
        .await
        .unwrap_err();
    assert!(
        e.message
            .contains("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1"),
        "{}",
        e.message
    );
    assert_eq!(g.calls("sts"), 0);
    let env = Env {
        allow_executables: true,
        ..env
    };
    let a = Auth::application_default(Some(&file), &env).unwrap();
    assert_eq!(token_of(&a).await, "ya29.SECRET-access-1");
    assert_eq!(g.calls("sts"), 1);
}

#[tokio::test]
async fn impersonated_service_account_file() {
    let g = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "imp.json",
        &g.impersonated_json(g.service_account_json()),
    );
    let a = Auth::application_default(Some(&file), &empty_env(dir.path())).unwrap();
    assert_eq!(
        a.identity(),
        format!("service account {TARGET_EMAIL} impersonated by service account {SA_EMAIL}")
    );
    assert_eq!(token_of(&a).await, "ya29.SECRET-access-1");
    assert_eq!((g.calls("jwt-bearer"), g.calls("iam")), (1, 1));
    // And with gcloud user credentials as the source.
    let file = write(
        dir.path(),
        "imp2.json",
        &g.impersonated_json(g.authorized_user_json()),
    );
    let a = Auth::application_default(Some(&file), &empty_env(dir.path())).unwrap();
    assert_eq!(token_of(&a).await, "ya29.SECRET-access-1");
    assert_eq!((g.calls("refresh_token"), g.calls("iam")), (1, 2));
}

#[tokio::test]
async fn metadata_server_named_by_gce_metadata_host() {
    let g = FakeGoogle::start().await;
    let a = Auth::metadata_server(&g.host());
    g.set_token("ya29.SECRET-workload-identity");
    assert_eq!(token_of(&a).await, "ya29.SECRET-workload-identity");
    assert!(a.identity().contains(&g.host()), "{}", a.identity());
}

#[tokio::test]
async fn a_metadata_server_still_starting_is_retried_briefly() {
    // GKE's metadata server answers 5xx for the first seconds of a pod's life.
    let g = FakeGoogle::start().await;
    g.state.lock().unwrap().metadata_unavailable = 2;
    let a = Auth::metadata_server(&g.host());
    assert_eq!(token_of(&a).await, "ya29.SECRET-access-1");
    assert_eq!(g.calls("metadata"), 3);

    // One that never gets ready: four attempts in all, then an error saying why.
    let g = FakeGoogle::start().await;
    g.state.lock().unwrap().metadata_unavailable = u32::MAX;
    let a = Auth::metadata_server(&g.host());
    let e = a.header().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthFailed);
    assert!(e.message.contains("HTTP 503"), "{}", e.message);
    assert!(e.message.contains("not ready"), "{}", e.message);
    assert_eq!(g.calls("metadata"), 4);
}

#[tokio::test]
async fn a_metadata_host_dropping_connections_is_retried_then_reported() {
    // Accepts and resets every connection, as a node whose metadata server is not up yet.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = accepted.clone();
    let reset = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // A zero linger resets the connection on drop at once (it never blocks).
            #[allow(deprecated)]
            let _ = s.set_linger(Some(Duration::ZERO));
            drop(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        metadata_host: host.clone(),
        ..empty_env(dir.path())
    };
    let a = Auth::application_default(None, &env).unwrap();
    let e = a.header().await.unwrap_err();
    reset.abort();
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 4);
    assert_eq!(e.code, ErrorCode::AuthFailed);
    assert!(
        e.message
            .contains(&format!("4. the metadata server at {host}:")),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_silent_metadata_server_fails_fast_listing_what_was_tried() {
    // Accepts connections and never answers, as a blackholed metadata address would.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        metadata_host: host.clone(),
        ..empty_env(dir.path())
    };
    let a = Auth::application_default(None, &env).unwrap();
    // Bounded by the metadata timeout, far below the 30 s request deadline.
    let e = tokio::time::timeout(METADATA_TIMEOUT * 3, a.header())
        .await
        .expect("the metadata step gives up by itself")
        .unwrap_err();
    hold.abort();
    assert_eq!(e.code, ErrorCode::AuthFailed);
    let m = &e.message;
    for expected in [
        "No Google credentials found. Tried, in order:",
        "1. applicationCredentials / --credentials: not set",
        "2. GOOGLE_APPLICATION_CREDENTIALS: not set",
        "3. gcloud's application-default credentials:",
        "does not exist",
        &format!("4. the metadata server at {host}: no answer within 3s"),
        "gcloud auth application-default login",
        "GCE_METADATA_HOST",
        "FIREBASE_DATABASE_EMULATOR_HOST",
    ] {
        assert!(m.contains(expected), "{expected:?} missing from:\n{m}");
    }
}

#[tokio::test]
async fn a_token_close_to_expiry_is_replaced_before_use() {
    let g = FakeGoogle::start().await;
    g.state.lock().unwrap().expires_in = 2;
    let a = Auth::metadata_server(&g.host());
    assert!(a.bearer().await.unwrap().fresh);
    assert!(!a.bearer().await.unwrap().fresh);
    // Refreshed at half a short lifetime: after 1 s of a 2 s token, before it expires.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    g.set_token("ya29.SECRET-next");
    let b = a.bearer().await.unwrap();
    assert!(b.fresh);
    assert_eq!(b.header, "Bearer ya29.SECRET-next");
    assert_eq!(g.calls("metadata"), 2);
}

#[tokio::test]
async fn an_invalidated_token_is_fetched_again_once() {
    let g = FakeGoogle::start().await;
    let a = Auth::metadata_server(&g.host());
    let old = a.header().await.unwrap();
    g.set_token("ya29.SECRET-rotated");
    a.invalidate("Bearer some-other-token").await;
    assert_eq!(
        a.header().await.unwrap(),
        old,
        "only the refused token is dropped"
    );
    a.invalidate(&old).await;
    assert_eq!(a.header().await.unwrap(), "Bearer ya29.SECRET-rotated");
    assert_eq!(g.calls("metadata"), 2);
}

#[test]
fn unusable_files_are_named_with_their_source_and_never_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        credentials_file: Some(dir.path().join("missing.json")),
        ..empty_env(dir.path())
    };
    let e = Auth::application_default(None, &env).unwrap_err();
    assert!(
        e.message
            .contains("missing.json (from GOOGLE_APPLICATION_CREDENTIALS): not found"),
        "{}",
        e.message
    );
    let cases = [
        (
            json!({"type": "external_account", "audience": "a", "subject_token_type": "t", "token_url": "http://x",
                "credential_source": {"environment_id": "aws1", "secret": "SECRET-aws"}}),
            "AWS",
        ),
        (
            json!({"type": "external_account", "audience": "a", "subject_token_type": "t", "token_url": "http://x",
                "credential_source": {}}),
            "none of \"file\", \"url\" or \"executable\"",
        ),
        (
            json!({"type": "impersonated_service_account", "service_account_impersonation_url": "http://x",
                "source_credentials": {"type": "authorized_user", "refresh_token": "SECRET-x"}}),
            "client_id",
        ),
        (
            json!({"type": "external_account_authorized_user", "refresh_token": "SECRET-x"}),
            "supported:",
        ),
    ];
    for (i, (v, why)) in cases.into_iter().enumerate() {
        let p = write(dir.path(), &format!("c{i}.json"), &v);
        let e = Auth::application_default(Some(&p), &empty_env(dir.path())).unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthFailed);
        assert!(
            e.message.contains(&format!(
                "c{i}.json (from applicationCredentials / --credentials)"
            )),
            "{}",
            e.message
        );
        assert!(e.message.contains(why), "{why}: {}", e.message);
        assert_no_secret(&e.message);
    }
}

// ---------------------------------------------------------------------------------------------
// Through the client to an emulator that requires the token

use common::{answer, emulator, fake_server, lever};
use msr_firebase::emulator::Emulator;
use msr_firebase::rtdb::{Client, ClientOptions, DatabaseUrl, RetryPolicy, SystemClock};
use std::sync::Arc;

fn client(emu: &Emulator, ns: &str, auth: Auth, auth_variable_override: Option<Value>) -> Client {
    Client::new(ClientOptions {
        url: DatabaseUrl::parse(&format!("{}?ns={ns}", emu.url())).unwrap(),
        auth,
        retry: RetryPolicy {
            max_retries: 0,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            window: None,
        },
        request_timeout: Duration::from_secs(5),
        connect_timeout: None,
        on_retry: None,
        clock: Arc::new(SystemClock),
        auth_variable_override,
    })
    .unwrap()
}

async fn require_token(emu: &Emulator, t: &str) {
    lever(
        emu,
        reqwest::Method::PUT,
        "auth",
        Some(json!({"tokens": [t]})),
    )
    .await;
}

#[tokio::test]
async fn every_credential_type_gets_through_to_an_emulator_requiring_its_token() {
    let g = FakeGoogle::start().await;
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("oidc"), SUBJECT_TOKEN).unwrap();
    let files = [
        ("sa.json", g.service_account_json()),
        ("user.json", g.authorized_user_json()),
        (
            "wif.json",
            g.external_account_json(json!({"file": "oidc"}), false),
        ),
        (
            "wif-imp.json",
            g.external_account_json(json!({"file": "oidc"}), true),
        ),
        ("imp.json", g.impersonated_json(g.service_account_json())),
    ];
    let mut auths: Vec<(String, Auth)> = files
        .iter()
        .map(|(name, v)| {
            let p = write(dir.path(), name, v);
            (
                name.to_string(),
                Auth::application_default(Some(&p), &empty_env(dir.path())).unwrap(),
            )
        })
        .collect();
    auths.push(("metadata".into(), Auth::metadata_server(&g.host())));
    for (i, (name, auth)) in auths.into_iter().enumerate() {
        let token = format!("ya29.SECRET-{i}");
        g.set_token(&token);
        require_token(&emu, &token).await;
        // Before the right token exists, the emulator refuses the owner's.
        let owner = client(&emu, "tok", Auth::EmulatorOwner, None);
        assert_eq!(
            owner.get("a").await.unwrap_err().code,
            ErrorCode::AuthFailed,
            "{name}"
        );
        let c = client(&emu, "tok", auth, None);
        c.set(&format!("by/{i}"), &json!(name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.get(&format!("by/{i}")).await.unwrap(), json!(name));
    }
    emu.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_cached_token_is_replaced_once_then_reported_by_identity() {
    let g = FakeGoogle::start().await;
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key.json", &g.service_account_json());
    let auth = Auth::application_default(Some(&key), &empty_env(dir.path())).unwrap();
    let c = client(&emu, "refresh", auth, None);
    g.set_token("ya29.SECRET-A");
    require_token(&emu, "ya29.SECRET-A").await;
    c.set("n", &json!(1)).await.unwrap();
    assert_eq!(g.calls("jwt-bearer"), 1);
    // The key's token was rotated server side: the cached one is refused, a new one accepted,
    // and the write goes through once.
    g.set_token("ya29.SECRET-B");
    require_token(&emu, "ya29.SECRET-B").await;
    c.set("n", &json!(2)).await.unwrap();
    assert_eq!(g.calls("jwt-bearer"), 2);
    assert_eq!(c.get("n").await.unwrap(), json!(2));
    assert_eq!(g.calls("jwt-bearer"), 2, "the new token is cached");
    // Every token the key can get is refused: one refresh, then an auth error naming the
    // account and never a token.
    require_token(&emu, "ya29.SECRET-never").await;
    let e = c.get("n").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthFailed, "{e}");
    assert!(
        e.message.contains(&format!("service account {SA_EMAIL}")),
        "{}",
        e.message
    );
    assert!(e.message.contains("Unauthorized request."), "{}", e.message);
    assert_no_secret(&e.message);
    assert_eq!(g.calls("jwt-bearer"), 3, "exactly one refresh");
    // The refused token is not kept: the next request starts with a new one and, that one
    // refused too, stops there (one token fetch and one request per failing request).
    lever(&emu, reqwest::Method::DELETE, "requests", None).await;
    let _ = c.get("n").await.unwrap_err();
    assert_eq!(g.calls("jwt-bearer"), 4);
    let counts = lever(&emu, reqwest::Method::GET, "requests", None).await;
    assert_eq!(counts["total"], 1);
    emu.stop().await.unwrap();
}

#[tokio::test]
async fn a_rules_denial_is_permission_denied_at_the_path_naming_the_identity() {
    let g = FakeGoogle::start().await;
    let emu = emulator().await;
    let c = client(&emu, "rules", Auth::metadata_server(&g.host()), None);
    lever(
        &emu,
        reqwest::Method::PUT,
        "allow",
        Some(json!({"ns": "rules", "paths": ["app"]})),
    )
    .await;
    c.set("app/x", &json!(1)).await.unwrap();
    let e = c.get_shallow("").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::PermissionDenied, "{e}");
    assert!(
        e.message.starts_with(
            "Permission denied at / for the default service account of the metadata server"
        ),
        "{}",
        e.message
    );
    assert_no_secret(&e.message);
    emu.stop().await.unwrap();
}

#[tokio::test]
async fn the_auth_override_goes_with_every_request_and_the_token_never_in_a_url() {
    let db = fake_server(Arc::new(|s, _| {
        let mut a = answer(200, if s.method == "DELETE" { "null" } else { "{}" });
        a.headers.push(("ETag", "e1".into()));
        a
    }))
    .await;
    let g = FakeGoogle::start().await;
    let c = Client::new(ClientOptions {
        url: DatabaseUrl::parse(&db.url()).unwrap(),
        auth: Auth::metadata_server(&g.host()),
        retry: RetryPolicy::default(),
        request_timeout: Duration::from_secs(5),
        connect_timeout: None,
        on_retry: None,
        clock: Arc::new(SystemClock),
        auth_variable_override: Some(json!({"uid": "migrator"})),
    })
    .unwrap();
    c.get("a").await.unwrap();
    c.get_shallow("a").await.unwrap();
    c.set("a", &json!(1)).await.unwrap();
    c.update("a", &serde_json::Map::new()).await.unwrap();
    c.put_if_match("a", &json!(1), "e1").await.unwrap();
    c.delete_if_match("a", "e1").await.unwrap();
    let seen = db.seen();
    assert_eq!(seen.len(), 6);
    for s in &seen {
        assert!(
            s.uri
                .contains("auth_variable_override=%7B%22uid%22%3A%22migrator%22%7D"),
            "{}",
            s.uri
        );
        assert_eq!(
            s.header("authorization"),
            Some("Bearer ya29.SECRET-access-1")
        );
        assert_no_secret(&s.uri);
    }
    // The emulator takes the override with shallow reads and streams too, and checks its form.
    let emu = emulator().await;
    let c = client(
        &emu,
        "ov",
        Auth::EmulatorOwner,
        Some(json!({"uid": "migrator", "role": "deploy"})),
    );
    c.get_shallow("x").await.unwrap();
    let _stream = c.stream("x").await.unwrap();
    let seen = lever(&emu, reqwest::Method::GET, "auth", None).await;
    assert_eq!(
        seen["lastOverride"],
        json!({"uid": "migrator", "role": "deploy"})
    );
    let bad = reqwest::get(format!(
        "{}/x.json?ns=ov&auth_variable_override=migrator",
        emu.url()
    ))
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    emu.stop().await.unwrap();
}
