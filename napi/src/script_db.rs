//! `NativeScriptDb`: a runner's `ScriptDb` (`msr_firebase::runner::script_db`, where it is
//! decided) as JS gets it — with every script run (`JsHost` hands the running runner's to
//! lib/host.js) and as `runner.scriptDb` (the library's `getHandler()`). lib/host.js has
//! lib/script-context.js build the scripts' `db` and `handler` from it once per `id`. Nothing
//! here outlives the objects JS holds: no table of databases in the process.

use napi_derive::napi;
use serde_json::Value;

use super::database::NativeDatabase;
use super::lock::NativeLock;
use msr_firebase::runner::ScriptDb;

#[napi]
pub struct NativeScriptDb {
    pub(crate) db: ScriptDb,
}

impl From<&ScriptDb> for NativeScriptDb {
    fn from(db: &ScriptDb) -> Self {
        NativeScriptDb { db: db.clone() }
    }
}

#[napi]
impl NativeScriptDb {
    /// The same for the runner's whole life, different for every runner in the process.
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.db.id as f64
    }
    /// The runner's connection, its writes fenced by the runner's lease (`db.database`).
    #[napi(getter)]
    pub fn database(&self) -> NativeDatabase {
        NativeDatabase {
            client: self.db.client.clone(),
            check_path: self.db.check_path.clone(),
        }
    }
    /// The runner's lock service and its live view of the lock node (`handler.lockingService`),
    /// or null when locking is disabled.
    #[napi(getter)]
    pub fn locking(&self) -> Option<NativeLock> {
        self.db.lock.clone().map(|svc| NativeLock {
            svc,
            live: self.db.live_lock.clone(),
        })
    }
    /// The runner's configuration as settings (`handler.cfg` where JS has none of its own).
    #[napi(getter, ts_return_type = "Record<string, unknown>")]
    pub fn config(&self) -> Value {
        self.db.cfg.to_value()
    }
}
