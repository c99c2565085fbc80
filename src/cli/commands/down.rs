//! `down <target> | --steps N [--no-wait] [--wait-timeout ms]`: roll back the executed migrations
//! newer than `target` (0: all of them), or the newest N.

use super::runner::{print_infos, Session};
use crate::cli::args::WaitArgs;
use crate::cli::host::CliHost;
use crate::cli::output::Io;
use crate::runner::plan::{parse_target, DownTo};
use crate::{Error, ErrorCode, ExitStatus};

pub async fn run<H: CliHost>(
    session: &Session<H>,
    io: &mut Io,
    target: Option<&str>,
    steps: Option<u32>,
    wait: WaitArgs,
) -> ExitStatus {
    let to = match (steps, target) {
        (Some(n), _) => DownTo::Steps(n),
        (None, Some(t)) => match parse_target(t, true) {
            Ok(t) => DownTo::Version(t),
            Err(e) => return session.fail(io, "Rollback error", &e),
        },
        (None, None) => {
            let e = Error::new(
                ErrorCode::Usage,
                "down needs a targetVersion (0 rolls back everything) or --steps N",
            );
            return session.fail(io, "Rollback error", &e);
        }
    };
    let opts = session.options(None, wait, false);
    let work = session.runner.down_to_outcome(to, opts);
    session
        .run_and_report(io, work, "Rollback failed", "Would roll back", |io, r| {
            let n = r.executed.len();
            match to {
                DownTo::Version(t) => io.line(format!(
                    "{} Successfully rolled back {n} migration(s) to version {t}",
                    io.green("✓")
                )),
                DownTo::Steps(_) => {
                    let now_at = r.migrated.iter().map(|m| m.timestamp).max().unwrap_or(0);
                    io.line(format!(
                        "{} Successfully rolled back {n} migration(s); now at version {now_at}",
                        io.green("✓")
                    ))
                }
            }
            print_infos(io, &r.executed);
        })
        .await
}
