//! `JsHost`: the Rust side of lib/host.js. One threadsafe JS function takes a request
//! (`{ op, ... }`, and for `run` the runner's `NativeScriptDb`) and resolves `{ ok, value }` or
//! `{ ok: false, code, message }`; a throwing user script is therefore data here, never a crash.

use std::path::Path;
use std::sync::Arc;

use napi::bindgen_prelude::{FnArgs, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use serde_json::{json, Value};

use super::script_db::NativeScriptDb;
use msr_firebase::cli::CliHost;
use msr_firebase::runner::{Method, ScriptDb, ScriptHost, ScriptMeta};
use msr_firebase::{Error, ErrorCode, Result};

/// `(request, db) => Promise<{ ok, value } | { ok: false, code, message }>`; weak, so it never
/// keeps Node alive on its own.
pub type HostFn = ThreadsafeFunction<HostArgs, Promise<Value>, HostArgs, Status, false, true>;
/// A request, and the running runner's scripts' `db` for a `run`.
pub type HostArgs = FnArgs<(Value, Option<NativeScriptDb>)>;

#[derive(Clone)]
pub struct JsHost {
    f: Arc<HostFn>,
}

impl JsHost {
    pub fn new(f: HostFn) -> JsHost {
        JsHost { f: Arc::new(f) }
    }

    async fn call(&self, req: Value) -> Result<Value> {
        self.call_with(req, None).await
    }

    async fn call_with(&self, req: Value, db: Option<NativeScriptDb>) -> Result<Value> {
        let op = req
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let promise = self
            .f
            .call_async_catch((req, db).into())
            .await
            .map_err(|e| Error::internal(format!("JS host call '{op}' failed: {}", e.reason)))?;
        let reply = promise
            .await
            .map_err(|e| Error::internal(format!("JS host '{op}' rejected: {}", e.reason)))?;
        if reply.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(reply.get("value").cloned().unwrap_or(Value::Null));
        }
        let code = reply
            .get("code")
            .and_then(Value::as_str)
            .and_then(ErrorCode::parse)
            .unwrap_or(ErrorCode::ScriptFailed);
        let message = reply
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("unknown error")
            .to_string();
        Err(Error::new(code, message))
    }
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl ScriptHost for JsHost {
    async fn load(&self, file: &Path) -> Result<ScriptMeta> {
        let v = self
            .call(json!({"op": "load", "file": path_str(file)}))
            .await?;
        serde_json::from_value(v).map_err(|e| Error::internal(format!("bad load reply: {e}")))
    }

    async fn run(&self, file: &Path, method: Method, info: &Value, db: &ScriptDb) -> Result<Value> {
        let req = json!({"op": "run", "file": path_str(file), "method": method, "info": info});
        self.call_with(req, Some(db.into())).await
    }
}

impl CliHost for JsHost {
    async fn load_config(&self, file: &Path) -> Result<Value> {
        self.call(json!({"op": "loadConfig", "file": path_str(file)}))
            .await
    }

    async fn set_env(&self, vars: Vec<(String, String)>) -> Result<()> {
        let vars: serde_json::Map<String, Value> = vars
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        self.call(json!({"op": "setEnv", "vars": vars}))
            .await
            .map(|_| ())
    }
}
