//! One error type for the whole crate, with a stable code that reaches JS as `err.code`
//! and decides the CLI exit code.

use std::fmt;

/// Stable, documented error codes. JS sees them as `err.code`. This enum is the one list:
/// the names (`CONFIG_INVALID`, ...), parsing and `ErrorCode::VARIANTS` all derive from it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// A configuration value is invalid (names the field and the accepted values).
    ConfigInvalid,
    /// A path or key cannot be used in RTDB (`. $ # [ ] /`, control chars, too long, too deep).
    InvalidPath,
    /// The database cannot be reached (connect error, timeout, DNS, 5xx after retries).
    ConnectionFailed,
    /// The database does not exist (404).
    DatabaseNotFound,
    /// 401 from the server: bad credentials or a rules denial.
    PermissionDenied,
    /// Credentials file missing or unusable, or the token endpoint refused.
    AuthFailed,
    /// The server answered something this client does not understand (or a 400).
    BadRequest,
    /// A write whose outcome is unknown (e.g. 500 or a reset after the request was sent).
    WriteOutcomeUnknown,
    /// A read refused because its response would pass the service's size limit (256 MB).
    TooBig,
    /// A write refused because it would change more data than the service lets one request
    /// change (its write-size limit; a delete of a big node counts the data it removes).
    WriteTooBig,
    /// The migration lock is held by another process.
    LockHeld,
    /// The lock was lost (force-released, taken over) while work was running under it.
    LockLost,
    /// Any other failure of a lock operation.
    LockError,
    /// A migration script failed (load or run).
    ScriptFailed,
    /// A migration script did not finish within `scriptTimeout`; it was abandoned.
    ScriptTimeout,
    /// Migration scripts or history failed validation.
    ValidationFailed,
    /// Rolling back after a failure did not complete.
    RollbackFailed,
    /// Creating a backup failed.
    BackupFailed,
    /// Restoring a backup failed.
    RestoreFailed,
    /// The run was interrupted by a signal (SIGINT/SIGTERM) between steps.
    Interrupted,
    /// Local I/O (files, folders).
    #[strum(serialize = "IO_ERROR")]
    Io,
    /// Everything else.
    Internal,
    /// The command line was used wrongly (unknown or missing arguments, a required flag left out).
    Usage,
    /// A rehearsal could not read its data (the database's `{shift}` subtree, or the backup file).
    SourceUnreadable,
    /// `waitUntilMigrated` ran out of time with migrations the app needs still pending (named).
    MigrationsPending,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// A code that crossed the JS boundary (`None` for an unknown one).
    pub fn parse(s: &str) -> Option<ErrorCode> {
        s.parse().ok()
    }
}

/// An error a person can act on: a stable code plus a message that names the problem and the fix.
/// Made through [`Error::new`] (every constructor ends there), whose message never holds a
/// secret (`crate::redact`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: crate::redact::secrets_owned(message.into()),
        }
    }
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::ConfigInvalid, message)
    }
    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        Error::new(ErrorCode::Io, format!("{context}: {err}"))
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Internal, message)
    }
    /// Same code, message prefixed with context ("Failed to acquire lock: ...").
    pub fn context(self, prefix: impl fmt::Display) -> Self {
        Error::new(self.code, format!("{prefix}: {}", self.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    #[test]
    fn codes_are_screaming_snake_and_parse_back() {
        assert_eq!(
            ErrorCode::WriteOutcomeUnknown.as_str(),
            "WRITE_OUTCOME_UNKNOWN"
        );
        assert_eq!(ErrorCode::Io.as_str(), "IO_ERROR");
        assert_eq!(ErrorCode::LockHeld.to_string(), "LOCK_HELD");
        for c in ErrorCode::VARIANTS {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(*c));
        }
        assert_eq!(ErrorCode::parse("NOPE"), None);
        // The documented codes, stable across releases.
        let all: Vec<&str> = ErrorCode::VARIANTS.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            all,
            [
                "CONFIG_INVALID",
                "INVALID_PATH",
                "CONNECTION_FAILED",
                "DATABASE_NOT_FOUND",
                "PERMISSION_DENIED",
                "AUTH_FAILED",
                "BAD_REQUEST",
                "WRITE_OUTCOME_UNKNOWN",
                "TOO_BIG",
                "WRITE_TOO_BIG",
                "LOCK_HELD",
                "LOCK_LOST",
                "LOCK_ERROR",
                "SCRIPT_FAILED",
                "SCRIPT_TIMEOUT",
                "VALIDATION_FAILED",
                "ROLLBACK_FAILED",
                "BACKUP_FAILED",
                "RESTORE_FAILED",
                "INTERRUPTED",
                "IO_ERROR",
                "INTERNAL",
                "USAGE",
                "SOURCE_UNREADABLE",
                "MIGRATIONS_PENDING"
            ]
        );
        let e = Error::new(ErrorCode::LockHeld, "held");
        assert_eq!(e.to_string(), "held");
    }
}
