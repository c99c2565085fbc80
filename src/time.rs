//! Time formatting shared by the lock texts, history and backups.

use chrono::{DateTime, SecondsFormat, Utc};

/// `2024-01-15T10:30:00.000Z` for ms since the epoch.
pub fn iso_millis(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_with_millis_and_z() {
        assert_eq!(
            super::iso_millis(1_705_314_600_000),
            "2024-01-15T10:30:00.000Z"
        );
    }
}
