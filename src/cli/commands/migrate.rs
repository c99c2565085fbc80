//! `migrate [target] [--no-wait] [--wait-timeout ms] [--mark-applied]`: run the pending
//! migrations (up to `target`), or record them as applied without running them.

use super::runner::{print_infos, Session};
use crate::cli::args::WaitArgs;
use crate::cli::host::CliHost;
use crate::cli::output::Io;
use crate::runner::plan::parse_target;
use crate::ExitStatus;

pub async fn run<H: CliHost>(
    session: &Session<H>,
    io: &mut Io,
    target: Option<&str>,
    wait: WaitArgs,
    mark_applied: bool,
) -> ExitStatus {
    let target = match target.map(|t| parse_target(t, false)).transpose() {
        Ok(t) => t,
        Err(e) => return session.fail(io, "Migration error", &e),
    };
    let opts = session.options(target, wait, mark_applied);
    let would = if mark_applied {
        "Would mark as applied"
    } else {
        "Would execute"
    };
    let work = session.runner.migrate_outcome(opts);
    session
        .run_and_report(io, work, "Migration failed", would, |io, r| {
            let n = r.executed.len();
            if n == 0 {
                io.line(format!(
                    "{} Nothing to do: all {} migration(s) already executed",
                    io.green("✓"),
                    r.migrated.len()
                ));
                return;
            }
            if mark_applied {
                io.line(format!(
                    "{} Marked {n} migration(s) as applied without running them",
                    io.green("✓")
                ));
            } else {
                io.line(format!(
                    "{} Successfully executed {n} migration(s)",
                    io.green("✓")
                ));
            }
            print_infos(io, &r.executed);
        })
        .await
}
