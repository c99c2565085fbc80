//! The connection and fence of the CLI's runner, for the `db` its scripts get (`cliDatabase()`
//! in the binding): scripts share the runner's connection and are fenced by its lease (L12).

/// `(client, fence, the path checkConnection() reads)`.
pub type ScriptDb = (crate::rtdb::Client, crate::lock::Fence, String);

/// Set by the command that runs scripts (`migrate`, `down`, ...; `rehearse`: the sandbox's).
pub static SCRIPT_DB: std::sync::Mutex<Option<ScriptDb>> = std::sync::Mutex::new(None);

/// The scripts of this command get `db`.
pub fn set(db: ScriptDb) {
    *SCRIPT_DB.lock().unwrap_or_else(|p| p.into_inner()) = Some(db);
}
