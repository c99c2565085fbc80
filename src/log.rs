//! Log lines as the core produces them: a level, an event name, the text people read and the
//! fields machines read. The text is what the CLI prints by default and what the library's
//! `logger` receives; `--log-format json` (`logFormat: 'json'`, `MSR_LOG_FORMAT=json`) prints each
//! line as one JSON object `{ time, level, event, message, ...fields }` instead. Secrets never
//! reach a line: its message and fields are redacted as it is made (`crate::redact`).

use std::sync::Arc;

use serde::Serialize;

use crate::choice::choice;
use serde_json::{Map, Value};

choice! {
    /// `logLevel`: the most detailed lines shown (`error` < `warn` < `info` < `debug`).
    #[derive(PartialOrd, Ord)]
    LogLevel {
        Error,
        Warn,
        #[default]
        Info,
        Debug,
    }
}

choice! {
    /// `logFormat`: how log lines are written, as text (the default) or one JSON object per line.
    LogFormat {
        #[default]
        Text,
        Json,
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub level: LogLevel,
    /// A stable name, e.g. `migration.done`, `lock.waiting`; `log` for free text.
    pub event: &'static str,
    pub message: String,
    pub fields: Map<String, Value>,
}

/// Where log lines go.
pub type LineFn = Arc<dyn Fn(&LogLine) + Send + Sync>;

impl LogLine {
    pub fn new(level: LogLevel, event: &'static str, message: impl Into<String>) -> LogLine {
        LogLine {
            level,
            event,
            message: crate::redact::secrets_owned(message.into()),
            fields: Map::new(),
        }
    }

    /// Free text (`event: "log"`).
    pub fn text(level: LogLevel, message: impl Into<String>) -> LogLine {
        LogLine::new(level, "log", message)
    }

    /// Add a field (`null` values are left out; secrets redacted as in the message).
    pub fn with(mut self, key: &str, value: impl Serialize) -> LogLine {
        let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
        crate::redact::value(&mut v);
        if !v.is_null() {
            self.fields.insert(key.to_string(), v);
        }
        self
    }

    /// The line as one JSON object: `{ time, level, event, message, ...fields }`.
    pub fn to_json(&self, time_ms: i64) -> String {
        let mut m = Map::new();
        m.insert("time".into(), crate::time::iso_millis(time_ms).into());
        m.insert("level".into(), self.level.as_str().into());
        m.insert("event".into(), self.event.into());
        m.insert("message".into(), self.message.clone().into());
        for (k, v) in &self.fields {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m).to_string()
    }

    /// The line as `format` writes it.
    pub fn render(&self, format: LogFormat, time_ms: i64) -> String {
        match format {
            LogFormat::Text => self.message.clone(),
            LogFormat::Json => self.to_json(time_ms),
        }
    }
}

/// A log line of database `name` in a run over many: its `database` field, and in text the
/// name before the message (`[shard-1] Processing...`).
pub fn of_database(line: &LogLine, name: &str, format: LogFormat) -> LogLine {
    let mut l = line.clone().with("database", name);
    if format == LogFormat::Text {
        l.message = format!("[{name}] {}", l.message);
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_time_level_event_message_and_fields() {
        let l = LogLine::new(LogLevel::Info, "migration.done", "[3/30] V1_a.js (1.2 s)")
            .with("migration", "V1_a.js")
            .with("duration", 1234)
            .with("nothing", Option::<u8>::None)
            .with("message", "fields never replace the message");
        let v: Value = serde_json::from_str(&l.to_json(1_705_314_600_000)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"time": "2024-01-15T10:30:00.000Z", "level": "info", "event": "migration.done",
                "message": "[3/30] V1_a.js (1.2 s)", "migration": "V1_a.js", "duration": 1234})
        );
        assert_eq!(l.render(LogFormat::Text, 0), "[3/30] V1_a.js (1.2 s)");
        assert!(!l.to_json(0).contains('\n'));
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("warn".parse::<LogLevel>(), Ok(LogLevel::Warn));
    }
}
