//! `migrate --mark-applied`: record each selected migration as executed without running it
//! (adopting a database that already has their effects), in version order, under the lock
//! (proved before each record, as a real run does).

use crate::history::HistoryRecord;
use crate::Result;

use super::context::Run;
use super::discover::Script;
use super::events::{RunEvent, Step};
use super::{now_ms, Method, MigrationInfo, MigrationResult, Runner, ScriptHost};

impl<H: ScriptHost> Runner<H> {
    pub(crate) async fn mark_applied(
        &self,
        run: &Run,
        selected: &[Script],
        result: &mut MigrationResult,
    ) -> Result<()> {
        self.info(&format!(
            "Marking {} migration(s) as applied without running them...",
            selected.len()
        ));
        for (i, s) in selected.iter().enumerate() {
            let checked = self.check_guard(run.guard()).await;
            let so_far = format!("{i} migration(s) were marked as applied");
            self.between_steps(checked, &format!("marking {}", s.name), &so_far, || {
                format!(
                    "Interrupted before marking {}: {i} of {} migration(s) marked as applied. Run migrate --mark-applied again to continue.",
                    s.name,
                    selected.len()
                )
            })?;
            let now = now_ms();
            let record = run.record(s, (now, now), None, true);
            let key = self
                .ride_out(run.guard(), "record the migration in the history", || {
                    run.history.record(&record)
                })
                .await
                .map_err(|e| {
                    e.context(format!(
                        "Marking {} as applied failed after {i} of {} migration(s)",
                        s.name,
                        selected.len()
                    ))
                })?;
            let info = MigrationInfo::from_record(&HistoryRecord { key, ..record });
            result.executed.push(info.clone());
            self.emit(RunEvent::Marked {
                script: info,
                step: Step {
                    index: i + 1,
                    total: selected.len(),
                    method: Method::Up,
                },
            })
            .await;
        }
        Ok(())
    }
}
