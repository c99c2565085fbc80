//! `lock:status` and `lock:release --force`, with the guide's exact output.

use serde_json::json;

use crate::cli::output::Io;
use crate::lock::{LockService, LockStatus};
use crate::time::iso_millis;
use crate::{Error, ErrorCode, ExitStatus};

fn status_json(s: Option<&LockStatus>, path: &str) -> serde_json::Value {
    match s.filter(|s| s.is_locked) {
        Some(s) => json!({
            "locked": true, "path": path, "executorId": s.locked_by, "lockedAt": iso_millis(s.locked_at),
            "expiresAt": iso_millis(s.expires_at), "processId": s.process_id, "hostname": s.hostname, "epoch": s.epoch,
        }),
        None => json!({"locked": false, "path": path}),
    }
}

pub async fn status(svc: &LockService, io: &mut Io, json: bool) -> ExitStatus {
    match svc.status().await {
        Ok(s) => {
            if json {
                io.json(&status_json(s.as_ref(), svc.path()));
                return ExitStatus::Success;
            }
            match s.filter(|s| s.is_locked) {
                Some(s) => {
                    io.line("🔒 Lock Status: LOCKED");
                    io.line("");
                    io.line(format!("   Executor ID:  {}", s.locked_by));
                    io.line(format!("   Acquired At:  {}", iso_millis(s.locked_at)));
                    io.line(format!("   Expires At:   {}", iso_millis(s.expires_at)));
                    if let Some(pid) = s.process_id {
                        io.line(format!("   Process ID:   {pid}"));
                    }
                }
                None => {
                    io.line("🔓 Lock Status: UNLOCKED");
                    io.line("");
                    io.line("   No active migration lock");
                }
            }
            ExitStatus::Success
        }
        Err(e) => io.fail_plain("Lock status error", &e, ExitStatus::GeneralError),
    }
}

pub fn release_needs_force(io: &mut Io) -> ExitStatus {
    if io.format_json {
        let e = Error::new(
            ErrorCode::Usage,
            "--force flag is required for safety: msr-firebase lock:release --force (check first that no migration is running)",
        );
        return io.fail(&e, ExitStatus::GeneralError, "");
    }
    io.eline("✗ Error: --force flag is required for safety");
    io.eline("");
    io.eline("Usage: msr-firebase lock:release --force");
    io.eline("");
    io.eline(
        "Releasing a lock that a running migration holds can corrupt data. Check first that no",
    );
    io.eline(
        "migration is running (msr-firebase lock:status, your logs, the process list), then run",
    );
    io.eline("the command again with --force.");
    ExitStatus::GeneralError
}

pub async fn release(svc: &LockService, io: &mut Io, json: bool) -> ExitStatus {
    if json {
        return match svc.force_release().await {
            Ok(released) => {
                io.json(&json!({
                    "released": released.is_some(),
                    "previous": status_json(released.as_ref(), svc.path()),
                }));
                ExitStatus::Success
            }
            // Under --format json: the error as JSON.
            Err(e) => io.fail_plain("Lock release error", &e, ExitStatus::GeneralError),
        };
    }
    let current = match svc.status().await {
        Ok(s) => s,
        Err(e) => return io.fail_plain("Lock release error", &e, ExitStatus::GeneralError),
    };
    let Some(held) = current else {
        io.line("🔓 Lock Status: UNLOCKED");
        io.line("");
        io.line("   No active migration lock to release");
        return ExitStatus::Success;
    };
    io.line("⚠️  Warning: Force-releasing migration lock");
    io.line("");
    io.line(format!("   Locked by:    {}", held.locked_by));
    io.line(format!("   Acquired at:  {}", iso_millis(held.locked_at)));
    io.line("");
    match svc.force_release().await {
        Ok(_) => {
            io.line("✅ Lock released successfully");
            ExitStatus::Success
        }
        Err(e) => io.fail_plain("Lock release error", &e, ExitStatus::GeneralError),
    }
}
