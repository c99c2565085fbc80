//! Key and path validation. Shared by the client (before any request) and the emulator (400 on
//! bad keys). Keys: at most 768 bytes, none of `. $ # [ ] /`, no ASCII control characters; depth
//! below 32 (a path may have at most 31 segments).

use crate::{Error, ErrorCode, Result};

pub const MAX_KEY_BYTES: usize = 768;
pub const MAX_DEPTH: usize = 32;

/// Split a path (`"/a/b/"`, `"a/b"`, `""`, `"/"`) into validated segments. Empty segments
/// (leading, trailing or doubled slashes) are skipped. Errors (INVALID_PATH) name the bad key and
/// why.
pub fn segments(path: &str) -> Result<Vec<String>> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for s in &segs {
        validate_key(s).map_err(|e| e.context(format!("Invalid path \"{path}\"")))?;
    }
    if segs.len() >= MAX_DEPTH {
        return Err(Error::new(
            ErrorCode::InvalidPath,
            format!(
                "Invalid path \"{path}\": {} levels deep; Realtime Database paths must be fewer than {MAX_DEPTH} levels deep",
                segs.len()
            ),
        ));
    }
    Ok(segs)
}

/// `segments`, with a last segment `.priority` allowed: the path of a node's priority (a read,
/// a write or a delete of the priority alone, as the service allows).
pub fn data_segments(path: &str) -> Result<Vec<String>> {
    let trimmed = path.trim_end_matches('/');
    match trimmed.strip_suffix(".priority") {
        Some(rest) if rest.is_empty() || rest.ends_with('/') => {
            let mut segs = segments(rest)?;
            if segs.len() + 1 >= MAX_DEPTH {
                return segments(path);
            }
            segs.push(".priority".into());
            Ok(segs)
        }
        _ => segments(path),
    }
}

/// Validate one key.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |why: String| {
        Err(Error::new(
            ErrorCode::InvalidPath,
            format!("Invalid key \"{}\": {why}", key.escape_debug()),
        ))
    };
    if key.is_empty() {
        return bad("keys cannot be empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return bad(format!(
            "{} bytes long; keys can be at most {MAX_KEY_BYTES} bytes",
            key.len()
        ));
    }
    if let Some(c) = key
        .chars()
        .find(|c| matches!(c, '.' | '$' | '#' | '[' | ']' | '/'))
    {
        return bad(format!(
            "contains '{c}'; keys cannot contain . $ # [ ] or /"
        ));
    }
    if let Some(c) = key.chars().find(|c| c.is_ascii_control()) {
        return bad(format!(
            "contains the control character U+{:04X}; keys cannot contain ASCII control characters",
            c as u32
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_normalises() {
        assert_eq!(segments("").unwrap(), Vec::<String>::new());
        assert_eq!(segments("/").unwrap(), Vec::<String>::new());
        assert_eq!(segments("/a/b/").unwrap(), vec!["a", "b"]);
        assert_eq!(segments("a//b").unwrap(), vec!["a", "b"]);
        assert_eq!(normalize("/migrations/_lock/").unwrap(), "migrations/_lock");
        assert_eq!(join("/a/", "/b"), "a/b");
        assert_eq!(join("", "b"), "b");
        assert_eq!(join("a", ""), "a");
    }

    #[test]
    fn rejects_bad_keys() {
        for k in [
            "a.b",
            "a$",
            "#",
            "[x",
            "x]",
            "a/b",
            "",
            "tab\there",
            "nul\0",
            "del\x7f",
            "1.2.3",
        ] {
            let e = validate_key(k).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidPath, "{k}");
        }
        assert!(segments("a/b.c").is_err());
        assert!(segments("a/b.c").unwrap_err().message.contains("b.c"));
    }

    #[test]
    fn accepts_good_keys() {
        for k in [
            "a",
            "_lock",
            "-Nabc",
            "1",
            "v1_2_3",
            "with space",
            "ünïcødé",
            "a:b@c!",
        ] {
            validate_key(k).unwrap();
        }
    }

    #[test]
    fn key_length_limit_is_bytes() {
        validate_key(&"a".repeat(768)).unwrap();
        assert!(validate_key(&"a".repeat(769)).is_err());
        // 2-byte characters: 385 * 2 = 770 bytes.
        assert!(validate_key(&"é".repeat(385)).is_err());
    }

    #[test]
    fn depth_limit() {
        let ok = vec!["k"; 31].join("/");
        assert_eq!(segments(&ok).unwrap().len(), 31);
        let too_deep = vec!["k"; 32].join("/");
        assert!(segments(&too_deep).is_err());
    }
}
