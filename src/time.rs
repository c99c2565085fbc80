//! Time formatting shared by the lock texts, history and backups.

use chrono::{DateTime, SecondsFormat, Utc};

/// `2024-01-15T10:30:00.000Z` for ms since the epoch.
pub fn iso_millis(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A duration in whole milliseconds, as log fields and reports carry it.
pub fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A duration as people read it in a log: `0.4 s`, `12.3 s`, `4m 05s`, `2h 03m`.
pub fn human(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{:.1} s", d.as_secs_f64()),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_durations() {
        use std::time::Duration;
        assert_eq!(super::human(Duration::from_millis(1234)), "1.2 s");
        assert_eq!(super::human(Duration::from_secs(245)), "4m 05s");
        assert_eq!(super::human(Duration::from_secs(7380)), "2h 03m");
    }

    #[test]
    fn iso_with_millis_and_z() {
        assert_eq!(
            super::iso_millis(1_705_314_600_000),
            "2024-01-15T10:30:00.000Z"
        );
    }
}
