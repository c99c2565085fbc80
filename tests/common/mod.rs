//! Set-up shared by the Rust integration tests: an embedded emulator on 127.0.0.1 (port 0) and
//! its test levers. Each test crate uses the parts it needs.
#![allow(dead_code)]

use msr_firebase::emulator::{Emulator, EmulatorOptions};
use serde_json::Value;

/// A fresh embedded emulator on a free loopback port.
pub async fn emulator() -> Emulator {
    Emulator::start(EmulatorOptions::default())
        .await
        .expect("emulator")
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
