//! Evaluating rule expressions. A rule holds only when its expression is `true`; anything that
//! fails on the way (a property of `null` such as `auth.uid` without `auth`, `parent()` of the
//! root, ordering a string against a number, a string method on a number) makes the whole rule
//! not hold, as the service treats errors. `==` and `===` are the same strict comparison (values
//! of different types are unequal), and `val()` of an object is a value equal to nothing.

use std::borrow::Cow;

use serde_json::Value;

use super::expr::{Expr, Method, Op, Var};
use super::view::{DataView, Found};
use crate::rtdb::order::{OrderBy, Query};

/// What a rule is evaluated against.
pub(super) struct Env<'a> {
    pub auth: &'a Value,
    pub now_ms: i64,
    pub query: Option<&'a Query>,
    /// The data before the operation (`root`, `data`).
    pub before: &'a dyn DataView,
    /// The data after it (`newData`); writes only.
    pub after: Option<&'a dyn DataView>,
    /// The rule's location.
    pub path: &'a [String],
    /// What the wildcards from the root down to the rule captured.
    pub captures: &'a [String],
}

/// Evaluation failed: the rule does not hold.
#[derive(Debug)]
struct Fail;

type R<'a> = Result<V<'a>, Fail>;

#[derive(Debug, Clone)]
enum V<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// An object or array from `auth` (members readable).
    Json(&'a Value),
    /// `val()` of an object: equal to nothing.
    Opaque,
    Snap {
        after: bool,
        path: Vec<String>,
    },
    Query,
    Regex(&'a regex::Regex),
    List(Vec<V<'a>>),
}

/// Does `e` hold (evaluate to `true`) in `env`?
pub(super) fn holds(e: &Expr, env: &Env<'_>) -> bool {
    matches!(eval(e, env), Ok(V::Bool(true)))
}

fn json<'a>(v: &'a Value) -> V<'a> {
    match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => V::Num(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => V::Str(Cow::Borrowed(s)),
        other => V::Json(other),
    }
}

fn opt_json(v: &Option<Value>) -> V<'_> {
    v.as_ref().map_or(V::Null, json)
}

fn found(f: Option<Found<'_>>) -> V<'_> {
    match f {
        None => V::Null,
        Some(Found::Bool(b)) => V::Bool(b),
        Some(Found::Num(n)) => V::Num(n),
        Some(Found::Str(s)) => V::Str(s),
        Some(Found::Object) => V::Opaque,
    }
}

fn boolean(v: V<'_>) -> Result<bool, Fail> {
    match v {
        V::Bool(b) => Ok(b),
        _ => Err(Fail),
    }
}

fn string<'a>(v: V<'a>) -> Result<Cow<'a, str>, Fail> {
    match v {
        V::Str(s) => Ok(s),
        _ => Err(Fail),
    }
}

/// A number as JavaScript writes it in a string (`5`, not `5.0`).
fn js_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i128)
    } else {
        format!("{n}")
    }
}

fn eval<'a>(e: &'a Expr, env: &Env<'a>) -> R<'a> {
    Ok(match e {
        Expr::Null => V::Null,
        Expr::Bool(b) => V::Bool(*b),
        Expr::Num(n) => V::Num(*n),
        Expr::Str(s) => V::Str(Cow::Borrowed(s)),
        Expr::Regex(r) => V::Regex(r),
        Expr::Array(items) => V::List(
            items
                .iter()
                .map(|i| eval(i, env))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Var(v) => match v {
            Var::Auth => json(env.auth),
            Var::Now => V::Num(env.now_ms as f64),
            Var::Root => V::Snap {
                after: false,
                path: Vec::new(),
            },
            Var::Data => V::Snap {
                after: false,
                path: env.path.to_vec(),
            },
            Var::NewData => {
                env.after.ok_or(Fail)?;
                V::Snap {
                    after: true,
                    path: env.path.to_vec(),
                }
            }
            Var::Query => V::Query,
        },
        Expr::Capture(i) => V::Str(Cow::Borrowed(env.captures.get(*i).ok_or(Fail)?)),
        Expr::Prop(target, name) => property(eval(target, env)?, name, env)?,
        Expr::Index(target, index) => {
            let key = match eval(index, env)? {
                V::Str(s) => s.into_owned(),
                V::Num(n) => js_number(n),
                _ => return Err(Fail),
            };
            member(eval(target, env)?, &key)?
        }
        Expr::Call(target, m, args) => call(eval(target, env)?, *m, args, env)?,
        Expr::Not(x) => V::Bool(!boolean(eval(x, env)?)?),
        Expr::Neg(x) => match eval(x, env)? {
            V::Num(n) => V::Num(-n),
            _ => return Err(Fail),
        },
        Expr::And(a, b) => V::Bool(boolean(eval(a, env)?)? && boolean(eval(b, env)?)?),
        Expr::Or(a, b) => V::Bool(boolean(eval(a, env)?)? || boolean(eval(b, env)?)?),
        Expr::Cond(c, a, b) => {
            if boolean(eval(c, env)?)? {
                eval(a, env)?
            } else {
                eval(b, env)?
            }
        }
        Expr::Bin(op, a, b) => binary(*op, eval(a, env)?, eval(b, env)?)?,
    })
}

fn binary<'a>(op: Op, a: V<'a>, b: V<'a>) -> R<'a> {
    Ok(match op {
        Op::Eq => V::Bool(equal(&a, &b)?),
        Op::Ne => V::Bool(!equal(&a, &b)?),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ord = match (&a, &b) {
                (V::Num(x), V::Num(y)) => x.partial_cmp(y).ok_or(Fail)?,
                (V::Str(x), V::Str(y)) => x.encode_utf16().cmp(y.encode_utf16()),
                _ => return Err(Fail),
            };
            V::Bool(match op {
                Op::Lt => ord.is_lt(),
                Op::Le => ord.is_le(),
                Op::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        Op::Add => match (a, b) {
            (V::Num(x), V::Num(y)) => V::Num(x + y),
            (V::Str(x), y) => V::Str(Cow::Owned(format!("{x}{}", concat_text(y)?))),
            (x, V::Str(y)) => V::Str(Cow::Owned(format!("{}{y}", concat_text(x)?))),
            _ => return Err(Fail),
        },
        Op::Sub | Op::Mul | Op::Div | Op::Rem => {
            let (V::Num(x), V::Num(y)) = (a, b) else {
                return Err(Fail);
            };
            V::Num(match op {
                Op::Sub => x - y,
                Op::Mul => x * y,
                Op::Div => x / y,
                _ => x % y,
            })
        }
    })
}

/// The text of a value joined to a string with `+`.
fn concat_text(v: V<'_>) -> Result<String, Fail> {
    match v {
        V::Str(s) => Ok(s.into_owned()),
        V::Num(n) => Ok(js_number(n)),
        V::Bool(b) => Ok(b.to_string()),
        _ => Err(Fail),
    }
}

fn equal(a: &V<'_>, b: &V<'_>) -> Result<bool, Fail> {
    Ok(match (a, b) {
        (V::Snap { .. } | V::Query | V::Regex(_) | V::List(_), _)
        | (_, V::Snap { .. } | V::Query | V::Regex(_) | V::List(_)) => return Err(Fail),
        (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Num(x), V::Num(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        _ => false,
    })
}

fn member<'a>(target: V<'a>, key: &str) -> R<'a> {
    match target {
        V::Json(Value::Object(m)) => Ok(m.get(key).map_or(V::Null, json)),
        V::Json(Value::Array(items)) => Ok(key
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get(i))
            .map_or(V::Null, json)),
        V::Str(s) if key == "length" => Ok(V::Num(s.encode_utf16().count() as f64)),
        _ => Err(Fail),
    }
}

fn property<'a>(target: V<'a>, name: &str, env: &Env<'a>) -> R<'a> {
    let V::Query = target else {
        return member(target, name);
    };
    let q = env.query;
    let order = q.and_then(|q| q.order_by.as_ref());
    Ok(match name {
        "orderByKey" => V::Bool(order == Some(&OrderBy::Key)),
        "orderByValue" => V::Bool(order == Some(&OrderBy::Value)),
        "orderByPriority" => V::Bool(order == Some(&OrderBy::Priority)),
        "orderByChild" => match order {
            Some(OrderBy::Child(c)) => V::Str(Cow::Borrowed(c)),
            _ => V::Null,
        },
        "startAt" => q.map_or(V::Null, |q| opt_json(&q.start_at)),
        "endAt" => q.map_or(V::Null, |q| opt_json(&q.end_at)),
        "equalTo" => q.map_or(V::Null, |q| opt_json(&q.equal_to)),
        "limitToFirst" => q
            .and_then(|q| q.limit_to_first)
            .map_or(V::Null, |n| V::Num(n as f64)),
        "limitToLast" => q
            .and_then(|q| q.limit_to_last)
            .map_or(V::Null, |n| V::Num(n as f64)),
        _ => return Err(Fail),
    })
}

/// `a/b/` -> `["a", "b"]`.
fn child_path(p: &str) -> impl Iterator<Item = String> + '_ {
    p.split('/').filter(|s| !s.is_empty()).map(String::from)
}

fn call<'a>(target: V<'a>, m: Method, args: &'a [Expr], env: &Env<'a>) -> R<'a> {
    let arg = |i: usize| eval(&args[i], env);
    if let V::Snap { after, path } = target {
        let view: &'a dyn DataView = if after {
            env.after.ok_or(Fail)?
        } else {
            env.before
        };
        let exists_at = |extra: &str| {
            let mut p = path.clone();
            p.extend(child_path(extra));
            view.at(&p).is_some()
        };
        return Ok(match m {
            Method::Val => found(view.at(&path)),
            Method::Exists => V::Bool(view.at(&path).is_some()),
            Method::IsNumber => V::Bool(matches!(view.at(&path), Some(Found::Num(_)))),
            Method::IsString => V::Bool(matches!(view.at(&path), Some(Found::Str(_)))),
            Method::IsBoolean => V::Bool(matches!(view.at(&path), Some(Found::Bool(_)))),
            Method::GetPriority => found(view.priority(&path)),
            Method::Child => {
                let c = string(arg(0)?)?;
                let mut p = path;
                p.extend(child_path(&c));
                V::Snap { after, path: p }
            }
            Method::Parent => {
                let mut p = path;
                p.pop().ok_or(Fail)?;
                V::Snap { after, path: p }
            }
            Method::HasChild => V::Bool(exists_at(&string(arg(0)?)?)),
            Method::HasChildren if args.is_empty() => {
                V::Bool(matches!(view.at(&path), Some(Found::Object)))
            }
            Method::HasChildren => {
                let V::List(items) = arg(0)? else {
                    return Err(Fail);
                };
                let mut all = true;
                for item in items {
                    all = all && exists_at(&string(item)?);
                }
                V::Bool(all)
            }
            _ => return Err(Fail),
        });
    }
    let s = string(target)?;
    Ok(match m {
        Method::Contains => V::Bool(s.contains(&*string(arg(0)?)?)),
        Method::BeginsWith => V::Bool(s.starts_with(&*string(arg(0)?)?)),
        Method::EndsWith => V::Bool(s.ends_with(&*string(arg(0)?)?)),
        Method::Replace => {
            let (from, to) = (string(arg(0)?)?, string(arg(1)?)?);
            if from.is_empty() {
                V::Str(s)
            } else {
                V::Str(Cow::Owned(s.replace(&*from, &to)))
            }
        }
        Method::ToLowerCase => V::Str(Cow::Owned(s.to_lowercase())),
        Method::ToUpperCase => V::Str(Cow::Owned(s.to_uppercase())),
        Method::Matches => match arg(0)? {
            V::Regex(r) => V::Bool(r.is_match(&s)),
            _ => return Err(Fail),
        },
        _ => return Err(Fail),
    })
}
