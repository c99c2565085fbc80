//! `down <target> | --steps N [--no-wait] [--wait-timeout ms]`: roll back the executed migrations
//! newer than `target` (0: all of them), or the newest N.

use super::runner::{print_infos, Session};
use crate::cli::args::WaitArgs;
use crate::cli::host::CliHost;
use crate::cli::output::Io;
use crate::runner::plan::{parse_target, DownTo};
use crate::ExitStatus;

pub async fn run<H: CliHost>(
    session: &Session<H>,
    io: &mut Io,
    target: Option<&str>,
    steps: Option<u32>,
    wait: WaitArgs,
) -> ExitStatus {
    // clap already refuses neither and both (exit 1, its usage text); the rule is the core's.
    let to = match target
        .map(|t| parse_target(t, true))
        .transpose()
        .and_then(|version| DownTo::new(version, steps))
    {
        Ok(to) => to,
        Err(e) => return session.fail(io, "Rollback error", &e),
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
