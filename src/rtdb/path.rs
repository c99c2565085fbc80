//! Key and path validation (INTERFACE; body to be implemented). Shared by the client (before any
//! request) and the emulator (400 on bad keys). Keys: at most 768 bytes, none of `. $ # [ ] /`,
//! no ASCII control characters; depth below 32.

use crate::Result;

pub const MAX_KEY_BYTES: usize = 768;
pub const MAX_DEPTH: usize = 32;

/// Split a path (`"/a/b/"`, `"a/b"`, `""`, `"/"`) into validated segments. Errors
/// (INVALID_PATH) name the bad key and why.
pub fn segments(path: &str) -> Result<Vec<String>> {
    todo!("{path}")
}

/// Validate one key.
pub fn validate_key(key: &str) -> Result<()> {
    todo!("{key}")
}

/// Normalised form: `"a/b"` (no leading/trailing slash; `""` = root).
pub fn normalize(path: &str) -> Result<String> {
    Ok(segments(path)?.join("/"))
}

/// Join two paths.
pub fn join(a: &str, b: &str) -> String {
    let a = a.trim_matches('/');
    let b = b.trim_matches('/');
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}
