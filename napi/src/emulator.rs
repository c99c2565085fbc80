//! `startEmulator({ host, port, import, importFile, rules })` -> `{ url, host, port, stop() }`.

use std::collections::HashMap;

use napi::Either;
use napi_derive::napi;
use serde_json::Value;
use tokio::sync::Mutex;

use super::error::IntoNapi;
use msr_firebase::emulator::{Emulator, EmulatorOptions, RulesFile};

#[napi(object)]
pub struct StartEmulatorOptions {
    pub host: Option<String>,
    pub port: Option<u32>,
    /// Initial data: `{ "<namespace>": <tree> }`.
    pub import: Option<Value>,
    /// Initial data from a JSON file of that shape, parsed as it is read (any size); rules saved
    /// beside it (`<name>.rules.json`) are loaded too.
    pub import_file: Option<String>,
    /// Security Rules: the path of a rules file for every namespace, or `{ "<namespace>": path }`
    /// (`"*"`: every namespace not listed). A file that does not parse fails the start with its
    /// `file:line:column`.
    pub rules: Option<Either<String, HashMap<String, String>>>,
}

#[napi]
pub struct NativeEmulator {
    inner: Mutex<Option<Emulator>>,
    url: String,
    host: String,
    port: u32,
}

#[napi]
impl NativeEmulator {
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.url.clone()
    }
    #[napi(getter)]
    pub fn host(&self) -> String {
        self.host.clone()
    }
    #[napi(getter)]
    pub fn port(&self) -> u32 {
        self.port
    }
    /// Every namespace's data: `{ "<namespace>": <tree> }`.
    #[napi(ts_return_type = "Promise<Record<string, unknown>>")]
    pub async fn export(&self) -> napi::Result<Value> {
        Ok(self
            .inner
            .lock()
            .await
            .as_ref()
            .map(|e| e.export())
            .unwrap_or(Value::Null))
    }
    /// Stop the server (idempotent).
    #[napi]
    pub async fn stop(&self) -> napi::Result<()> {
        if let Some(emu) = self.inner.lock().await.take() {
            emu.stop().await.napi()?;
        }
        Ok(())
    }
}

#[napi]
pub async fn start_emulator(options: Option<StartEmulatorOptions>) -> napi::Result<NativeEmulator> {
    let o = options.unwrap_or(StartEmulatorOptions {
        host: None,
        port: None,
        import: None,
        import_file: None,
        rules: None,
    });
    let rules = match o.rules {
        None => Vec::new(),
        Some(Either::A(path)) => vec![RulesFile {
            namespace: None,
            path: path.into(),
        }],
        Some(Either::B(map)) => map
            .into_iter()
            .map(|(ns, path)| RulesFile {
                namespace: (ns != "*").then_some(ns),
                path: path.into(),
            })
            .collect(),
    };
    let opts = EmulatorOptions {
        host: o.host.unwrap_or_else(|| "127.0.0.1".into()),
        port: o.port.unwrap_or(0).min(u16::MAX as u32) as u16,
        import: o.import,
        import_file: o.import_file.map(std::path::PathBuf::from),
        rules,
    };
    let emu = Emulator::start(opts).await.napi()?;
    let addr = emu.addr();
    Ok(NativeEmulator {
        url: emu.url(),
        host: addr.ip().to_string(),
        port: addr.port() as u32,
        inner: Mutex::new(Some(emu)),
    })
}
