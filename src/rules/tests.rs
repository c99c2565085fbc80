//! The rules language, construct by construct, with the results the Security Rules reference
//! documents for the Realtime Database. Each row: rules, data before, who asks, the operation,
//! and whether the service allows it.

use serde_json::{json, Value};

use super::*;
use crate::rtdb::order::{OrderBy, Query};

fn segs(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[allow(clippy::large_enum_variant)]
enum Op {
    Read(&'static str),
    Query(&'static str, Query),
    /// Writes: (path, new value; null deletes).
    Write(Vec<(&'static str, Value)>),
}

fn q(order: OrderBy) -> Query {
    Query {
        order_by: Some(order),
        ..Default::default()
    }
}

/// Run one case: does the service allow it?
fn allowed(rules: &Rules, data: &Value, auth: &Value, op: &Op) -> bool {
    let cx = Context {
        auth,
        now_ms: 1_700_000_000_000,
    };
    match op {
        Op::Read(p) => rules.can_read(&cx, data, &segs(p), None),
        Op::Query(p, query) => rules.can_read(&cx, data, &segs(p), Some(query)),
        Op::Write(ws) => {
            let paths: Vec<Vec<String>> = ws.iter().map(|(p, _)| segs(p)).collect();
            let writes: Vec<Write<'_>> = paths
                .iter()
                .zip(ws)
                .map(|(p, (_, v))| (&p[..], (!v.is_null()).then_some(v as &dyn DataView)))
                .collect();
            rules.check_write(&cx, data, &writes).is_ok()
        }
    }
}

fn w(p: &'static str, v: Value) -> Op {
    Op::Write(vec![(p, v)])
}

#[test]
fn the_language_construct_by_construct() {
    let u1 = json!({"uid": "u1", "token": {"admin": true, "email": "Ann@Example.com"}});
    let anon = Value::Null;
    let data = json!({
        "users": {"u1": {"name": "Ann", "age": 30}, "u2": {"name": "Bob", "age": 17}},
        "admins": {"u1": true},
        "counter": 5,
        "locked": {"a": 1},
    });
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, &Value, Op, bool)> = vec![
        // .read / .write literals and strings.
        ("read true", r#"{".read": true}"#, &anon, Op::Read("users"), true),
        ("read false", r#"{".read": false}"#, &u1, Op::Read("users"), false),
        ("read as a string", r#"{".read": "true"}"#, &anon, Op::Read("x"), true),
        ("no rule: denied", r#"{}"#, &u1, Op::Read(""), false),
        ("no rule: write denied", r#"{}"#, &u1, w("a", json!(1)), false),
        // Cascading: granted above cannot be revoked below; granted below does not grant above.
        ("read cascades down", r#"{"users": {".read": true, "u1": {".read": false}}}"#, &anon, Op::Read("users/u1/name"), true),
        ("read below does not grant above", r#"{"users": {"u1": {".read": true}}}"#, &anon, Op::Read("users"), false),
        ("write cascades down", r#"{"users": {".write": true, "$uid": {".write": false}}}"#, &anon, w("users/u1/name", json!("x")), true),
        ("write below does not grant above", r#"{"users": {"$uid": {".write": true}}}"#, &anon, w("users", json!({"u1": {}})), false),
        ("rules below a write are not consulted", r#"{".write": "false", "a": {"b": {".write": true}}}"#, &anon, w("a", json!({"b": 1})), false),
        // $wildcards capture the key; literal keys win over the wildcard.
        ("own record", r#"{"users": {"$uid": {".write": "auth.uid === $uid"}}}"#, &u1, w("users/u1", json!({"name": "A"})), true),
        ("someone else's record", r#"{"users": {"$uid": {".write": "auth.uid === $uid"}}}"#, &u1, w("users/u2", json!({"name": "A"})), false),
        ("nested captures", r#"{"$a": {"$b": {".read": "$a + '/' + $b === 'users/u1'"}}}"#, &anon, Op::Read("users/u1"), true),
        ("literal key beats the wildcard", r#"{"users": {"u1": {".write": false}, "$uid": {".write": true}}}"#, &u1, w("users/u1", json!(1)), false),
        ("wildcard for the other keys", r#"{"users": {"u1": {".write": false}, "$uid": {".write": true}}}"#, &u1, w("users/u9", json!(1)), true),
        // auth.
        ("auth null is unauthenticated", r#"{".read": "auth != null"}"#, &anon, Op::Read(""), false),
        ("auth present", r#"{".read": "auth != null"}"#, &u1, Op::Read(""), true),
        ("a property of null auth fails the rule", r#"{".read": "auth.uid !== 'x'"}"#, &anon, Op::Read(""), false),
        ("token claims", r#"{".read": "auth.token.admin === true"}"#, &u1, Op::Read(""), true),
        ("a missing claim is null", r#"{".read": "auth.token.missing === null"}"#, &u1, Op::Read(""), true),
        ("bracket access", r#"{".read": "auth['token']['admin'] == true"}"#, &u1, Op::Read(""), true),
        // now, root, data, newData.
        ("now", r#"{".write": true, "t": {".validate": "newData.val() <= now"}}"#, &u1, w("t", json!(1_600_000_000_000_i64)), true),
        ("now: the future", r#"{".write": true, "t": {".validate": "newData.val() <= now"}}"#, &u1, w("t", json!(1_800_000_000_000_i64)), false),
        ("root", r#"{".write": "root.child('admins/' + auth.uid).val() === true"}"#, &u1, w("x", json!(1)), true),
        ("data: write once", r#"{"locked": {"$k": {".write": "!data.exists()"}}}"#, &u1, w("locked/a", json!(2)), false),
        ("data: write once, new key", r#"{"locked": {"$k": {".write": "!data.exists()"}}}"#, &u1, w("locked/b", json!(2)), true),
        ("newData: increment by one", r#"{"counter": {".write": "newData.val() === data.val() + 1"}}"#, &u1, w("counter", json!(6)), true),
        ("newData: not by two", r#"{"counter": {".write": "newData.val() === data.val() + 1"}}"#, &u1, w("counter", json!(7)), false),
        ("newData in .write of a delete", r#"{"users": {"$uid": {".write": "!newData.exists()"}}}"#, &u1, w("users/u2", Value::Null), true),
        // .validate: every one on the way and inside the data; not cascading; not on deletes.
        ("validate holds", r#"{".write": true, "users": {"$uid": {".validate": "newData.hasChildren(['name', 'age'])"}}}"#, &u1, w("users/u3", json!({"name": "C", "age": 3})), true),
        ("validate fails", r#"{".write": true, "users": {"$uid": {".validate": "newData.hasChildren(['name', 'age'])"}}}"#, &u1, w("users/u3", json!({"name": "C"})), false),
        ("validate of a parent sees the merged result", r#"{".write": true, "users": {"$uid": {".validate": "newData.hasChildren(['name', 'age'])"}}}"#, &u1, w("users/u1/age", json!(31)), true),
        ("validate of a parent: removing a required child", r#"{".write": true, "users": {"$uid": {".validate": "newData.hasChildren(['name', 'age'])"}}}"#, &u1, w("users/u1/age", Value::Null), false),
        ("validate inside the written data", r#"{".write": true, "users": {"$uid": {"age": {".validate": "newData.isNumber()"}}}}"#, &u1, w("users", json!({"u5": {"age": "old"}})), false),
        ("validate does not cascade", r#"{".write": true, "a": {".validate": "newData.hasChildren()", "b": {"c": {".validate": true}}}}"#, &u1, w("a/b/c", json!(1)), true),
        ("validate false blocks a write", r#"{".write": true, "a": {".validate": false}}"#, &u1, w("a", json!(1)), false),
        ("validate is not applied to deletes", r#"{".write": true, "locked": {".validate": false}}"#, &u1, w("locked", Value::Null), true),
        ("other children refused by $other", r#"{".write": true, "p": {"name": {".validate": true}, "$other": {".validate": false}}}"#, &u1, w("p", json!({"name": "x", "extra": 1})), false),
        ("only known children", r#"{".write": true, "p": {"name": {".validate": true}, "$other": {".validate": false}}}"#, &u1, w("p", json!({"name": "x"})), true),
        ("validate does not grant", r#"{"a": {".validate": true}}"#, &u1, w("a", json!(1)), false),
        // Multi-path writes: refused whole; newData is the whole write.
        ("multi-path: all allowed", r#"{"users": {"$uid": {".write": "auth.uid === $uid"}}}"#, &u1, Op::Write(vec![("users/u1/a", json!(1)), ("users/u1/b", json!(2))]), true),
        ("multi-path: one denied", r#"{"users": {"$uid": {".write": "auth.uid === $uid"}}}"#, &u1, Op::Write(vec![("users/u1/a", json!(1)), ("users/u2/a", json!(2))]), false),
        ("multi-path: one invalid", r#"{".write": true, "n": {"$k": {".validate": "newData.isNumber()"}}}"#, &u1, Op::Write(vec![("n/a", json!(1)), ("n/b", json!("x"))]), false),
        ("multi-path: newData is the whole write", r#"{".write": true, "p": {".validate": "newData.hasChildren(['x', 'y'])"}}"#, &u1, Op::Write(vec![("p/x", json!(1)), ("p/y", json!(2))]), true),
        ("multi-path: sibling seen by a rule", r#"{"p": {"x": {".write": "newData.parent().child('y').val() === 2"}}}"#, &u1, Op::Write(vec![("p/x", json!(1)), ("p/y", json!(2))]), false),
        ("multi-path: sibling seen, both writable", r#"{"p": {"$k": {".write": "newData.parent().child('y').val() === 2"}}}"#, &u1, Op::Write(vec![("p/x", json!(1)), ("p/y", json!(2))]), true),
        // query.
        ("query.orderByKey and a limit", r#"{"users": {".read": "query.orderByKey && query.limitToFirst <= 2"}}"#, &u1, Op::Query("users", Query { limit_to_first: Some(2), ..q(OrderBy::Key) }), true),
        ("query: limit too high", r#"{"users": {".read": "query.orderByKey && query.limitToFirst <= 2"}}"#, &u1, Op::Query("users", Query { limit_to_first: Some(3), ..q(OrderBy::Key) }), false),
        ("query: no query", r#"{"users": {".read": "query.orderByKey"}}"#, &u1, Op::Read("users"), false),
        ("query.orderByChild", r#"{"users": {".read": "query.orderByChild === 'age' && query.startAt === 18 && query.endAt === null"}}"#, &u1, Op::Query("users", Query { start_at: Some(json!(18)), ..q(OrderBy::Child("age".into())) }), true),
        ("query.equalTo", r#"{"users": {".read": "query.equalTo === auth.uid"}}"#, &u1, Op::Query("users", Query { equal_to: Some(json!("u1")), ..q(OrderBy::Child("owner".into())) }), true),
        ("query.limitToLast", r#"{"users": {".read": "query.limitToLast === 1 && query.limitToFirst === null"}}"#, &u1, Op::Query("users", Query { limit_to_last: Some(1), ..q(OrderBy::Key) }), true),
        ("query.orderByValue / orderByPriority", r#"{".read": "query.orderByValue && !query.orderByPriority && !query.orderByKey"}"#, &u1, Op::Query("", q(OrderBy::Value)), true),
        // Snapshot methods.
        ("val", r#"{".read": "data.child('users/u1/name').val() === 'Ann'"}"#, &u1, Op::Read(""), true),
        ("val of an object equals nothing", r#"{".read": "root.child('users').val() != null && root.child('users').val() != root.child('users').val()"}"#, &u1, Op::Read(""), true),
        ("val of nothing is null", r#"{".read": "data.child('nope').val() === null"}"#, &u1, Op::Read(""), true),
        ("child with a path", r#"{".read": "data.child('users').child('u2/age').val() === 17"}"#, &u1, Op::Read(""), true),
        ("parent", r#"{"users": {"$uid": {".read": "data.parent().parent().child('admins').hasChild($uid)"}}}"#, &u1, Op::Read("users/u1"), true),
        ("parent of the root fails", r#"{".read": "data.parent().exists() || true"}"#, &u1, Op::Read(""), false),
        ("hasChild", r#"{".read": "data.hasChild('users/u2')"}"#, &u1, Op::Read(""), true),
        ("hasChildren()", r#"{".read": "data.child('users').hasChildren() && !data.child('counter').hasChildren()"}"#, &u1, Op::Read(""), true),
        ("hasChildren([...])", r#"{".read": "data.child('users/u1').hasChildren(['name', 'age']) && !data.child('users/u1').hasChildren(['name', 'x'])"}"#, &u1, Op::Read(""), true),
        ("exists", r#"{".read": "data.child('counter').exists() && !data.child('x').exists()"}"#, &u1, Op::Read(""), true),
        ("getPriority without a priority", r#"{".read": "data.getPriority() === null"}"#, &u1, Op::Read(""), true),
        ("isNumber / isString / isBoolean", r#"{".read": "data.child('counter').isNumber() && data.child('users/u1/name').isString() && data.child('admins/u1').isBoolean() && !data.child('users').isString()"}"#, &u1, Op::Read(""), true),
        // Strings.
        ("length", r#"{".read": "auth.uid.length === 2 && 'héllo'.length === 5"}"#, &u1, Op::Read(""), true),
        ("contains / beginsWith / endsWith", r#"{".read": "auth.token.email.contains('@') && auth.token.email.beginsWith('Ann') && auth.token.email.endsWith('.com')"}"#, &u1, Op::Read(""), true),
        ("replace replaces every instance", r#"{".read": "'a.b.c'.replace('.', ',') === 'a,b,c'"}"#, &u1, Op::Read(""), true),
        ("toLowerCase / toUpperCase", r#"{".read": "auth.token.email.toLowerCase() === 'ann@example.com' && 'x'.toUpperCase() === 'X'"}"#, &u1, Op::Read(""), true),
        ("matches", r#"{".read": "auth.uid.matches(/^u[0-9]+$/) && !auth.uid.matches(/^x/)"}"#, &u1, Op::Read(""), true),
        ("matches: unanchored, i flag", r#"{".read": "'xABy'.matches(/ab/i) && !'xABy'.matches(/ab/)"}"#, &u1, Op::Read(""), true),
        ("matches: \\d and escaped /", r#"{".read": "'a/1'.matches(/^a\\/\\d$/)"}"#, &u1, Op::Read(""), true),
        ("a string method on a number fails", r#"{".read": "data.child('counter').val().contains('5')"}"#, &u1, Op::Read(""), false),
        // Operators: JavaScript precedence, strict equality.
        ("* before +", r#"{".read": "1 + 2 * 3 === 7"}"#, &u1, Op::Read(""), true),
        ("parentheses", r#"{".read": "(1 + 2) * 3 === 9"}"#, &u1, Op::Read(""), true),
        ("&& before ||", r#"{".read": "true || false && false"}"#, &u1, Op::Read(""), true),
        ("! binds tightest", r#"{".read": "!false && !(1 > 2)"}"#, &u1, Op::Read(""), true),
        ("?:", r#"{".read": "auth == null ? false : auth.uid === 'u1'"}"#, &u1, Op::Read(""), true),
        ("- and % and /", r#"{".read": "-(7 % 4) === 1 - 4 && 9 / 2 === 4.5"}"#, &u1, Op::Read(""), true),
        ("== is strict", r#"{".read": "'5' == 5"}"#, &u1, Op::Read(""), false),
        ("!= across types", r#"{".read": "'5' != 5 && null !== false"}"#, &u1, Op::Read(""), true),
        ("+ concatenates strings", r#"{".read": "'u' + 1 === 'u1' && 'a' + 'b' === 'ab'"}"#, &u1, Op::Read(""), true),
        ("strings order", r#"{".read": "'apple' < 'banana' && 'b' >= 'b'"}"#, &u1, Op::Read(""), true),
        ("ordering a string against a number fails", r#"{".read": "'a' < 1 || true"}"#, &u1, Op::Read(""), false),
        ("a non-boolean result does not grant", r#"{".read": "auth.uid"}"#, &u1, Op::Read(""), false),
    ];
    let mut failures = Vec::new();
    for (name, rules, auth, op, expected) in &cases {
        let doc = format!("{{\"rules\": {rules}}}");
        let parsed = Rules::parse(&doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        if allowed(&parsed, &data, auth, op) != *expected {
            failures.push(format!(
                "{name}: expected {}",
                if *expected { "allowed" } else { "denied" }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn which_validate_fails() {
    let rules = Rules::parse(
        r#"{"rules": {".write": true, "users": {"$uid": {
            "age": {".validate": "newData.isNumber() && newData.val() >= 0"}}}}}"#,
    )
    .unwrap();
    let before = json!({});
    let path = segs("users/u1");
    let bad = json!({"age": -1});
    let cx = Context {
        auth: &Value::Null,
        now_ms: 0,
    };
    let e = rules
        .check_write(&cx, &before, &[(&path[..], Some(&bad as &dyn DataView))])
        .unwrap_err();
    assert_eq!(
        e,
        Denial::Invalid {
            path: "users/u1/age".into(),
            rule: "newData.isNumber() && newData.val() >= 0".into(),
            pos: Pos {
                line: 2,
                column: 34
            },
        }
    );
    let denied = Rules::parse(r#"{"rules": {"a": {".write": false}}}"#)
        .unwrap()
        .check_write(&cx, &before, &[(&path[..], None)])
        .unwrap_err();
    assert_eq!(
        denied,
        Denial::NotAllowed {
            path: "users/u1".into()
        }
    );
    assert_eq!(
        denied.to_string(),
        "Permission denied: no .write rule allows writing /users/u1"
    );
}

#[test]
fn indexes() {
    let rules = Rules::parse(
        r#"{"rules": {
            "users": {".indexOn": ["email", "profile/age"]},
            "scores": {".indexOn": ".value"},
            "rooms": {"$room": {".indexOn": "ts"}}
        }}"#,
    )
    .unwrap();
    let child = |c: &str| OrderBy::Child(c.into());
    for (path, order) in [
        ("users", child("email")),
        ("users", child("/profile/age/")),
        ("scores", OrderBy::Value),
        ("rooms/r1", child("ts")),
        ("anything", OrderBy::Key),
        ("anything", OrderBy::Priority),
    ] {
        assert_eq!(
            rules.missing_index(&segs(path), &order),
            None,
            "{path} {order:?}"
        );
    }
    assert_eq!(
        rules.missing_index(&segs("users"), &child("name")).unwrap(),
        "Index not defined, add \".indexOn\": \"name\", for path \"/users\", to the rules"
    );
    assert_eq!(
        rules
            .missing_index(&segs("users"), &OrderBy::Value)
            .unwrap(),
        "Index not defined, add \".indexOn\": \".value\", for path \"/users\", to the rules"
    );
    assert_eq!(
        rules.missing_index(&[], &child("a/b")).unwrap(),
        "Index not defined, add \".indexOn\": \"a/b\", for path \"/\", to the rules"
    );
    assert!(rules
        .missing_index(&segs("rooms/r1/x"), &child("ts"))
        .is_some());
}

#[test]
fn documents_that_do_not_load() {
    #[rustfmt::skip]
    let cases = [
        ("{\"rules\": {\".read\": \"foo\"}}", "1:22: Unknown variable 'foo'."),
        ("{\"rules\": {\".read\": \"newData.exists()\"}}", "1:22: Unknown variable 'newData'."),
        ("{\"rules\": {\".write\": \"query.orderByKey\"}}", "1:23: Unknown variable 'query'."),
        ("{\"rules\": {\"a\": {\".read\": \"$uid === 'x'\"}}}", "1:28: Unknown variable '$uid'."),
        ("{\"rules\": {\"$a\": {}, \"$b\": {}}}", "1:22: Two wildcards at one level (\"$a\" and \"$b\"); a location can have only one"),
        ("{\"rules\": {\".read\": \"data.vall()\"}}", "1:27: No such method 'vall' on a snapshot"),
        ("{\"rules\": {\".read\": \"data.val\"}}", "1:27: 'val' is a method of a snapshot: call it, val()"),
        ("{\"rules\": {\".read\": \"data == null\"}}", "1:27: Cannot compare a snapshot (compare its value: .val())"),
        ("{\"rules\": {\".read\": \"auth.uid.matches('x')\"}}", "1:38: matches() expects a regular expression, not a string"),
        ("{\"rules\": {\".read\": \"'a'.matches(/a/g)\"}}", "1:34: Unsupported regular expression flag 'g' (only i)"),
        ("{\"rules\": {\".read\": \"1 + 1\"}}", "1:22: Expression must evaluate to a boolean (this one is a number)"),
        ("{\"rules\": {\".read\": \"auth != null &&\"}}", "1:37: Unexpected end of the expression"),
        ("{\"rules\": {\".read\": \"(auth != null\"}}", "1:35: Expected ')' before the end of the expression"),
        ("{\"rules\": {\".read\": 1}}", "1:21: \".read\" must be true, false or a string holding an expression"),
        ("{\"rules\": {\".reed\": true}}", "1:12: Unknown rule \".reed\" (rules are .read, .write, .validate and .indexOn)"),
        ("{\"rules\": {\"a#b\": {}}}", "1:12: Invalid key \"a#b\": contains '#'; keys cannot contain . $ # [ ] or /"),
        ("{\"rules\": {\".indexOn\": [1]}}", "1:25: .indexOn must be a child path or \".value\", or a list of them"),
        ("{\"rule\": {}}", "1:2: Unknown top-level key \"rule\": a rules document holds only \"rules\""),
        ("{}", "1:2: Expected 'rules' property."),
        ("{\"rules\": {\n  \".read\": true,\n  \".write\": true\n  \"x\": {}\n}}", "4:3: Expected ',' or '}' after a property value"),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(doc, want)| match Rules::parse(doc) {
            Ok(_) => Some(format!("{doc}: parsed")),
            Err(e) if e.to_string() == *want => None,
            Err(e) => Some(format!("{doc}: {e}")),
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_text_is_kept_and_strict_json_drops_comments() {
    let text = "{\n  // who may read\n  \"rules\": {\".read\": true /* everyone */}\n}\n";
    let r = Rules::parse(text).unwrap();
    assert_eq!(r.text(), text);
    assert_eq!(r.strict(), &json!({"rules": {".read": true}}));
    let open = Rules::parse(OPEN_RULES).unwrap();
    assert!(open.can_read(
        &Context {
            auth: &Value::Null,
            now_ms: 0
        },
        &json!(null),
        &[],
        None
    ));
}
