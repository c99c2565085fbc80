//! Fencing checked by the database itself (`locking.serverFencing`, opt-in).
//!
//! The client-side fence (`fence`) sends nothing after the lease deadline, but a write already
//! on its way then (held up in the network, or sent just before a pause) can still land after
//! another process took the lock over. Only the database can refuse that one, and it can: a
//! request with an `auth_variable_override` is checked against the rules atomically with the
//! write. Under server fencing every attempt of the scripts' writes carries the holder's lock
//! epoch as the claim [`EPOCH_CLAIM`] of its override, and the rule [`write_rule`] — on the
//! migrated paths, printed ready to merge by `msr-firebase rules:fencing` ([`rules_fragment`]) —
//! lets a write through only while that epoch is the lock's epoch as stored now
//! (`{shift}/migrations/_lock/epoch`, which every new holder increases). A write from an earlier
//! epoch is refused: `401 Permission denied`, nothing written.

use serde_json::{Map, Value};

use crate::rtdb::path;
use crate::{Error, Result};

/// The claim of the scripts' `auth` that carries the holder's lock epoch.
pub const EPOCH_CLAIM: &str = "msrLockEpoch";

/// The claims a fenced write adds to its `auth_variable_override`.
pub fn claims(epoch: u64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(EPOCH_CLAIM.to_string(), epoch.into());
    m
}

/// The `.write` condition: the write carries the epoch of the lock as it is now (a request
/// without the claim, or unauthenticated, never passes it).
pub fn write_rule(shift: Option<&str>) -> String {
    let epoch = format!("{}/epoch", super::record::lock_path(shift));
    format!("auth.{EPOCH_CLAIM} != null && auth.{EPOCH_CLAIM} === root.child('{epoch}').val()")
}

/// A rules document that puts [`write_rule`] on `paths` (relative to the shift; none: the
/// shift's node itself, i.e. everything the scripts write there), with comments saying what to
/// merge and what must not be granted above it. `Err` (CONFIG) for a path that is not a
/// database path.
pub fn rules_fragment(shift: Option<&str>, paths: &[String]) -> Result<String> {
    let base = match shift {
        Some(s) => path::segments(s)?,
        None => Vec::new(),
    };
    let mut targets: Vec<Vec<String>> = Vec::new();
    for p in paths {
        let segs = path::segments(p)
            .map_err(|e| Error::config(format!("rules:fencing: {p:?}: {}", e.message)))?;
        targets.push(base.iter().cloned().chain(segs).collect());
    }
    if targets.is_empty() {
        targets.push(base);
    }
    let rule = write_rule(shift);
    let mut rules = Value::Object(Map::new());
    for t in &targets {
        let mut node = &mut rules;
        for key in t {
            node = node
                .as_object_mut()
                .expect("rules nodes are objects")
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        if let Some(o) = node.as_object_mut() {
            o.insert(".write".into(), Value::String(rule.clone()));
        }
    }
    let doc = serde_json::json!({ "rules": rules });
    let shown: Vec<String> = targets
        .iter()
        .map(|t| format!("/{}", t.join("/")))
        .collect();
    Ok(format!(
        "// Server fencing for msr-firebase (locking.serverFencing: true). Merge these .write rules\n\
         // into your database rules, at {}.\n\
         // The migration scripts' writes then carry the lock's epoch as auth.{EPOCH_CLAIM}, and\n\
         // the database refuses (401) any write from a holder whose lock was taken over since.\n\
         // .write rules cascade: no rule above these paths may grant the scripts' identity\n\
         // writes (it would let a stale write through), and none below is needed for them.\n\
         {}\n",
        shown.join(", "),
        serde_json::to_string_pretty(&doc).expect("JSON values serialize")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Context, Rules};
    use serde_json::json;

    fn segs(p: &str) -> Vec<String> {
        p.split('/').map(String::from).collect()
    }

    #[test]
    fn the_fragment_parses_and_admits_only_the_current_epoch() {
        let text = rules_fragment(Some("/app/"), &[]).unwrap();
        let rules = Rules::parse(&text).unwrap();
        let data = json!({"app": {"migrations": {"_lock": {"epoch": 3}}, "users": {"u1": 1}}});
        let write = |auth: Value| {
            let cx = Context {
                auth: &auth,
                now_ms: 0,
            };
            let v = json!(2);
            rules
                .check_write(&cx, &data, &[(&segs("app/users/u1")[..], Some(&v))])
                .is_ok()
        };
        assert!(write(json!({"uid": "m", "msrLockEpoch": 3})));
        assert!(!write(json!({"uid": "m", "msrLockEpoch": 2})));
        assert!(!write(json!({"uid": "m"})));
        assert!(!write(Value::Null));
        // No lock ever taken: no epoch to match, nothing passes.
        let fresh = json!({"app": {"users": {}}});
        let cx = Context {
            auth: &json!({"uid": "m"}),
            now_ms: 0,
        };
        assert!(rules
            .check_write(&cx, &fresh, &[(&segs("app/users/u1")[..], Some(&json!(1)))])
            .is_err());
    }

    #[test]
    fn paths_are_below_the_shift_and_checked() {
        let text = rules_fragment(None, &["users".into(), "posts/all".into()]).unwrap();
        let rules = Rules::parse(&text).unwrap();
        let rule = "auth.msrLockEpoch != null && auth.msrLockEpoch === root.child('migrations/_lock/epoch').val()";
        assert_eq!(
            rules.strict(),
            &json!({"rules": {"users": {".write": rule}, "posts": {"all": {".write": rule}}}})
        );
        let e = rules_fragment(None, &["a.b".into()]).unwrap_err();
        assert!(e.message.contains("a.b"), "{}", e.message);
    }
}
