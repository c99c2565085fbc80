//! The napi edge: thin `#[napi]` items over the plain-Rust modules. Errors cross as
//! `"<CODE>\u{1f}<message>"` and `lib/native.js` turns them into `Error`s with `err.code`.

mod cli;
mod config;
mod database;
mod emulator;
mod error;
mod host;
mod lock;
mod runner;
mod util;
