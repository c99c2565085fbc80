//! One error type for the whole crate, with a stable code that reaches JS as `err.code`
//! and decides the CLI exit code.

use std::fmt;

/// Stable, documented error codes. JS sees them as `err.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// The migration lock is held by another process.
    LockHeld,
    /// The lock was lost (force-released, taken over) while work was running under it.
    LockLost,
    /// Any other failure of a lock operation.
    LockError,
    /// A migration script failed (load or run).
    ScriptFailed,
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
    Io,
    /// Everything else.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ConfigInvalid => "CONFIG_INVALID",
            ErrorCode::InvalidPath => "INVALID_PATH",
            ErrorCode::ConnectionFailed => "CONNECTION_FAILED",
            ErrorCode::DatabaseNotFound => "DATABASE_NOT_FOUND",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::AuthFailed => "AUTH_FAILED",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::WriteOutcomeUnknown => "WRITE_OUTCOME_UNKNOWN",
            ErrorCode::LockHeld => "LOCK_HELD",
            ErrorCode::LockLost => "LOCK_LOST",
            ErrorCode::LockError => "LOCK_ERROR",
            ErrorCode::ScriptFailed => "SCRIPT_FAILED",
            ErrorCode::ValidationFailed => "VALIDATION_FAILED",
            ErrorCode::RollbackFailed => "ROLLBACK_FAILED",
            ErrorCode::BackupFailed => "BACKUP_FAILED",
            ErrorCode::RestoreFailed => "RESTORE_FAILED",
            ErrorCode::Interrupted => "INTERRUPTED",
            ErrorCode::Io => "IO_ERROR",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl ErrorCode {
    /// Every code, for parsing codes that crossed the JS boundary.
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::ConfigInvalid,
        ErrorCode::InvalidPath,
        ErrorCode::ConnectionFailed,
        ErrorCode::DatabaseNotFound,
        ErrorCode::PermissionDenied,
        ErrorCode::AuthFailed,
        ErrorCode::BadRequest,
        ErrorCode::WriteOutcomeUnknown,
        ErrorCode::LockHeld,
        ErrorCode::LockLost,
        ErrorCode::LockError,
        ErrorCode::ScriptFailed,
        ErrorCode::ValidationFailed,
        ErrorCode::RollbackFailed,
        ErrorCode::BackupFailed,
        ErrorCode::RestoreFailed,
        ErrorCode::Interrupted,
        ErrorCode::Io,
        ErrorCode::Internal,
    ];

    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a person can act on: a stable code plus a message that names the problem and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
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
        Error {
            code: self.code,
            message: format!("{prefix}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
