//! Rule expressions: a subset of JavaScript's expression syntax (operators with JavaScript's
//! precedence, `?:`, literals, `[...]` lists, `/regex/i` literals), parsed and checked when the
//! document is loaded, as the service does: unknown variables (`newData` in `.read`, `query`
//! outside `.read`, a `$name` no enclosing wildcard captures), unknown properties and methods of
//! snapshots, strings and `query`, wrong argument counts, and expressions that cannot be a
//! boolean are errors at load time, with their line and column.

/// Which rule an expression belongs to (what it may use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Read,
    Write,
    Validate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Var {
    Auth,
    Now,
    Root,
    Data,
    NewData,
    Query,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    // Snapshots.
    Val,
    Child,
    Parent,
    HasChild,
    HasChildren,
    Exists,
    GetPriority,
    IsNumber,
    IsString,
    IsBoolean,
    // Strings.
    Contains,
    BeginsWith,
    EndsWith,
    Replace,
    ToLowerCase,
    ToUpperCase,
    Matches,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug)]
pub(super) enum Expr {
    Null,
    Bool(bool),
    Num(f64),
    Str(Box<str>),
    Regex(Box<regex::Regex>),
    Array(Vec<Expr>),
    Var(Var),
    /// A `$wildcard`: its index among the wildcards from the root to the rule.
    Capture(usize),
    /// `x.name` (not a call).
    Prop(Box<Expr>, Box<str>),
    /// `x[e]`.
    Index(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Method, Vec<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// What an expression is known to produce before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Any,
    Bool,
    Num,
    Str,
    Null,
    Snap,
    Query,
    Regex,
    Array,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Any => "a value",
            Ty::Bool => "a boolean",
            Ty::Num => "a number",
            Ty::Str => "a string",
            Ty::Null => "null",
            Ty::Snap => "a snapshot",
            Ty::Query => "the query",
            Ty::Regex => "a regular expression",
            Ty::Array => "a list",
        }
    }
    /// Can never be an operand of arithmetic or a comparison.
    fn is_structural(self) -> bool {
        matches!(self, Ty::Snap | Ty::Query | Ty::Regex | Ty::Array)
    }
}

/// A parse error at a byte offset of the expression.
#[derive(Debug)]
pub(super) struct ExprError {
    pub offset: usize,
    pub message: String,
}

/// Parse and check one expression of a `kind` rule, with the wildcards in `scope` (names
/// including the `$`, from the root down).
pub(super) fn parse(src: &str, kind: Kind, scope: &[String]) -> Result<Expr, ExprError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        kind,
        scope,
        end: src.len(),
    };
    let (e, ty) = p.expr()?;
    if p.i < p.toks.len() {
        return Err(p.err_here(format!("Unexpected '{}'", p.toks[p.i].text(src))));
    }
    if !matches!(ty, Ty::Bool | Ty::Any) {
        return Err(ExprError {
            offset: 0,
            message: format!(
                "Expression must evaluate to a boolean (this one is {})",
                ty.name()
            ),
        });
    }
    Ok(e)
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum T {
    Num(f64),
    Str(String),
    Ident(String),
    Regex(String, String),
    Punct(&'static str),
}

#[derive(Debug, Clone)]
struct Tok {
    t: T,
    start: usize,
    end: usize,
}

impl Tok {
    fn text<'s>(&self, src: &'s str) -> &'s str {
        &src[self.start..self.end]
    }
}

const PUNCTS: [&str; 24] = [
    "===", "!==", "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!", "?",
    ":", ".", ",", "(", ")", "[", "]",
];

fn lex(src: &str) -> Result<Vec<Tok>, ExprError> {
    let b = src.as_bytes();
    let mut out: Vec<Tok> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        // A `/` starts a regular expression where an operand is expected.
        let operand_ended = out.last().is_some_and(|t| {
            matches!(t.t, T::Num(_) | T::Str(_) | T::Ident(_) | T::Regex(..))
                || t.t == T::Punct(")")
                || t.t == T::Punct("]")
        });
        let t = if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                i += 1;
                if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let n = src[start..i].parse::<f64>().map_err(|_| ExprError {
                offset: start,
                message: format!("Invalid number {}", &src[start..i]),
            })?;
            T::Num(n)
        } else if c == b'\'' || c == b'"' {
            let (s, end) = string(src, i)?;
            i = end;
            T::Str(s)
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            T::Ident(src[start..i].to_string())
        } else if c == b'/' && !operand_ended {
            let (pattern, flags, end) = regex_literal(src, i)?;
            i = end;
            T::Regex(pattern, flags)
        } else {
            let Some(p) = PUNCTS.iter().find(|p| src[i..].starts_with(**p)) else {
                let ch = src[i..].chars().next().expect("in bounds");
                return Err(ExprError {
                    offset: i,
                    message: format!("Unexpected '{ch}'"),
                });
            };
            i += p.len();
            T::Punct(p)
        };
        out.push(Tok { t, start, end: i });
    }
    Ok(out)
}

/// A quoted string starting at `start`: its value and the offset after it.
fn string(src: &str, start: usize) -> Result<(String, usize), ExprError> {
    let quote = src.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            c if c == quote => return Ok((out, start + 1 + off + 1)),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    '0' => '\0',
                    'u' => {
                        let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                        u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or(ExprError {
                                offset: start + 1 + off,
                                message: "Invalid \\u escape in a string".into(),
                            })?
                    }
                    other => other,
                });
            }
            c => out.push(c),
        }
    }
    Err(ExprError {
        offset: start,
        message: "Unterminated string".into(),
    })
}

/// `/pattern/flags` starting at `start`: the pattern, the flags and the offset after it.
fn regex_literal(src: &str, start: usize) -> Result<(String, String, usize), ExprError> {
    let b = src.as_bytes();
    let mut i = start + 1;
    let mut pattern = String::new();
    let mut in_class = false;
    loop {
        let Some(&c) = b.get(i) else {
            return Err(ExprError {
                offset: start,
                message: "Unterminated regular expression".into(),
            });
        };
        match c {
            b'\\' if b.get(i + 1) == Some(&b'/') => {
                pattern.push('/');
                i += 2;
                continue;
            }
            b'\\' => {
                let next = src[i + 1..].chars().next().ok_or(ExprError {
                    offset: start,
                    message: "Unterminated regular expression".into(),
                })?;
                pattern.push('\\');
                pattern.push(next);
                i += 1 + next.len_utf8();
                continue;
            }
            b'[' => in_class = true,
            b']' => in_class = false,
            b'/' if !in_class => break,
            _ => {}
        }
        let ch = src[i..].chars().next().expect("in bounds");
        pattern.push(ch);
        i += ch.len_utf8();
    }
    i += 1;
    let flags_start = i;
    while i < b.len() && b[i].is_ascii_alphabetic() {
        i += 1;
    }
    Ok((pattern, src[flags_start..i].to_string(), i))
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser<'a> {
    toks: Vec<Tok>,
    i: usize,
    kind: Kind,
    scope: &'a [String],
    end: usize,
}

type Parsed = Result<(Expr, Ty), ExprError>;

impl Parser<'_> {
    fn err_at(&self, offset: usize, message: impl Into<String>) -> ExprError {
        ExprError {
            offset,
            message: message.into(),
        }
    }
    fn err_here(&self, message: impl Into<String>) -> ExprError {
        let offset = self.toks.get(self.i).map_or(self.end, |t| t.start);
        self.err_at(offset, message)
    }
    fn offset(&self) -> usize {
        self.toks.get(self.i).map_or(self.end, |t| t.start)
    }
    fn is(&self, p: &str) -> bool {
        matches!(self.toks.get(self.i), Some(Tok { t: T::Punct(q), .. }) if *q == p)
    }
    fn eat(&mut self, p: &str) -> bool {
        let yes = self.is(p);
        if yes {
            self.i += 1;
        }
        yes
    }
    fn expect(&mut self, p: &str) -> Result<(), ExprError> {
        if self.eat(p) {
            Ok(())
        } else if self.i >= self.toks.len() {
            Err(self.err_here(format!("Expected '{p}' before the end of the expression")))
        } else {
            Err(self.err_here(format!("Expected '{p}'")))
        }
    }

    fn expr(&mut self) -> Parsed {
        let at = self.offset();
        let (c, cty) = self.or()?;
        if !self.eat("?") {
            return Ok((c, cty));
        }
        self.boolean(cty, at, "The condition of '?:'")?;
        let (a, aty) = self.expr()?;
        self.expect(":")?;
        let (b, bty) = self.expr()?;
        let ty = if aty == bty { aty } else { Ty::Any };
        Ok((Expr::Cond(Box::new(c), Box::new(a), Box::new(b)), ty))
    }

    fn boolean(&self, ty: Ty, at: usize, what: &str) -> Result<(), ExprError> {
        if matches!(ty, Ty::Bool | Ty::Any) {
            Ok(())
        } else {
            Err(self.err_at(at, format!("{what} must be a boolean, not {}", ty.name())))
        }
    }

    fn or(&mut self) -> Parsed {
        let at = self.offset();
        let (mut l, mut lty) = self.and()?;
        while self.eat("||") {
            let rat = self.offset();
            let (r, rty) = self.and()?;
            self.boolean(lty, at, "The left side of '||'")?;
            self.boolean(rty, rat, "The right side of '||'")?;
            l = Expr::Or(Box::new(l), Box::new(r));
            lty = Ty::Bool;
        }
        Ok((l, lty))
    }

    fn and(&mut self) -> Parsed {
        let at = self.offset();
        let (mut l, mut lty) = self.equality()?;
        while self.eat("&&") {
            let rat = self.offset();
            let (r, rty) = self.equality()?;
            self.boolean(lty, at, "The left side of '&&'")?;
            self.boolean(rty, rat, "The right side of '&&'")?;
            l = Expr::And(Box::new(l), Box::new(r));
            lty = Ty::Bool;
        }
        Ok((l, lty))
    }

    fn equality(&mut self) -> Parsed {
        let (mut l, mut lty) = self.relational()?;
        loop {
            let op_at = self.offset();
            let op = if self.eat("===") || self.eat("==") {
                Op::Eq
            } else if self.eat("!==") || self.eat("!=") {
                Op::Ne
            } else {
                return Ok((l, lty));
            };
            let (r, rty) = self.relational()?;
            if let Some(t) = [lty, rty].into_iter().find(|t| t.is_structural()) {
                let hint = if t == Ty::Snap {
                    " (compare its value: .val())"
                } else {
                    ""
                };
                return Err(self.err_at(op_at, format!("Cannot compare {}{hint}", t.name())));
            }
            l = Expr::Bin(op, Box::new(l), Box::new(r));
            lty = Ty::Bool;
        }
    }

    fn relational(&mut self) -> Parsed {
        let (mut l, mut lty) = self.additive()?;
        loop {
            let op_at = self.offset();
            let op = if self.eat("<=") {
                Op::Le
            } else if self.eat(">=") {
                Op::Ge
            } else if self.eat("<") {
                Op::Lt
            } else if self.eat(">") {
                Op::Gt
            } else {
                return Ok((l, lty));
            };
            let (r, rty) = self.additive()?;
            if let Some(t) = [lty, rty]
                .into_iter()
                .find(|t| !matches!(t, Ty::Any | Ty::Num | Ty::Str))
            {
                return Err(self.err_at(
                    op_at,
                    format!("Only numbers and strings can be ordered, not {}", t.name()),
                ));
            }
            l = Expr::Bin(op, Box::new(l), Box::new(r));
            lty = Ty::Bool;
        }
    }

    fn additive(&mut self) -> Parsed {
        let (mut l, mut lty) = self.multiplicative()?;
        loop {
            let op_at = self.offset();
            let op = if self.eat("+") {
                Op::Add
            } else if self.eat("-") {
                Op::Sub
            } else {
                return Ok((l, lty));
            };
            let (r, rty) = self.multiplicative()?;
            lty = self.arith(op, lty, rty, op_at)?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn multiplicative(&mut self) -> Parsed {
        let (mut l, mut lty) = self.unary()?;
        loop {
            let op_at = self.offset();
            let op = if self.eat("*") {
                Op::Mul
            } else if self.eat("/") {
                Op::Div
            } else if self.eat("%") {
                Op::Rem
            } else {
                return Ok((l, lty));
            };
            let (r, rty) = self.unary()?;
            lty = self.arith(op, lty, rty, op_at)?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    /// The type of `l op r` for arithmetic, or an error when it can never work.
    fn arith(&self, op: Op, l: Ty, r: Ty, at: usize) -> Result<Ty, ExprError> {
        let ok = |t: Ty| matches!(t, Ty::Any | Ty::Num) || (op == Op::Add && t == Ty::Str);
        if let Some(t) = [l, r].into_iter().find(|t| !ok(*t)) {
            let what = if op == Op::Add {
                "numbers or strings"
            } else {
                "numbers"
            };
            return Err(self.err_at(at, format!("Arithmetic needs {what}, not {}", t.name())));
        }
        Ok(match (l, r) {
            (Ty::Num, Ty::Num) => Ty::Num,
            (Ty::Str, _) | (_, Ty::Str) => Ty::Str,
            _ if op != Op::Add => Ty::Num,
            _ => Ty::Any,
        })
    }

    fn unary(&mut self) -> Parsed {
        let at = self.offset();
        if self.eat("!") {
            let (e, ty) = self.unary()?;
            self.boolean(ty, at, "The operand of '!'")?;
            return Ok((Expr::Not(Box::new(e)), Ty::Bool));
        }
        if self.eat("-") {
            let (e, ty) = self.unary()?;
            if !matches!(ty, Ty::Num | Ty::Any) {
                return Err(self.err_at(at, format!("Cannot negate {}", ty.name())));
            }
            return Ok((Expr::Neg(Box::new(e)), Ty::Num));
        }
        if self.eat("+") {
            let (e, ty) = self.unary()?;
            if !matches!(ty, Ty::Num | Ty::Any) {
                return Err(self.err_at(at, format!("Unary '+' needs a number, not {}", ty.name())));
            }
            return Ok((e, Ty::Num));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Parsed {
        let (mut e, mut ty) = self.primary()?;
        loop {
            if self.eat(".") {
                let at = self.offset();
                let Some(Tok {
                    t: T::Ident(name), ..
                }) = self.toks.get(self.i).cloned()
                else {
                    return Err(self.err_here("Expected a property or method name after '.'"));
                };
                self.i += 1;
                if self.is("(") {
                    let args_at = self.offset();
                    self.i += 1;
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.expr()?);
                            if self.eat(")") {
                                break;
                            }
                            self.expect(",")?;
                        }
                    }
                    let (m, out) = self.method(ty, &name, &args, at, args_at)?;
                    e = Expr::Call(Box::new(e), m, args.into_iter().map(|(a, _)| a).collect());
                    ty = out;
                } else {
                    ty = self.property(ty, &name, at)?;
                    e = Expr::Prop(Box::new(e), name.into());
                }
            } else if self.is("[") {
                let at = self.offset();
                self.i += 1;
                let (idx, ity) = self.expr()?;
                self.expect("]")?;
                if ty != Ty::Any {
                    return Err(self.err_at(at, format!("Cannot index {} with [...]", ty.name())));
                }
                if !matches!(ity, Ty::Any | Ty::Str | Ty::Num) {
                    return Err(self.err_at(
                        at,
                        format!("An index must be a string or a number, not {}", ity.name()),
                    ));
                }
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else if self.is("(") {
                return Err(self.err_here("Only methods can be called (e.g. data.val())"));
            } else {
                return Ok((e, ty));
            }
        }
    }

    fn property(&self, ty: Ty, name: &str, at: usize) -> Result<Ty, ExprError> {
        match ty {
            Ty::Any => Ok(Ty::Any),
            Ty::Str if name == "length" => Ok(Ty::Num),
            Ty::Query => match name {
                "orderByKey" | "orderByPriority" | "orderByValue" => Ok(Ty::Bool),
                "orderByChild" | "startAt" | "endAt" | "equalTo" | "limitToFirst"
                | "limitToLast" => Ok(Ty::Any),
                _ => Err(self.err_at(at, format!("No such property query.{name}"))),
            },
            Ty::Snap if method_named(name).is_some() => Err(self.err_at(
                at,
                format!("'{name}' is a method of a snapshot: call it, {name}()"),
            )),
            Ty::Str if method_named(name).is_some() => Err(self.err_at(
                at,
                format!("'{name}' is a method of a string: call it, {name}(...)"),
            )),
            _ => Err(self.err_at(at, format!("No such property '{name}' on {}", ty.name()))),
        }
    }

    fn method(
        &self,
        ty: Ty,
        name: &str,
        args: &[(Expr, Ty)],
        at: usize,
        args_at: usize,
    ) -> Result<(Method, Ty), ExprError> {
        let Some(m) = method_named(name) else {
            return Err(self.err_at(at, format!("No such method '{name}' on {}", ty.name())));
        };
        let on_snapshot = matches!(
            m,
            Method::Val
                | Method::Child
                | Method::Parent
                | Method::HasChild
                | Method::HasChildren
                | Method::Exists
                | Method::GetPriority
                | Method::IsNumber
                | Method::IsString
                | Method::IsBoolean
        );
        let fits = match ty {
            Ty::Snap => on_snapshot,
            Ty::Str | Ty::Any => !on_snapshot,
            _ => false,
        };
        if !fits {
            return Err(self.err_at(at, format!("No such method '{name}' on {}", ty.name())));
        }
        let (params, out): (&[Ty], Ty) = match m {
            Method::Val | Method::GetPriority => (&[], Ty::Any),
            Method::Child => (&[Ty::Str], Ty::Snap),
            Method::Parent => (&[], Ty::Snap),
            Method::HasChild => (&[Ty::Str], Ty::Bool),
            Method::HasChildren if args.is_empty() => (&[], Ty::Bool),
            Method::HasChildren => (&[Ty::Array], Ty::Bool),
            Method::Exists | Method::IsNumber | Method::IsString | Method::IsBoolean => {
                (&[], Ty::Bool)
            }
            Method::Contains | Method::BeginsWith | Method::EndsWith => (&[Ty::Str], Ty::Bool),
            Method::Replace => (&[Ty::Str, Ty::Str], Ty::Str),
            Method::ToLowerCase | Method::ToUpperCase => (&[], Ty::Str),
            Method::Matches => (&[Ty::Regex], Ty::Bool),
        };
        if args.len() != params.len() {
            return Err(self.err_at(
                args_at,
                format!(
                    "{name}() takes {} argument{}, not {}",
                    params.len(),
                    if params.len() == 1 { "" } else { "s" },
                    args.len()
                ),
            ));
        }
        for ((_, aty), want) in args.iter().zip(params) {
            let ok = *aty == *want || (*aty == Ty::Any && matches!(want, Ty::Str | Ty::Array));
            if !ok {
                return Err(self.err_at(
                    args_at,
                    format!("{name}() expects {}, not {}", want.name(), aty.name()),
                ));
            }
        }
        Ok((m, out))
    }

    fn primary(&mut self) -> Parsed {
        let at = self.offset();
        let Some(tok) = self.toks.get(self.i).cloned() else {
            return Err(self.err_here("Unexpected end of the expression"));
        };
        self.i += 1;
        match tok.t {
            T::Num(n) => Ok((Expr::Num(n), Ty::Num)),
            T::Str(s) => Ok((Expr::Str(s.into()), Ty::Str)),
            T::Regex(pattern, flags) => {
                let mut prefix = String::new();
                for f in flags.chars() {
                    match f {
                        'i' => prefix = "(?i)".into(),
                        other => {
                            return Err(self.err_at(
                                at,
                                format!("Unsupported regular expression flag '{other}' (only i)"),
                            ))
                        }
                    }
                }
                let re = regex::Regex::new(&format!("{prefix}{pattern}")).map_err(|e| {
                    let detail = e.to_string();
                    let last = detail.lines().last().unwrap_or("").trim().to_string();
                    self.err_at(
                        at,
                        format!("Invalid regular expression /{pattern}/: {last}"),
                    )
                })?;
                Ok((Expr::Regex(Box::new(re)), Ty::Regex))
            }
            T::Ident(name) => self.identifier(&name, at),
            T::Punct("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                Ok(inner)
            }
            T::Punct("[") => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        let (e, _) = self.expr()?;
                        items.push(e);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok((Expr::Array(items), Ty::Array))
            }
            T::Punct(p) => Err(self.err_at(at, format!("Unexpected '{p}'"))),
        }
    }

    fn identifier(&self, name: &str, at: usize) -> Parsed {
        let unknown = || self.err_at(at, format!("Unknown variable '{name}'."));
        let var = match name {
            "true" => return Ok((Expr::Bool(true), Ty::Bool)),
            "false" => return Ok((Expr::Bool(false), Ty::Bool)),
            "null" => return Ok((Expr::Null, Ty::Null)),
            "auth" => Var::Auth,
            "now" => Var::Now,
            "root" => Var::Root,
            "data" => Var::Data,
            "newData" if self.kind != Kind::Read => Var::NewData,
            "query" if self.kind == Kind::Read => Var::Query,
            n if n.starts_with('$') => {
                let i = self
                    .scope
                    .iter()
                    .rposition(|s| s == n)
                    .ok_or_else(unknown)?;
                return Ok((Expr::Capture(i), Ty::Str));
            }
            _ => return Err(unknown()),
        };
        let ty = match var {
            Var::Auth => Ty::Any,
            Var::Now => Ty::Num,
            Var::Query => Ty::Query,
            Var::Root | Var::Data | Var::NewData => Ty::Snap,
        };
        Ok((Expr::Var(var), ty))
    }
}

fn method_named(name: &str) -> Option<Method> {
    Some(match name {
        "val" => Method::Val,
        "child" => Method::Child,
        "parent" => Method::Parent,
        "hasChild" => Method::HasChild,
        "hasChildren" => Method::HasChildren,
        "exists" => Method::Exists,
        "getPriority" => Method::GetPriority,
        "isNumber" => Method::IsNumber,
        "isString" => Method::IsString,
        "isBoolean" => Method::IsBoolean,
        "contains" => Method::Contains,
        "beginsWith" => Method::BeginsWith,
        "endsWith" => Method::EndsWith,
        "replace" => Method::Replace,
        "toLowerCase" => Method::ToLowerCase,
        "toUpperCase" => Method::ToUpperCase,
        "matches" => Method::Matches,
        _ => return None,
    })
}
