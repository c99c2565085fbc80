//! Secrets kept out of every error and log line. [`secrets`] is applied where errors are made
//! (`Error::new`), where log lines are made (`LogLine`), and where the CLI prints
//! (`cli::output::Io`) and the binding hands errors to JS; it never depends on which message a
//! secret ended up in:
//!
//! - PEM private keys (with real newlines or JSON's `\n`), even cut short;
//! - URL query parameters that carry credentials (`?auth=`, `access_token=`, `token=`, `key=`, ...);
//! - passwords in URLs (`https://user:password@host`: the user stays, the password goes);
//! - fields named like secrets (`private_key`, `client_secret`, `refresh_token`, `password`, ...)
//!   in JSON, JS-inspected objects and `name=value` text;
//! - bearer tokens and Google OAuth tokens (`ya29.`, `1//`);
//! - every value of a credentials-shaped JSON object (a `service_account`, `authorized_user`,
//!   `external_account` or `impersonated_service_account` file, or any object with a
//!   `private_key`, `client_secret` or `refresh_token`): only its keys remain.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::Value;

/// What a secret is replaced with.
pub const MASK: &str = "[redacted]";

/// Field names whose values are secrets wherever they appear.
const SECRET_FIELDS: &str = "private_key|private_key_id|client_secret|refresh_token|access_token|id_token|subject_token|password|passwd|api_key|apikey|secret";

/// Query parameters whose values are secrets.
const SECRET_PARAMS: &str = "auth|access_token|token|key|id_token|refresh_token|client_secret|password|api_key|apikey|sig|signature";

/// Credential file types (`type` of a Google credentials file).
const CREDENTIAL_TYPES: [&str; 4] = [
    "service_account",
    "authorized_user",
    "external_account",
    "impersonated_service_account",
];

static PEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[A-Za-z0-9+/=\s\\]+(?:-----END [A-Z0-9 ]*PRIVATE KEY-----)?",
    )
    .expect("PEM pattern")
});

static PARAM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r#"([?&;](?i-u:{SECRET_PARAMS})=)[^&#\s"'<>;\\]+"#))
        .expect("query parameter pattern")
});

static USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@"'<>\\]*):[^@/\s"'<>\\]+@"#)
        .expect("userinfo pattern")
});

static FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(["']?\b(?i-u:{SECRET_FIELDS})\b["']?\s*[:=]\s*)(\\"(?:[^"\\]|\\[^"])*(?:\\")?|"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|[^\s&,;}}\]"'#\\]+)"#
    ))
    .expect("field pattern")
});

static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b((?i-u:bearer)\s+)([A-Za-z0-9._~+/=-]+)").expect("bearer pattern")
});

static GOOGLE_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:ya29\.[A-Za-z0-9._-]+|1//[A-Za-z0-9._-]{16,})").expect("token pattern")
});

/// What a match is replaced with.
type Mask = fn(&Captures) -> String;

/// `text` with every secret it holds replaced by [`MASK`] (borrowed when there is none).
pub fn secrets(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if looks_like_credentials(&out) {
        if let Some(masked) = mask_credential_objects(&out) {
            out = Cow::Owned(masked);
        }
    }
    let steps: [(&Regex, Mask); 6] = [
        (&PEM, |_| format!("{MASK} private key")),
        (&PARAM, |c| format!("{}{MASK}", &c[1])),
        (&USERINFO, |c| format!("{}:{MASK}@", &c[1])),
        (&FIELD, |c| {
            // Already masked (by an earlier step, or an earlier pass): left as it is.
            let v = c[2].trim_matches(['"', '\'', '\\']);
            if v.starts_with(MASK) || MASK.starts_with(v) && !v.is_empty() {
                c[0].to_string()
            } else {
                format!("{}{}", &c[1], masked_value(&c[2]))
            }
        }),
        (&BEARER, |c| {
            // The emulator's admin token is no secret (and the docs name it).
            if &c[2] == "owner" || &c[2] == MASK {
                c[0].to_string()
            } else {
                format!("{}{MASK}", &c[1])
            }
        }),
        (&GOOGLE_TOKEN, |_| MASK.to_string()),
    ];
    for (re, with) in steps {
        if let Cow::Owned(s) = re.replace_all(&out, with) {
            out = Cow::Owned(s);
        }
    }
    out
}

/// `secrets`, as an owned string.
pub fn secrets_owned(text: String) -> String {
    match secrets(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(s) => s,
    }
}

/// Every string inside `v` (keys kept), redacted; credentials-shaped objects lose all values.
pub fn value(v: &mut Value) {
    if is_credentials(v) {
        mask_all(v);
        return;
    }
    match v {
        Value::String(s) => {
            if let Cow::Owned(r) = secrets(s) {
                *s = r;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(value),
        Value::Object(m) => m.values_mut().for_each(value),
        _ => {}
    }
}

/// Whether `v` is (or holds at its top level) what a credentials file holds.
pub fn is_credentials(v: &Value) -> bool {
    let Value::Object(m) = v else {
        return false;
    };
    m.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| CREDENTIAL_TYPES.contains(&t))
        || ["private_key", "client_secret", "refresh_token"]
            .iter()
            .any(|k| m.contains_key(*k))
}

fn masked_value(v: &str) -> String {
    if v.starts_with("\\\"") {
        // Inside JSON text: an escaped quote.
        return format!("\\\"{MASK}\\\"");
    }
    match v.chars().next() {
        Some('"') => format!("\"{MASK}\""),
        Some('\'') => format!("'{MASK}'"),
        _ => MASK.to_string(),
    }
}

fn mask_all(v: &mut Value) {
    match v {
        Value::Object(m) => m.values_mut().for_each(mask_all),
        Value::Array(a) => a.iter_mut().for_each(mask_all),
        Value::Null => {}
        other => *other = Value::String(MASK.to_string()),
    }
}

/// A cheap test before looking for JSON objects in `text`.
fn looks_like_credentials(text: &str) -> bool {
    text.contains('{')
        && (CREDENTIAL_TYPES.iter().any(|t| text.contains(t))
            || ["private_key", "client_secret", "refresh_token"]
                .iter()
                .any(|k| text.contains(k)))
}

/// The JSON objects in `text` that are credentials-shaped, with their values masked. `None`
/// when there is none.
fn mask_credential_objects(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let candidate = &rest[i..];
        let mut stream = serde_json::Deserializer::from_str(candidate).into_iter::<Value>();
        match stream.next() {
            Some(Ok(mut v)) if is_credentials(&v) => {
                let used = stream.byte_offset();
                mask_all(&mut v);
                out.push_str(&v.to_string());
                rest = &candidate[used..];
                changed = true;
            }
            _ => {
                out.push('{');
                rest = &candidate[1..];
            }
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7CANARY\n-----END PRIVATE KEY-----\n";

    #[test]
    fn private_keys_go_in_every_form() {
        let sa = json!({"type": "service_account", "project_id": "p", "private_key": KEY, "client_email": "m@p.iam.gserviceaccount.com"});
        for text in [
            format!("got an object: {sa}"),
            format!("key {KEY} here"),
            format!("{{ private_key: '{}' }}", KEY.replace('\n', "\\n")),
            // cut short (no END line)
            format!("got {}", &sa.to_string()[..120]),
        ] {
            let r = secrets(&text);
            assert!(!r.contains("CANARY"), "{r}");
        }
        let text = format!("x {sa} y");
        let r = secrets(&text);
        assert_eq!(secrets(&r), r, "redacting twice changes nothing");
        assert!(
            r.contains("\"type\":\"[redacted]\"") && r.starts_with("x ") && r.ends_with(" y"),
            "{r}"
        );
        assert!(!r.contains("gserviceaccount"), "{r}");
    }

    #[test]
    fn urls_lose_passwords_and_secret_parameters() {
        assert_eq!(
            secrets("databaseUrl \"https://db.firebaseio.com/?auth=SEKRET&x=1\" is invalid"),
            "databaseUrl \"https://db.firebaseio.com/?auth=[redacted]&x=1\" is invalid"
        );
        assert_eq!(
            secrets("http://h:9000?ns=a&access_token=ya29.abc"),
            "http://h:9000?ns=a&access_token=[redacted]"
        );
        assert_eq!(
            secrets("at https://me:pa55word@db.example.com:443/x"),
            "at https://me:[redacted]@db.example.com:443/x"
        );
        // A port is not a password.
        assert_eq!(
            secrets("http://127.0.0.1:9000/x"),
            "http://127.0.0.1:9000/x"
        );
    }

    #[test]
    fn json_text_stays_json() {
        for text in [
            "databaseUrl \"https://db.firebaseio.com/?auth=SEKRET\" is invalid",
            "at \"https://me:pa55@h/x\"",
            "password=\"x\" and token: 'y'",
        ] {
            let line = serde_json::json!({ "message": text }).to_string();
            let r = secrets(&line);
            let back: Value = serde_json::from_str(&r).unwrap_or_else(|e| panic!("{r}: {e}"));
            assert!(!r.contains("SEKRET") && !r.contains("pa55"), "{r}");
            assert_eq!(back["message"], secrets(text).as_ref());
        }
    }

    #[test]
    fn tokens_and_named_fields() {
        assert_eq!(
            secrets("Authorization: Bearer abc.def-ghi"),
            "Authorization: Bearer [redacted]"
        );
        assert_eq!(secrets("Bearer owner"), "Bearer owner");
        assert_eq!(secrets("got ya29.a0AfH6SM token"), "got [redacted] token");
        assert_eq!(
            secrets(r#"{"refresh_token":"1//0gAbc","client_id":"x"}"#),
            r#"{"refresh_token":"[redacted]","client_id":"[redacted]"}"#
        );
        assert_eq!(secrets("password=hunter2 next"), "password=[redacted] next");
        assert_eq!(
            secrets("{ client_secret: 'abc', n: 1 }"),
            "{ client_secret: '[redacted]', n: 1 }"
        );
        // Ordinary text is left alone.
        let plain = "Migration V202501010001_a.js failed: tokens left: 3 (see the key names)";
        assert!(matches!(secrets(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn values_are_walked() {
        let mut v = json!({"a": ["https://u:p@h/x"], "creds": {"type": "authorized_user", "client_id": "id"}});
        value(&mut v);
        assert_eq!(
            v,
            json!({"a": ["https://u:[redacted]@h/x"], "creds": {"type": "[redacted]", "client_id": "[redacted]"}})
        );
    }
}
