//! What a command was invoked with, besides its configuration.

use std::path::Path;

use crate::cli::args::GlobalFlags;
use crate::ExitStatus;

/// What a command was invoked with, besides its configuration: the global flags, the host that
/// runs scripts, the working directory and the command's own failure status. Shared by the
/// single-database path (`one::run`, the runner's `Session`) and the run over many (`fleet`).
pub struct Invocation<'a, H> {
    pub global: &'a GlobalFlags,
    pub host: &'a H,
    pub cwd: &'a Path,
    pub own: ExitStatus,
}

impl<H> Clone for Invocation<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<H> Copy for Invocation<'_, H> {}
