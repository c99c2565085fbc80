//! Where CLI output goes, and how it looks: colours (`anstyle`) only where `anstream` says the
//! terminal takes them (a terminal, no `NO_COLOR`); emoji in the lock texts always (the guide
//! shows them), elsewhere only on a terminal.
//!
//! The one module that prints to the process's stdout/stderr (the crate denies `print_stdout`
//! and `print_stderr` elsewhere); whatever it prints passes `crate::redact::secrets`, so no
//! secret reaches a terminal or a CI log, whatever message or result it was in.

use std::io::{IsTerminal, Write};

use anstream::ColorChoice;
use anstyle::{AnsiColor, Effects, Style};
use serde_json::{json, Map, Value};

pub use super::captured::Captured;
use super::live::{Live, Mode};
use crate::log::{LogLevel, LogLine};
use crate::redact::secrets;
use crate::{Error, ErrorCode, ExitStatus};

/// `{ code, message, exitCode }`: how an error looks under `--format json`.
pub fn error_json(e: &Error, status: ExitStatus) -> Value {
    json!({ "code": e.code.as_str(), "message": e.message, "exitCode": status.code() })
}

/// A table as the CLI prints it: each column as wide as its widest cell (in characters), two
/// spaces between columns, no trailing spaces.
pub struct Table {
    /// The header line.
    pub header: String,
    /// A rule of dashes under each column, as wide as the column.
    pub rule: String,
    /// One line per row.
    pub rows: Vec<String>,
}

/// `header` and `rows` laid out as a `Table`.
pub fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> Table {
    let mut widths = header.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells.zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    Table {
        header: line(&mut header.into_iter()),
        rule: widths.map(|w| "-".repeat(w)).join("  "),
        rows: rows
            .iter()
            .map(|r| line(&mut r.iter().map(String::as_str)))
            .collect(),
    }
}

pub struct Io {
    pub out: Box<dyn Write + Send>,
    pub err: Box<dyn Write + Send>,
    /// ANSI colours on.
    pub color: bool,
    /// Decorative emoji on (not the lock texts, which always keep theirs).
    pub fancy: bool,
    /// `--format json`: results and errors are JSON on stdout.
    pub format_json: bool,
    /// `--log-format json`: what goes to stderr is one JSON object per line.
    pub log_json: bool,
    /// stderr is a terminal (progress lines are redrawn in place).
    pub err_tty: bool,
    /// Progress on stderr, with the log lines and notices printed above it.
    pub live: Live,
    /// What the command found or did, as `--format json` has it (a `migrate`/`down` result,
    /// `list`), kept for the report of a run over many databases.
    pub result: Option<Value>,
}

impl Io {
    /// The process's stdout/stderr.
    pub fn stdio() -> Io {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Io {
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
            color: anstream::AutoStream::choice(&std::io::stdout()) != ColorChoice::Never
                && !no_color,
            fancy: tty && !no_color,
            format_json: false,
            log_json: false,
            err_tty: std::io::stderr().is_terminal(),
            live: Live::stderr(Mode::of(std::io::stderr().is_terminal(), false)),
            result: None,
        }
    }

    /// `--log-format json` (or not), for what is written to stderr from now on.
    pub fn set_log_json(&mut self, on: bool) {
        self.log_json = on;
        self.live.set_mode(Mode::of(self.err_tty, on));
    }

    /// In-memory output for tests: returns the Io and handles to what was written.
    pub fn capture() -> (Io, Captured, Captured) {
        let out = Captured::default();
        let err = Captured::default();
        (
            Io {
                out: Box::new(out.clone()),
                err: Box::new(err.clone()),
                color: false,
                fancy: false,
                format_json: false,
                log_json: false,
                err_tty: false,
                live: Live::new(Box::new(err.clone()), Mode::Plain),
                result: None,
            },
            out,
            err,
        )
    }

    pub fn line(&mut self, s: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", secrets(s.as_ref()));
    }

    pub fn eline(&mut self, s: impl AsRef<str>) {
        let _ = writeln!(self.err, "{}", secrets(s.as_ref()));
    }

    pub fn json(&mut self, v: &serde_json::Value) {
        let mut v = v.clone();
        crate::redact::value(&mut v);
        let _ = writeln!(
            self.out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
    }

    /// A command failed: under `--format json` a `{ "error": { code, message, exitCode } }` object
    /// on stdout, else `text` on stderr. Returns `status`.
    pub fn fail(&mut self, e: &Error, status: ExitStatus, text: impl AsRef<str>) -> ExitStatus {
        self.fail_with(Value::Object(Map::new()), e, status, text)
    }

    /// `fail` with `✗ <what>: <message>`, and the table's status for the error (`own`, the
    /// command's failure status, for an error without one of its own).
    pub fn fail_plain(&mut self, what: &str, e: &Error, own: ExitStatus) -> ExitStatus {
        let text = format!("✗ {what}: {}", e.message);
        self.fail(e, ExitStatus::of_failure(e.code, own), text)
    }

    /// `fail_plain` for the commands that run scripts: the ✗ in red, a held lock's text as the
    /// guide gives it.
    pub fn fail_run(&mut self, what: &str, e: &Error, own: ExitStatus) -> ExitStatus {
        let text = self.failure_text(what, e);
        self.fail(e, ExitStatus::of_failure(e.code, own), text)
    }

    /// `✗ <what>: <message>` (the ✗ in red); for a held lock the guide's text, verbatim.
    pub fn failure_text(&self, what: &str, e: &Error) -> String {
        if e.code == ErrorCode::LockHeld {
            e.message.clone()
        } else {
            format!("{} {what}: {}", self.red("✗"), e.message)
        }
    }

    /// `fail`, with what the command got done before it failed (e.g. a migrate result) merged
    /// into the JSON object next to `error`.
    pub fn fail_with(
        &mut self,
        partial: Value,
        e: &Error,
        status: ExitStatus,
        text: impl AsRef<str>,
    ) -> ExitStatus {
        if self.format_json {
            let mut obj = match partial {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            obj.insert("error".into(), error_json(e, status));
            self.json(&Value::Object(obj));
        } else if self.log_json {
            let line = LogLine::new(LogLevel::Error, "command.failed", e.message.as_str())
                .with("code", e.code.as_str())
                .with("exitCode", status.code());
            self.eline(line.to_json(crate::runner::now_ms()));
        } else {
            self.eline(text);
        }
        status
    }

    fn paint(&self, style: Style, s: &str) -> String {
        if self.color {
            format!("{style}{s}{style:#}")
        } else {
            s.to_string()
        }
    }
    pub fn green(&self, s: &str) -> String {
        self.paint(AnsiColor::Green.on_default(), s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint(AnsiColor::Red.on_default(), s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint(AnsiColor::Yellow.on_default(), s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint(Style::new().effects(Effects::DIMMED), s)
    }
    /// An emoji on a terminal, plain text elsewhere.
    pub fn sym<'a>(&self, emoji: &'a str, plain: &'a str) -> &'a str {
        if self.fancy {
            emoji
        } else {
            plain
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_each_column_to_its_widest_cell_in_characters() {
        let rows = [
            ["1".to_string(), "añadir".to_string(), String::new()],
            [
                "202501010002".to_string(),
                "b".to_string(),
                "done".to_string(),
            ],
        ];
        let t = table(["Version", "Name", "Status"], &rows);
        assert_eq!(t.header, "Version       Name    Status");
        assert_eq!(t.rule, "------------  ------  ------");
        // "añadir" is 6 characters (7 bytes): the column is 6 wide; an empty last cell leaves
        // no trailing spaces.
        assert_eq!(
            t.rows,
            ["1             añadir", "202501010002  b       done"]
        );
    }

    #[test]
    fn table_of_no_rows_is_its_header() {
        let t = table(["A", "Bb"], &[]);
        assert_eq!((t.header.as_str(), t.rule.as_str()), ("A  Bb", "-  --"));
        assert!(t.rows.is_empty());
    }
}
