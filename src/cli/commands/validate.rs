//! `validate`: check the migration scripts and the history without running anything.

use super::runner::Session;
use crate::cli::host::CliHost;
use crate::cli::output::Io;
use crate::runner::{IssueType, ValidationIssue, ValidationReport};
use crate::ExitStatus;

pub async fn run<H: CliHost>(session: &Session<H>, io: &mut Io) -> ExitStatus {
    let report = match session.runner.validate().await {
        Ok(report) => report,
        Err(e) => return session.fail(io, "Validation error", &e),
    };
    let ok = report.error_count == 0;
    if session.json {
        io.json(&serde_json::to_value(&report).unwrap_or_default());
    } else {
        print_report(io, &report, ok);
    }
    if ok {
        ExitStatus::Success
    } else {
        ExitStatus::ValidationError
    }
}

fn print_report(io: &mut Io, report: &ValidationReport, ok: bool) {
    io.line("");
    io.line("Validation Results:");
    io.line(format!(
        "  Pending migrations validated: {}",
        report.pending.len()
    ));
    io.line(format!(
        "  Pending migrations with errors: {}",
        report.pending.iter().filter(|p| !p.valid).count()
    ));
    io.line(format!(
        "  Executed migrations with issues: {}",
        report.migrated.len()
    ));
    for p in &report.pending {
        for i in &p.issues {
            io.line(format!(
                "  - {} [{}] {}: {}",
                p.name,
                i.code,
                kind(i),
                i.message
            ));
        }
    }
    for i in report.migrated.iter().chain(report.general.iter()) {
        io.line(format!("  - [{}] {}: {}", i.code, kind(i), i.message));
    }
    io.line("");
    if ok {
        io.line(format!("{} All migrations are valid", io.green("✓")));
    } else {
        io.line(format!("{} Validation failed", io.red("✗")));
    }
}

fn kind(i: &ValidationIssue) -> &'static str {
    match i.kind {
        IssueType::Error => "error",
        IssueType::Warning => "warning",
    }
}
