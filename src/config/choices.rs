//! The settings with a fixed set of values, as enums (`crate::choice!`): read once, where the
//! config is built (serde, from the lower-cased value the schema has checked), written back and
//! shown by their names, and listed in the schema's messages from the enums themselves
//! (`VariantNames`), so the accepted values are written in one place. `logLevel` and `logFormat`
//! are `crate::log`'s own types.

use crate::choice::choice;
pub use crate::log::{LogFormat, LogLevel};

choice! {
    /// `rollbackStrategy`: what undoes a failed migration.
    RollbackStrategy {
        /// Restore the backup taken before the run (the default).
        #[default]
        Backup,
        /// Run the `down()` of the failed migration and of this run's earlier ones.
        Down,
        /// `down()` first, the backup when a `down()` fails or is missing.
        Both,
        /// Nothing: the database keeps the changes.
        None,
    }
}

choice! {
    /// `backupMode`: which of a backup's two halves (taking one before a run, restoring it after a
    /// failure) the runner does.
    BackupMode {
        /// Both (the default).
        #[default]
        Full,
        /// Take one, never restore it.
        CreateOnly,
        /// Restore `backup.existingBackupPath`, take none.
        RestoreOnly,
        /// Neither.
        Manual,
    }
}

choice! {
    /// `checksumAlgorithm`: how a migration file's checksum is made for its history record.
    ChecksumAlgorithm {
        #[default]
        Sha256,
        Md5,
    }
}

choice! {
    /// `duplicateTimestampMode`: what two migration files with one version are.
    DuplicateTimestampMode {
        /// A warning; the run goes on (the default).
        #[default]
        Warn,
        /// A validation error; nothing runs.
        Error,
        /// Nothing.
        Ignore,
    }
}

choice! {
    /// `queries.unindexed`: what the scripts' `db` does with a query the database refuses for want
    /// of an index (`Index not defined`).
    UnindexedQueries {
        /// Download the node and filter it on the client, as firebase-admin does, with its
        /// warning once per location and child (the default).
        #[default]
        Fallback,
        /// Fail the query, naming the `.indexOn` to add and where.
        Error,
    }
}

impl RollbackStrategy {
    /// The strategy restores the backup (`backup`, and `both` as its fallback).
    pub fn restores_backup(self) -> bool {
        matches!(self, RollbackStrategy::Backup | RollbackStrategy::Both)
    }
}

impl BackupMode {
    /// A backup is taken before a run.
    pub fn takes_backup(self) -> bool {
        matches!(self, BackupMode::Full | BackupMode::CreateOnly)
    }

    /// A backup is restored after a failure.
    pub fn restores(self) -> bool {
        matches!(self, BackupMode::Full | BackupMode::RestoreOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::choice::names_round_trip;
    use strum::VariantNames;

    #[test]
    fn serde_and_the_listed_names_agree() {
        names_round_trip::<LogLevel>();
        names_round_trip::<LogFormat>();
        names_round_trip::<RollbackStrategy>();
        names_round_trip::<UnindexedQueries>();
        names_round_trip::<BackupMode>();
        names_round_trip::<ChecksumAlgorithm>();
        names_round_trip::<DuplicateTimestampMode>();
        assert_eq!(
            BackupMode::VARIANTS,
            ["full", "create_only", "restore_only", "manual"]
        );
        assert_eq!(ChecksumAlgorithm::VARIANTS, ["sha256", "md5"]);
    }
}
