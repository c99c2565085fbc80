//! The embedded RTDB emulator (INTERFACE; body to be implemented): a hyper/tokio server on
//! loopback speaking the REST protocol of shared/spec/rtdb-rest.md, plus test levers under
//! `/.emulator/` (request counts, deny rules, latency, injected 503s, reset).

use std::net::SocketAddr;

use serde_json::Value;

use crate::Result;

#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    pub host: String,
    /// 0 = any free port.
    pub port: u16,
    /// Initial data: `{ "<namespace>": <tree>, ... }`.
    pub import: Option<Value>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            host: "127.0.0.1".into(),
            port: 0,
            import: None,
        }
    }
}

/// A running emulator. Dropping it does not stop it; call `stop()`.
pub struct Emulator {
    addr: SocketAddr,
}

impl Emulator {
    pub async fn start(opts: EmulatorOptions) -> Result<Emulator> {
        todo!("{opts:?}")
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://host:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// `host:port`, the value for `FIREBASE_DATABASE_EMULATOR_HOST`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
    /// Every namespace's data: `{ "<namespace>": <tree> }`.
    pub fn export(&self) -> Value {
        todo!()
    }
    /// Stop accepting, close streams, wait for in-flight requests.
    pub async fn stop(self) -> Result<()> {
        todo!()
    }
}
