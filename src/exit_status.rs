//! How the `msr-firebase` process ends: `ExitStatus`, the one table of exit codes (the CLI's
//! commands return them, `--help` lists them, JS gets them as `ExitCode`), and the one map from
//! a failure's `ErrorCode` to its status.

use crate::ErrorCode;

/// The exit codes (the predecessor's, plus the forced stop by a second signal). The names JS sees
/// (`ExitCode.MIGRATION_FAILED`, ...) and the `--help` text derive from this enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[repr(u8)]
pub enum ExitStatus {
    Success = 0,
    /// Bad arguments, `lock:release` without `--force`, anything without a status of its own.
    GeneralError = 1,
    ValidationError = 2,
    /// A script failed or timed out, the lock was held (`--no-wait`) or lost, a signal stopped
    /// the command.
    MigrationFailed = 3,
    RollbackFailed = 4,
    BackupFailed = 5,
    RestoreFailed = 6,
    /// Unreachable, not found, bad credentials, a Security Rules refusal of the runner's own
    /// reads and writes.
    DatabaseConnectionError = 7,
    /// A second SIGINT: the lock released (bounded), the process stopped at once (128 + 2).
    SecondSigint = 130,
    /// A second SIGTERM, likewise (128 + 15).
    SecondSigterm = 143,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// `SUCCESS`, `MIGRATION_FAILED`, ...: the name JS sees.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// What it means, as `--help` says.
    fn meaning(self) -> &'static str {
        use ExitStatus as S;
        match self {
            S::Success => "ok",
            S::GeneralError => "general error",
            S::ValidationError => "validation/configuration error",
            S::MigrationFailed => "migration failed (incl. lock held)",
            S::RollbackFailed => "rollback failed",
            S::BackupFailed => "backup failed",
            S::RestoreFailed => "restore failed",
            S::DatabaseConnectionError => "database connection error",
            S::SecondSigint => "stopped by a second SIGINT",
            S::SecondSigterm => "stopped by a second SIGTERM",
        }
    }

    /// The signal whose second delivery ends the process with this status (`None` for the
    /// statuses a command returns).
    pub fn signal(self) -> Option<&'static str> {
        match self {
            ExitStatus::SecondSigint => Some("SIGINT"),
            ExitStatus::SecondSigterm => Some("SIGTERM"),
            _ => None,
        }
    }

    /// Every status, in code order.
    pub fn all() -> &'static [ExitStatus] {
        <ExitStatus as strum::VariantArray>::VARIANTS
    }

    /// The statuses a command returns (the table `--help` lists and JS exports as `ExitCode`).
    pub fn of_commands() -> impl Iterator<Item = ExitStatus> {
        ExitStatus::all()
            .iter()
            .copied()
            .filter(|s| s.signal().is_none())
    }

    /// "Exit codes: 0 ok, 1 general error, ...": the table for `--help`.
    pub fn help() -> String {
        let each: Vec<String> = ExitStatus::of_commands()
            .map(|s| format!("{} {}", s.code(), s.meaning()))
            .collect();
        format!("Exit codes: {}.", each.join(", "))
    }

    /// How severe a status is, for a run over many databases that ends with the most severe of
    /// theirs: a rollback that failed (data maybe half-changed) first, then a restore, a backup,
    /// a migration that failed (rolled back), an unreachable database, a refused input, anything
    /// else; success last.
    pub fn severity(self) -> u8 {
        use ExitStatus as S;
        match self {
            S::Success => 0,
            S::GeneralError => 1,
            S::ValidationError => 2,
            S::DatabaseConnectionError => 3,
            S::MigrationFailed => 4,
            S::BackupFailed => 5,
            S::RestoreFailed => 6,
            S::RollbackFailed => 7,
            S::SecondSigint | S::SecondSigterm => 8,
        }
    }

    /// The one failure-code map: the status of a command that failed with `code`, where `own` is
    /// the command's own failure status (`migrate`: 3, `down`: 4, `validate`: 2, ...), taken for
    /// the codes that have no status of their own.
    pub fn of_failure(code: ErrorCode, own: ExitStatus) -> ExitStatus {
        if unreachable(code) {
            return ExitStatus::DatabaseConnectionError;
        }
        match code {
            ErrorCode::ConfigInvalid | ErrorCode::ValidationFailed | ErrorCode::InvalidPath => {
                ExitStatus::ValidationError
            }
            ErrorCode::PermissionDenied | ErrorCode::SourceUnreadable => {
                ExitStatus::DatabaseConnectionError
            }
            ErrorCode::Usage => ExitStatus::GeneralError,
            // The table's 3, whichever command: a held lock (--no-wait), a lost lock, a signal.
            ErrorCode::LockHeld | ErrorCode::LockLost | ErrorCode::Interrupted => {
                ExitStatus::MigrationFailed
            }
            ErrorCode::RollbackFailed => ExitStatus::RollbackFailed,
            ErrorCode::BackupFailed => ExitStatus::BackupFailed,
            ErrorCode::RestoreFailed => ExitStatus::RestoreFailed,
            _ => own,
        }
    }

    /// A backup or restore (the transfer itself, once configured and connected) that failed: its
    /// own status (`backup create` 5, `backup restore` 6) whatever went wrong — a signal, a
    /// refused write, a bad file — unless the database could not be reached at all.
    pub fn of_transfer_failure(code: ErrorCode, own: ExitStatus) -> ExitStatus {
        if unreachable(code) {
            ExitStatus::DatabaseConnectionError
        } else {
            own
        }
    }
}

/// The database could not be reached at all: not there, not answering, or not letting the
/// runner in.
fn unreachable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ConnectionFailed | ErrorCode::DatabaseNotFound | ErrorCode::AuthFailed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_keeps_its_codes_and_names() {
        let table: Vec<(&str, i32)> = ExitStatus::of_commands()
            .map(|s| (s.name(), s.code()))
            .collect();
        assert_eq!(
            table,
            [
                ("SUCCESS", 0),
                ("GENERAL_ERROR", 1),
                ("VALIDATION_ERROR", 2),
                ("MIGRATION_FAILED", 3),
                ("ROLLBACK_FAILED", 4),
                ("BACKUP_FAILED", 5),
                ("RESTORE_FAILED", 6),
                ("DATABASE_CONNECTION_ERROR", 7),
            ]
        );
        assert_eq!(ExitStatus::SecondSigint.code(), 130);
        assert_eq!(ExitStatus::SecondSigterm.code(), 143);
        assert_eq!(
            ExitStatus::help(),
            "Exit codes: 0 ok, 1 general error, 2 validation/configuration error, 3 migration failed \
             (incl. lock held), 4 rollback failed, 5 backup failed, 6 restore failed, 7 database connection error."
        );
    }

    #[test]
    fn failures_map_to_the_table() {
        use ErrorCode as C;
        use ExitStatus as S;
        let own = S::RollbackFailed;
        for (code, status) in [
            (C::ConfigInvalid, S::ValidationError),
            (C::Usage, S::GeneralError),
            (C::LockHeld, S::MigrationFailed),
            (C::Interrupted, S::MigrationFailed),
            (C::PermissionDenied, S::DatabaseConnectionError),
            (C::ConnectionFailed, S::DatabaseConnectionError),
            (C::BackupFailed, S::BackupFailed),
            (C::ScriptFailed, own),
        ] {
            assert_eq!(S::of_failure(code, own), status, "{code}");
        }
        // A transfer keeps its own status unless the database was out of reach.
        assert_eq!(
            S::of_transfer_failure(C::Interrupted, S::BackupFailed),
            S::BackupFailed
        );
        assert_eq!(
            S::of_transfer_failure(C::AuthFailed, S::RestoreFailed),
            S::DatabaseConnectionError
        );
    }
}
