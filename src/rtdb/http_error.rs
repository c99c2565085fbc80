//! Describing a reqwest failure for a person: what went wrong along its source chain
//! ("timed out", "Connection refused (os error 111)"), never the URL, which reqwest's own text
//! includes. Shared by the database client and the token services.

/// An error's description with its source chain, without the URL.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut out = if e.is_timeout() {
        "timed out".to_string()
    } else {
        String::new()
    };
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !t.is_empty() && !out.contains(&t) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&t);
        }
        src = s.source();
    }
    if out.is_empty() {
        out = if e.is_connect() {
            "could not connect".to_string()
        } else {
            "the request failed".to_string()
        };
    }
    out
}
