//! `list()`: executed, pending and ignored migrations with their status, for the CLI to render
//! as a table or JSON.

use serde::Serialize;

use crate::history::History;
use crate::Result;

use super::plan::plan;
use super::{Runner, ScriptHost};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationStatus {
    Executed,
    Pending,
    Ignored,
    /// Executed, but its file is no longer in the folder.
    MissingFile,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListEntry {
    pub name: String,
    pub version: u64,
    pub status: MigrationStatus,
    /// `finishedAt` (else `startedAt`) of the record, ms since the epoch.
    pub executed_at: Option<i64>,
    /// ms.
    pub duration: Option<i64>,
    pub username: Option<String>,
    pub filepath: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationList {
    /// Sorted by version.
    pub migrations: Vec<ListEntry>,
    pub executed: usize,
    pub pending: usize,
    pub ignored: usize,
}

impl<H: ScriptHost> Runner<H> {
    /// Executed + pending + ignored migrations. Reads only; takes no lock.
    pub async fn list(&self) -> Result<MigrationList> {
        let disc = self.discover_checked()?;
        let (records, warnings) = History::new(self.client.clone(), &self.cfg).read().await?;
        for w in &warnings {
            self.warn(w);
        }
        let p = plan(&disc.scripts, &records);
        let mut migrations = Vec::new();
        for e in &p.executed {
            let r = &e.record;
            migrations.push(ListEntry {
                name: r.name.clone(),
                version: r.timestamp,
                status: if e.script.is_some() {
                    MigrationStatus::Executed
                } else {
                    MigrationStatus::MissingFile
                },
                executed_at: r.finished_at.or(r.started_at),
                duration: r.duration,
                username: r.username.clone(),
                filepath: e
                    .script
                    .as_ref()
                    .map(|s| s.filepath_str())
                    .or_else(|| Some(r.filepath.clone()).filter(|f| !f.is_empty())),
            });
        }
        for (scripts, status) in [
            (&p.pending, MigrationStatus::Pending),
            (&p.ignored, MigrationStatus::Ignored),
        ] {
            for s in scripts {
                migrations.push(ListEntry {
                    name: s.name.clone(),
                    version: s.version,
                    status,
                    executed_at: None,
                    duration: None,
                    username: None,
                    filepath: Some(s.filepath_str()),
                });
            }
        }
        migrations.sort_by(|a, b| a.version.cmp(&b.version).then_with(|| a.name.cmp(&b.name)));
        Ok(MigrationList {
            executed: p.executed.len(),
            pending: p.pending.len(),
            ignored: p.ignored.len(),
            migrations,
        })
    }
}
