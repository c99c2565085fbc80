//! msr-firebase core: a Firebase Realtime Database migration runner with a distributed lock.
//!
//! Plain Rust modules, one per concept. The thin napi binding layer is its own crate, `napi/`
//! (`msr-firebase-napi`), over this one.

pub mod backup;
mod choice;
pub mod cli;
pub mod config;
pub mod connection;
pub mod discovery;
pub mod emulator;
pub mod error;
pub mod exit_status;
pub mod fleet;
pub mod history;
#[cfg(test)]
mod layering;
pub mod lock;
pub mod log;
pub mod private_files;
pub mod redact;
pub mod rehearse;
pub mod rtdb;
pub mod rules;
pub mod runner;
pub mod time;

pub use error::{Error, ErrorCode, Result};
pub use exit_status::ExitStatus;
