//! The napi edge: thin `#[napi]` items over the plain-Rust modules. Errors cross as
//! `"<CODE>\u{1f}<message>"` and `lib/native.js` turns them into `Error`s with `err.code`.

pub mod cli;
pub mod config;
pub mod database;
pub mod emulator;
pub mod error;
pub mod events;
pub mod fleet;
pub mod host;
pub mod lock;
pub mod rehearse;
pub mod results;
pub mod runner;
pub mod script_db;
pub mod status;
pub mod util;
