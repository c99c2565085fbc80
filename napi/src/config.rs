//! `FirebaseConfig` support: defaults, validation, `buildPath`.

use napi_derive::napi;
use serde_json::Value;

use super::error::IntoNapi;
use msr_firebase::config::Config;

/// Defaults (with the env-derived `databaseUrl` and `applicationCredentials`), as the settings
/// object `FirebaseConfig` holds.
#[napi(ts_return_type = "Record<string, unknown>")]
pub fn default_config() -> Value {
    Config::defaults_value()
}

/// Validate a (partial) config object; returns the complete normalised config.
#[napi(ts_return_type = "Record<string, unknown>")]
pub fn validate_config(config: Value) -> napi::Result<Value> {
    Config::from_value(&config).map(|c| c.to_value()).napi()
}

#[napi]
pub fn build_path(shift: Option<String>, path: String) -> String {
    msr_firebase::config::build_path(shift.as_deref(), &path)
}

/// Check the options object of a library call (`migrate()`, `down()`, `rehearse()`,
/// `runExclusive()`, `getInstance()`, `startEmulator()`): names, kinds and ranges, as the CLI
/// checks its flags.
#[napi(ts_args_type = "call: string, options: unknown")]
pub fn check_options(call: String, options: Value) -> napi::Result<()> {
    msr_firebase::config::arguments::check_options(&call, &options).napi()
}

/// A target version as the library got it (a number or a string): the core's rule, as the CLI
/// applies it (`allowZero`: `down`'s 0 = everything).
#[napi]
pub fn parse_target(raw: String, allow_zero: bool) -> napi::Result<f64> {
    msr_firebase::runner::plan::parse_target(&raw, allow_zero)
        .map(|t| t as f64)
        .napi()
}
