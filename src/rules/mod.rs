//! Firebase Realtime Database Security Rules: the rules document parsed and checked, and the
//! questions the service asks of it — may this `auth` read here, may it make this write (and
//! which `.validate` fails), is this query indexed — evaluated as the service does, over any
//! data a caller can show through a [`DataView`].
//!
//! ```
//! use msr_firebase::rules::{Context, Rules};
//! use serde_json::json;
//!
//! let rules = Rules::parse(r#"{
//!   // comments are allowed, as the service allows them
//!   "rules": { "users": { "$uid": { ".read": "auth.uid === $uid", ".write": "auth.uid === $uid" },
//!                         ".indexOn": ["email"] } }
//! }"#).unwrap();
//! let data = json!({ "users": { "u1": { "email": "a@example.com" } } });
//! let path = |p: &str| p.split('/').map(String::from).collect::<Vec<_>>();
//! let u1 = json!({ "uid": "u1" });
//! let cx = Context { auth: &u1, now_ms: 0 };
//! assert!(rules.can_read(&cx, &data, &path("users/u1"), None));
//! assert!(!rules.can_read(&cx, &data, &path("users/u2"), None));
//! let new = json!({ "email": "b@example.com" });
//! assert!(rules.check_write(&cx, &data, &[(&path("users/u1")[..], Some(&new))]).is_ok());
//! assert!(rules.check_write(&cx, &data, &[(&path("users/u2")[..], Some(&new))]).is_err());
//! assert_eq!(rules.missing_index(&path("users"), &msr_firebase::rtdb::order::OrderBy::Child("age".into())).unwrap(),
//!     "Index not defined, add \".indexOn\": \"age\", for path \"/users\", to the rules");
//! ```
//!
//! # The language, as the service evaluates it
//! - `.read` / `.write` cascade: access granted at a location covers everything below it and
//!   cannot be taken back below. A read or write at a path is allowed when a rule at that path
//!   or above it holds; rules below the path are not consulted (rules are not filters).
//! - `.validate` does not cascade: for a write, every `.validate` from the root down to each
//!   written path and every one inside the written data must hold, each seeing `newData` — the
//!   data as it would be after the whole write. Locations left empty by the write (deletes) are
//!   not validated.
//! - A multi-path write (a PATCH) is checked per written path, and is refused whole when any
//!   path is not allowed or any `.validate` fails.
//! - Children: a literal key's rules apply to that key; a sibling `$wildcard` applies to every
//!   other key and captures it as a string variable (`$uid`).
//! - Variables: `auth` (the caller's token claims, or `null`), `now` (server ms), `root`,
//!   `data` (before the operation), `newData` (after it; not in `.read`), `query` (`.read` only:
//!   `orderByKey`, `orderByChild`, `orderByValue`, `orderByPriority`, `startAt`, `endAt`,
//!   `equalTo`, `limitToFirst`, `limitToLast`), the `$wildcards` above the rule.
//! - Snapshots: `val child parent hasChild hasChildren exists getPriority isNumber isString
//!   isBoolean`; strings: `length contains beginsWith endsWith replace toLowerCase toUpperCase
//!   matches(/regex/i)`; operators with JavaScript's precedence, `==` and `===` alike strict.
//! - A rule holds only if it evaluates to `true`; an error while evaluating (`auth.uid` without
//!   `auth`) makes it not hold.
//! - Indexes: a query ordered by a child or by value needs that child (or `.value`) in the
//!   `.indexOn` of the queried location's rules; `$key` and `$priority` need none.
//!
//! Module map: `doc` (JSON with comments, positions), `expr` (expressions: parse and check),
//! `tree` (the compiled rules tree), `eval` (evaluation), `view` (the data seen by rules:
//! [`DataView`], [`Overlay`]), `firebase_json` (rules files named by firebase.json).

mod doc;
mod eval;
mod expr;
pub mod firebase_json;
mod tree;
mod view;

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::Path;

use serde_json::Value;

use crate::rtdb::order::{OrderBy, Query};
pub use doc::Pos;
use eval::{holds, Env};
use tree::{Node, Rule};
pub use view::{DataView, Found, Overlay, Write};

/// A rules document that does not parse or check: where and why. Shown as the service shows it,
/// `line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {message}", pos.line, pos.column)]
pub struct RulesError {
    pub pos: Pos,
    pub message: String,
}

impl RulesError {
    fn at(pos: Pos, message: impl Into<String>) -> RulesError {
        RulesError {
            pos,
            message: message.into(),
        }
    }
}

/// Who asks and when: `auth` is the caller's claims (`auth_variable_override`), `null` for an
/// unauthenticated caller. (Admins are not evaluated at all: they bypass rules.)
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub auth: &'a Value,
    pub now_ms: i64,
}

/// Why a write is refused. The service answers both with `401 {"error": "Permission denied"}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No `.write` at the path or above it holds.
    #[error("Permission denied: no .write rule allows writing /{path}")]
    NotAllowed { path: String },
    /// A `.validate` rule does not hold for the data it would see.
    #[error("Permission denied: .validate at /{path} fails ({rule}, line {})", pos.line)]
    Invalid {
        path: String,
        rule: String,
        pos: Pos,
    },
}

/// The service's text for a denied read or write.
pub const PERMISSION_DENIED: &str = "Permission denied";

/// The rules of a database open to everyone, what the emulator (like Google's) applies to a
/// namespace that has no rules.
pub const OPEN_RULES: &str =
    "{\n  \"rules\": {\n    \".read\": true,\n    \".write\": true\n  }\n}\n";

/// A parsed rules document: its text as given (comments kept) and its compiled rules.
#[derive(Debug)]
pub struct Rules {
    text: String,
    strict: Value,
    root: Node,
}

impl Rules {
    /// Parse and check a rules document (JSON with `//` and `/* */` comments).
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        let doc = doc::parse(text)?;
        let root = tree::compile(&doc)?;
        Ok(Rules {
            text: text.to_string(),
            strict: doc.to_json(),
            root,
        })
    }

    /// Read and parse a rules file; errors are `<file>:<line>:<column>: <message>` (CONFIG).
    pub fn load(path: &Path) -> crate::Result<Rules> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            crate::Error::io(format!("Cannot read the rules file {}", path.display()), e)
        })?;
        Rules::parse(&text).map_err(|e| crate::Error::config(format!("{}:{e}", path.display())))
    }

    /// Whether the rules have any `.validate` (else data never fails one).
    pub fn has_validate(&self) -> bool {
        self.root.has_validate()
    }

    /// The document as it was given, comments included.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The document as plain JSON (comments dropped).
    pub fn strict(&self) -> &Value {
        &self.strict
    }

    /// May `cx` read `path` (with `query`, which `.read` rules can inspect)?
    pub fn can_read(
        &self,
        cx: &Context<'_>,
        data: &dyn DataView,
        path: &[String],
        query: Option<&Query>,
    ) -> bool {
        let walked = self.walk(path, |node, at, captures| {
            node.read.as_ref().is_some_and(|rule| {
                let env = Env {
                    auth: cx.auth,
                    now_ms: cx.now_ms,
                    query,
                    before: data,
                    after: None,
                    path: at,
                    captures,
                };
                holds(&rule.expr, &env)
            })
        });
        matches!(walked, Walk::Stopped)
    }

    /// May `cx` make `writes` (each a path and its new value, `None` to delete; paths must not
    /// overlap) to the data `before`? `Err` names the first path not allowed or the first
    /// `.validate` that fails. Nothing is copied: `newData` is `before` with the writes laid
    /// over it.
    pub fn check_write(
        &self,
        cx: &Context<'_>,
        before: &dyn DataView,
        writes: &[Write<'_>],
    ) -> Result<(), Denial> {
        let after = Overlay::new(before, writes);
        let ask = Ask {
            cx,
            before,
            after: &after,
        };
        for (path, _) in writes {
            // A write of a node's priority (`<path>/.priority`) is a write of that node.
            let path = match path.split_last() {
                Some((last, node)) if last == ".priority" => node,
                _ => path,
            };
            let walked = self.walk(path, |node, at, captures| {
                node.write
                    .as_ref()
                    .is_some_and(|rule| holds(&rule.expr, &ask.env(at, captures)))
            });
            if !matches!(walked, Walk::Stopped) {
                return Err(Denial::NotAllowed {
                    path: path.join("/"),
                });
            }
        }
        // A priority write meets the `.validate` rules at and above its node, none below.
        let is_priority = |p: &[String]| p.last().is_some_and(|k| k == ".priority");
        self.validate(
            &ask,
            writes
                .iter()
                .map(|(p, v)| (*p, v.is_some() && !is_priority(p))),
        )
    }

    /// Does `data`, as it is, satisfy the `.validate` rules a write at each of `paths` would
    /// meet (those above the path, and — for a path that holds data, `true` — in and below it)?
    /// What an admin's writes skip: `Err` names the first that fails, i.e. a location where
    /// `cx` can no longer write the data as it is.
    pub fn check_valid<'p>(
        &self,
        cx: &Context<'_>,
        data: &dyn DataView,
        paths: impl IntoIterator<Item = (&'p [String], bool)>,
    ) -> Result<(), Denial> {
        let after = Overlay::new(data, &[]);
        let ask = Ask {
            cx,
            before: data,
            after: &after,
        };
        self.validate(&ask, paths)
    }

    /// Each `.validate` above a written path once (the data after the write is the same for
    /// every path), then those in and below each written value (`true`: not a delete).
    fn validate<'p>(
        &self,
        ask: &Ask<'_>,
        writes: impl IntoIterator<Item = (&'p [String], bool)>,
    ) -> Result<(), Denial> {
        let after = ask.after;
        let mut validated: HashSet<&[String]> = HashSet::new();
        for (path, value) in writes {
            let mut failed = None;
            let walked = self.walk(path, |node, at, captures| {
                let Some(rule) = node.validate.as_ref().filter(|_| at.len() < path.len()) else {
                    return false;
                };
                if !validated.insert(at) || after.at(at).is_none() {
                    return false;
                }
                failed = check(rule, &ask.env(at, captures), at).err();
                failed.is_some()
            });
            if let Some(denial) = failed {
                return Err(denial);
            }
            if let (Walk::Reached(node, mut captures), true) = (walked, value) {
                validate_below(node, &mut path.to_vec(), &mut captures, ask)?;
            }
        }
        Ok(())
    }

    /// Walk the rules from the root down `path`: `stop` sees each location's rules on the way
    /// (with the path to it and what the wildcards captured) and may end the walk there.
    fn walk<'p>(
        &self,
        path: &'p [String],
        mut stop: impl FnMut(&Node, &'p [String], &[String]) -> bool,
    ) -> Walk<'_> {
        let mut captures = Vec::new();
        let mut node = &self.root;
        for depth in 0..=path.len() {
            if stop(node, &path[..depth], &captures) {
                return Walk::Stopped;
            }
            let Some(key) = path.get(depth) else { break };
            let Some((child, captured)) = node.child(key) else {
                return Walk::Unruled;
            };
            if captured {
                captures.push(key.clone());
            }
            node = child;
        }
        Walk::Reached(node, captures)
    }

    /// The service's 400 text when a query at `path` ordered by `order` has no index in these
    /// rules (`None` when it has one, or needs none: `$key`, `$priority`).
    pub fn missing_index(&self, path: &[String], order: &OrderBy) -> Option<String> {
        let wanted = match order {
            OrderBy::Key | OrderBy::Priority => return None,
            OrderBy::Value => ".value".to_string(),
            OrderBy::Child(c) => c
                .split('/')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("/"),
        };
        if let Walk::Reached(node, _) = self.walk(path, |_, _, _| false) {
            if node.index_on.contains(&wanted) {
                return None;
            }
        }
        Some(format!(
            "Index not defined, add \".indexOn\": \"{wanted}\", for path \"/{}\", to the rules",
            path.join("/")
        ))
    }
}

/// Where a walk down the rules ended.
enum Walk<'r> {
    /// Where the visitor stopped it.
    Stopped,
    /// At the path's own rules, with what the wildcards captured.
    Reached(&'r Node, Vec<String>),
    /// The rules end above the path.
    Unruled,
}

/// `rule` must hold at `at`.
fn check(rule: &Rule, env: &Env<'_>, at: &[String]) -> Result<(), Denial> {
    if holds(&rule.expr, env) {
        Ok(())
    } else {
        Err(Denial::Invalid {
            path: at.join("/"),
            rule: rule.text.to_string(),
            pos: rule.pos,
        })
    }
}

/// A write being checked: who, and the data before and after it.
struct Ask<'a> {
    cx: &'a Context<'a>,
    before: &'a dyn DataView,
    after: &'a Overlay<'a>,
}

impl<'a> Ask<'a> {
    /// The environment of a rule at `path` with its wildcards' `captures`.
    fn env<'b>(&'b self, path: &'b [String], captures: &'b [String]) -> Env<'b>
    where
        'a: 'b,
    {
        Env {
            auth: self.cx.auth,
            now_ms: self.cx.now_ms,
            query: None,
            before: self.before,
            after: Some(self.after),
            path,
            captures,
        }
    }
}

/// Every `.validate` of `node` and below it, over the data that exists at `path` after the write.
fn validate_below(
    node: &Node,
    path: &mut Vec<String>,
    captures: &mut Vec<String>,
    ask: &Ask<'_>,
) -> Result<(), Denial> {
    if ask.after.at(path).is_none() {
        return Ok(());
    }
    if let Some(rule) = &node.validate {
        check(rule, &ask.env(path, captures), path)?;
    }
    for (key, child) in &node.children {
        path.push(key.clone());
        let r = validate_below(child, path, captures, ask);
        path.pop();
        r?;
    }
    if let Some((_, wild)) = &node.wildcard {
        let parent = path.clone();
        let mut failed = None;
        ask.after.each_child(&parent, &mut |key| {
            if node.children.contains_key(key) {
                return ControlFlow::Continue(());
            }
            path.push(key.to_string());
            captures.push(key.to_string());
            let r = validate_below(wild, path, captures, ask);
            captures.pop();
            path.pop();
            match r {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
