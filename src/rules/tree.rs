//! The rules tree compiled from the document: per location its `.read`, `.write` and
//! `.validate` rules, its `.indexOn` list, its literal children and at most one `$wildcard`.

use std::collections::HashMap;

use super::doc::{Doc, Item, Pos};
use super::expr::{self, Expr, Kind};
use super::RulesError;
use crate::rtdb::path::{validate_key, MAX_DEPTH};

/// One rule: its compiled expression, its source text and where it is in the document.
#[derive(Debug)]
pub(super) struct Rule {
    pub expr: Expr,
    pub text: Box<str>,
    pub pos: Pos,
}

#[derive(Debug, Default)]
pub(super) struct Node {
    pub read: Option<Rule>,
    pub write: Option<Rule>,
    pub validate: Option<Rule>,
    pub index_on: Vec<String>,
    pub children: HashMap<String, Node>,
    /// `$name` (with the `$`) and its rules.
    pub wildcard: Option<(String, Box<Node>)>,
}

impl Node {
    /// Whether a `.validate` rule is here or below.
    pub fn has_validate(&self) -> bool {
        self.validate.is_some()
            || self.children.values().any(Node::has_validate)
            || self
                .wildcard
                .as_ref()
                .is_some_and(|(_, w)| w.has_validate())
    }
    /// The rules for child `key`: its literal key, else the wildcard (then `key` is captured).
    pub fn child<'n>(&'n self, key: &str) -> Option<(&'n Node, bool)> {
        if let Some(c) = self.children.get(key) {
            return Some((c, false));
        }
        self.wildcard.as_ref().map(|(_, w)| (&**w, true))
    }
}

/// The document's `rules` object compiled.
pub(super) fn compile(doc: &Item) -> Result<Node, RulesError> {
    let Doc::Obj(members) = &doc.value else {
        return Err(RulesError::at(
            doc.pos,
            "A rules document is a JSON object: {\"rules\": {...}}",
        ));
    };
    let mut rules = None;
    for (key, pos, value) in members {
        if key == "rules" {
            rules = Some(value);
        } else {
            return Err(RulesError::at(
                *pos,
                format!("Unknown top-level key \"{key}\": a rules document holds only \"rules\""),
            ));
        }
    }
    let Some(rules) = rules else {
        return Err(RulesError::at(
            Pos {
                line: doc.pos.line,
                column: doc.pos.column + 1,
            },
            "Expected 'rules' property.",
        ));
    };
    node(rules, &mut Vec::new(), "rules")
}

fn node(item: &Item, scope: &mut Vec<String>, name: &str) -> Result<Node, RulesError> {
    let Doc::Obj(members) = &item.value else {
        return Err(RulesError::at(
            item.pos,
            format!("\"{name}\" must be an object of rules"),
        ));
    };
    if scope.len() >= MAX_DEPTH {
        return Err(RulesError::at(
            item.pos,
            format!("Rules nest deeper than data can ({MAX_DEPTH} levels)"),
        ));
    }
    let mut n = Node::default();
    for (key, pos, value) in members {
        match key.as_str() {
            ".read" => n.read = Some(rule(value, Kind::Read, scope, key)?),
            ".write" => n.write = Some(rule(value, Kind::Write, scope, key)?),
            ".validate" => n.validate = Some(rule(value, Kind::Validate, scope, key)?),
            ".indexOn" => n.index_on = index_on(value)?,
            k if k.starts_with('.') => {
                return Err(RulesError::at(
                    *pos,
                    format!(
                        "Unknown rule \"{k}\" (rules are .read, .write, .validate and .indexOn)"
                    ),
                ))
            }
            k if k.starts_with('$') => {
                let valid = k.len() > 1
                    && k[1..]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    return Err(RulesError::at(
                        *pos,
                        format!("Invalid wildcard \"{k}\": use $ and letters, digits, '_' or '-'"),
                    ));
                }
                if let Some((other, _)) = &n.wildcard {
                    return Err(RulesError::at(
                        *pos,
                        format!("Two wildcards at one level (\"{other}\" and \"{k}\"); a location can have only one"),
                    ));
                }
                scope.push(k.to_string());
                let child = node(value, scope, k);
                scope.pop();
                n.wildcard = Some((k.to_string(), Box::new(child?)));
            }
            k => {
                validate_key(k).map_err(|e| RulesError::at(*pos, e.message))?;
                n.children.insert(k.to_string(), node(value, scope, k)?);
            }
        }
    }
    Ok(n)
}

fn rule(item: &Item, kind: Kind, scope: &[String], key: &str) -> Result<Rule, RulesError> {
    let (expr, text) = match &item.value {
        Doc::Bool(b) => (Expr::Bool(*b), b.to_string()),
        Doc::Str { text, .. } => {
            let e = expr::parse(text, kind, scope)
                .map_err(|e| RulesError::at(item.pos_in_string(e.offset), e.message))?;
            (e, text.clone())
        }
        _ => {
            return Err(RulesError::at(
                item.pos,
                format!("\"{key}\" must be true, false or a string holding an expression"),
            ))
        }
    };
    Ok(Rule {
        expr,
        text: text.into(),
        pos: item.pos,
    })
}

/// `.indexOn`: a child path (`"email"`, `"ratings/pos"`) or `".value"`, or a list of them.
fn index_on(item: &Item) -> Result<Vec<String>, RulesError> {
    let entries: Vec<&Item> = match &item.value {
        Doc::Arr(items) => items.iter().collect(),
        _ => vec![item],
    };
    entries
        .into_iter()
        .map(|e| match &e.value {
            Doc::Str { text, .. } if text == ".value" => Ok(text.clone()),
            Doc::Str { text, .. } => {
                let segs: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
                if segs.is_empty() {
                    return Err(RulesError::at(e.pos, "An .indexOn entry cannot be empty"));
                }
                for s in &segs {
                    validate_key(s).map_err(|err| RulesError::at(e.pos, err.message))?;
                }
                Ok(segs.join("/"))
            }
            _ => Err(RulesError::at(
                e.pos,
                ".indexOn must be a child path or \".value\", or a list of them",
            )),
        })
        .collect()
}
