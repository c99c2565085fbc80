//! Layering checks that read the sources (tests only).
//!
//! - Within `lock/`, `runner/` and `cli/` the files' `use` graph has no cycle: every file can be
//!   read knowing only the files below it.
//! - ARCHITECTURE.md's table of `lock/` lists its files bottom up, each with the files it uses.
//! - ARCHITECTURE.md's table under "Layers" lists what each top-level module uses (its shared
//!   helpers aside), so the layer diagram stays true.
//!
//! The graph has one node per file (`mod.rs` is its folder's module) and an edge A -> B when A
//! names something of B: `use super::b::X`, `super::b::f()`, `crate::lock::b::X`, in `mod.rs` a
//! child's path (`b::X`) or a name it re-exports from B, and any name reached through
//! `mod.rs`'s re-exports (`use super::X`, X defined in B) counts for B, the file that defines it.
//! `mod b;` and `mod.rs`'s `pub use` lines are not edges (they are the folder's facade, not a
//! dependency). Comments, string literals and `#[cfg(test)]` items are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The folders whose files must not form a cycle.
const CHECKED: &[&str] = &["lock", "runner", "cli"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Sep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other(char),
}

/// One file: its module path from the crate root and its tokens (with their lines).
struct Source {
    module: Vec<String>,
    toks: Vec<(Tok, usize)>,
}

/// The source without comments, string and char literals (newlines kept for line numbers).
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    while i < c.len() {
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        blank(&mut out, c[i]);
                        i += 1;
                    }
                }
            }
            'r' if (c.get(i + 1) == Some(&'"') || c.get(i + 1) == Some(&'#'))
                && !c
                    .get(i.wrapping_sub(1))
                    .is_some_and(|p| p.is_alphanumeric() || *p == '_') =>
            {
                // A raw string: r"..." or r#"..."#.
                let mut j = i + 1;
                let mut hashes = 0;
                while c.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if c.get(j) != Some(&'"') {
                    out.push(c[i]);
                    i += 1;
                    continue;
                }
                j += 1;
                while j < c.len() {
                    if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    blank(&mut out, c[j]);
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
            }
            '"' => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    if c[i] == '\\' {
                        i += 1;
                    }
                    if let Some(&ch) = c.get(i) {
                        blank(&mut out, ch);
                    }
                    i += 1;
                }
                out.push_str("\"\"");
                i += 1;
            }
            // A char literal ('x', '\n', '\u{..}'); a lifetime ('a) is kept.
            '\'' if c.get(i + 2) == Some(&'\'') && c.get(i + 1) != Some(&'\\') => {
                out.push_str("' '");
                i += 3;
            }
            '\'' if c.get(i + 1) == Some(&'\\') => {
                let mut j = i + 2;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::Sep, line));
            i += 2;
        } else {
            let t = match ch {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                '*' => Tok::Star,
                other => Tok::Other(other),
            };
            out.push((t, line));
            i += 1;
        }
    }
    out
}

/// The tokens without `#[cfg(test)]` items (a test module, function or import).
fn without_tests(toks: Vec<(Tok, usize)>) -> Vec<(Tok, usize)> {
    let is = |t: &[(Tok, usize)], i: usize, want: &Tok| t.get(i).is_some_and(|(x, _)| x == want);
    let ident = |s: &str| Tok::Ident(s.to_string());
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let attr = is(&toks, i, &Tok::Other('#'))
            && is(&toks, i + 1, &Tok::Other('['))
            && is(&toks, i + 2, &ident("cfg"))
            && is(&toks, i + 3, &Tok::Other('('))
            && is(&toks, i + 4, &ident("test"))
            && is(&toks, i + 5, &Tok::Other(')'))
            && is(&toks, i + 6, &Tok::Other(']'));
        if !attr {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        // Skip the item: up to its `;`, or to the end of its first `{ ... }` block.
        i += 7;
        let mut depth = 0;
        while i < toks.len() {
            match toks[i].0 {
                Tok::Semi if depth == 0 => {
                    i += 1;
                    break;
                }
                Tok::Open => depth += 1,
                Tok::Close => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    out
}

/// Every `.rs` file below `dir`, with its module path (`base` = the folder's).
fn sources(dir: &Path, base: &[String], out: &mut Vec<Source>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            let mut m = base.to_vec();
            m.push(stem);
            sources(&path, &m, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut module = base.to_vec();
            if stem != "mod" {
                module.push(stem);
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            out.push(Source {
                module,
                toks: without_tests(tokens(&strip(&text))),
            });
        }
    }
}

/// A `use` tree from `toks[*i]` (just after `use`) to its `;`: the paths it names, with the
/// name each one is known by in the file (its alias, or its last segment).
fn use_tree(
    toks: &[(Tok, usize)],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    match toks.get(*i).map(|t| &t.0) {
        Some(Tok::Open) => {
            *i += 1;
            loop {
                match toks.get(*i).map(|t| &t.0) {
                    Some(Tok::Close) => {
                        *i += 1;
                        return;
                    }
                    Some(Tok::Comma) => *i += 1,
                    None => return,
                    _ => use_tree(toks, i, prefix.clone(), out),
                }
            }
        }
        Some(Tok::Star) => {
            *i += 1;
            out.push((prefix, "*".into()));
        }
        Some(Tok::Ident(name)) => {
            *i += 1;
            let mut path = prefix;
            if name != "self" {
                path.push(name.clone());
            }
            if let Some(Tok::Sep) = toks.get(*i).map(|t| &t.0) {
                *i += 1;
                return use_tree(toks, i, path, out);
            }
            let mut known = path.last().cloned().unwrap_or_default();
            if let (Some(Tok::Ident(a)), Some(Tok::Ident(alias))) =
                (toks.get(*i).map(|t| &t.0), toks.get(*i + 1).map(|t| &t.0))
            {
                if a == "as" {
                    known = alias.clone();
                    *i += 2;
                }
            }
            out.push((path, known));
        }
        _ => *i += 1,
    }
}

/// `path` as written in module `scope` (where `children` are the modules it declares), from
/// the crate root; `None` for a path outside the crate (std, a dependency).
fn absolute(scope: &[String], children: &BTreeSet<String>, path: &[String]) -> Option<Vec<String>> {
    let first = path.first()?;
    let (mut at, rest) = match first.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (scope.to_vec(), &path[1..]),
        "super" => {
            let mut at = scope.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                at.pop();
                rest = &rest[1..];
            }
            (at, rest)
        }
        name if children.contains(name) => (scope.to_vec(), path),
        _ => return None,
    };
    at.extend(rest.iter().cloned());
    Some(at)
}

/// What the crate's files say about each other: where each module is, what each `mod.rs`
/// re-exports.
struct Crate {
    /// Module path -> index in `sources`.
    files: BTreeMap<Vec<String>, usize>,
    /// (module, name) -> the absolute path that module re-exports as `name`.
    reexports: BTreeMap<(Vec<String>, String), Vec<String>>,
    /// Module -> the modules it declares (`mod x;` and inline `mod x { }`).
    children: BTreeMap<Vec<String>, BTreeSet<String>>,
}

impl Crate {
    /// The file that defines what `path` names (following re-exports).
    fn file_of(&self, path: &[String]) -> Option<usize> {
        let mut path = path.to_vec();
        for _ in 0..16 {
            let (len, idx) = (0..=path.len())
                .rev()
                .find_map(|n| self.files.get(&path[..n]).map(|i| (n, *i)))?;
            let Some(name) = path.get(len) else {
                return Some(idx);
            };
            match self.reexports.get(&(path[..len].to_vec(), name.clone())) {
                Some(to) => {
                    let mut next = to.clone();
                    next.extend(path[len + 1..].iter().cloned());
                    path = next;
                }
                None => return Some(idx),
            }
        }
        None
    }
}

/// The names each `use` and path of `src` reaches, in its scopes: (absolute path, line).
/// `pub use` lines of a file that declares modules are its re-exports: returned apart.
#[allow(clippy::type_complexity)]
fn references(
    src: &Source,
    children: &BTreeMap<Vec<String>, BTreeSet<String>>,
) -> (
    Vec<(Vec<String>, usize)>,
    Vec<(Vec<String>, String, Vec<String>)>,
    Vec<(String, usize)>,
) {
    let toks = &src.toks;
    let mut refs = Vec::new();
    let mut reexports = Vec::new();
    let mut idents = Vec::new();
    // Inline modules: (scope, brace depth at which it ends).
    let mut scopes: Vec<(Vec<String>, usize)> = vec![(src.module.clone(), 0)];
    let mut depth = 0usize;
    let none = BTreeSet::new();
    let mut i = 0;
    while i < toks.len() {
        let scope = scopes.last().expect("scope").0.clone();
        let kids = children.get(&scope).unwrap_or(&none);
        let (tok, line) = (&toks[i].0, toks[i].1);
        match tok {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if scopes.len() > 1 && scopes.last().is_some_and(|s| s.1 == depth) {
                    scopes.pop();
                }
            }
            Tok::Ident(k) if k == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Open, _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    let mut inner = scope.clone();
                    inner.push(name.clone());
                    scopes.push((inner, depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
                i += 2;
                continue;
            }
            Tok::Ident(k) if k == "use" => {
                let public = i > 0
                    && (matches!(&toks[i - 1].0, Tok::Ident(p) if p == "pub")
                        || toks[i - 1].0 == Tok::Other(')'));
                let mut j = i + 1;
                let mut paths = Vec::new();
                use_tree(toks, &mut j, Vec::new(), &mut paths);
                for (path, known) in paths {
                    let Some(abs) = absolute(&scope, kids, &path) else {
                        continue;
                    };
                    if public && !kids.is_empty() {
                        reexports.push((scope.clone(), known, abs));
                    } else {
                        refs.push((abs, line));
                    }
                }
                i = j;
                continue;
            }
            Tok::Ident(first) => {
                let after_sep = i > 0 && toks[i - 1].0 == Tok::Sep;
                if !after_sep {
                    let mut path = vec![first.clone()];
                    let mut j = i + 1;
                    while toks.get(j).is_some_and(|t| t.0 == Tok::Sep) {
                        match toks.get(j + 1) {
                            Some((Tok::Ident(s), _)) => {
                                path.push(s.clone());
                                j += 2;
                            }
                            _ => break,
                        }
                    }
                    if path.len() > 1 {
                        if let Some(abs) = absolute(&scope, kids, &path) {
                            refs.push((abs, line));
                        }
                        i = j;
                        continue;
                    }
                    idents.push((first.clone(), line));
                }
            }
            _ => {}
        }
        i += 1;
    }
    (refs, reexports, idents)
}

/// The edges among the files of `root` (e.g. `["lock"]`): file -> (file it uses -> first line
/// that says so). Files by their path below `src/`.
fn graph(
    all: &[Source],
    krate: &Crate,
    root: &[String],
) -> BTreeMap<String, BTreeMap<String, usize>> {
    let name = |idx: usize| {
        let m = &all[idx].module;
        if m.len() == root.len() {
            "mod".to_string()
        } else {
            m[root.len()..].join("::")
        }
    };
    let mut edges: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (idx, src) in all.iter().enumerate() {
        if !src.module.starts_with(root) {
            continue;
        }
        let from = name(idx);
        edges.entry(from.clone()).or_default();
        let (refs, _, idents) = references(src, &krate.children);
        let mut reached: Vec<(Vec<String>, usize)> = refs;
        // In a file that re-exports: the re-exported names its own code uses.
        for (ident, line) in idents {
            if let Some(to) = krate.reexports.get(&(src.module.clone(), ident)) {
                reached.push((to.clone(), line));
            }
        }
        for (path, line) in reached {
            let Some(to) = krate.file_of(&path) else {
                continue;
            };
            if to == idx || !all[to].module.starts_with(root) {
                continue;
            }
            edges
                .get_mut(&from)
                .expect("node")
                .entry(name(to))
                .or_insert(line);
        }
    }
    edges
}

/// The cycles of `edges` (strongly connected components of more than one file).
fn cycles(edges: &BTreeMap<String, BTreeMap<String, usize>>) -> Vec<Vec<String>> {
    // Reachability by a depth-first search from each node (the graphs are small).
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for to in edges.get(&n).into_iter().flat_map(|m| m.keys()) {
                if seen.insert(to.clone()) {
                    stack.push(to.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in edges.keys() {
        if done.contains(n) || !reaches[n].contains(n) {
            continue;
        }
        let scc: Vec<String> = edges
            .keys()
            .filter(|m| reaches[n].contains(*m) && reaches[*m].contains(n))
            .cloned()
            .collect();
        done.extend(scc.iter().cloned());
        out.push(scc);
    }
    out
}

/// The files bottom up: each after every file it uses (ties by name, `mod` last).
fn order(edges: &BTreeMap<String, BTreeMap<String, usize>>) -> Vec<String> {
    let mut placed: Vec<String> = Vec::new();
    while placed.len() < edges.len() {
        // A folder's `mod.rs` as late as it can be (its re-exports are its top).
        let ready = |(n, uses): &(&String, &BTreeMap<String, usize>)| {
            !placed.contains(n) && uses.keys().all(|u| placed.contains(u))
        };
        let next = edges
            .iter()
            .filter(ready)
            .find(|(n, _)| n.as_str() != "mod")
            .or_else(|| edges.iter().find(ready));
        match next {
            Some((n, _)) => placed.push(n.clone()),
            None => break,
        }
    }
    placed
}

impl Crate {
    /// What `all` say about each other: where each module is, what each declares and
    /// re-exports.
    fn of(all: &[Source]) -> Crate {
        let files = all
            .iter()
            .enumerate()
            .map(|(i, s)| (s.module.clone(), i))
            .collect();
        // The modules each file declares (a first pass over `mod x;` and `mod x {`).
        let mut children: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
        for s in all {
            for w in s.toks.windows(2) {
                if let (Tok::Ident(k), Tok::Ident(name)) = (&w[0].0, &w[1].0) {
                    if k == "mod" {
                        children
                            .entry(s.module.clone())
                            .or_default()
                            .insert(name.clone());
                    }
                }
            }
        }
        let mut reexports = BTreeMap::new();
        for s in all {
            for (scope, name, to) in references(s, &children).1 {
                reexports.insert((scope, name), to);
            }
        }
        Crate {
            files,
            reexports,
            children,
        }
    }
}

fn load() -> (Vec<Source>, Crate) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    sources(&src, &[], &mut all);
    let krate = Crate::of(&all);
    (all, krate)
}

fn describe(edges: &BTreeMap<String, BTreeMap<String, usize>>, root: &str) -> String {
    let mut out = String::new();
    for (from, uses) in edges {
        let list: Vec<String> = uses
            .iter()
            .map(|(to, line)| format!("{to} (line {line})"))
            .collect();
        out.push_str(&format!(
            "  {root}/{from} -> {}\n",
            if list.is_empty() {
                "-".into()
            } else {
                list.join(", ")
            }
        ));
    }
    out
}

#[test]
fn lock_runner_and_cli_files_form_no_cycle() {
    let (all, krate) = load();
    let mut report = String::new();
    let mut found = Vec::new();
    for root in CHECKED {
        let edges = graph(&all, &krate, &[root.to_string()]);
        let cycles = cycles(&edges);
        report.push_str(&format!(
            "{root}/: {} files, {} edges; bottom up: {}\n",
            edges.len(),
            edges.values().map(BTreeMap::len).sum::<usize>(),
            if cycles.is_empty() {
                order(&edges).join(" < ")
            } else {
                "(cycles)".into()
            }
        ));
        for c in &cycles {
            let within: Vec<String> = c
                .iter()
                .flat_map(|from| {
                    edges[from]
                        .iter()
                        .filter(|(to, _)| c.contains(to))
                        .map(move |(to, line)| format!("{from}:{line} -> {to}"))
                })
                .collect();
            found.push(format!(
                "{root}/: {{{}}}: {}",
                c.join(", "),
                within.join("; ")
            ));
        }
        if std::env::var_os("LAYERING_EDGES").is_some() {
            report.push_str(&describe(&edges, root));
        }
    }
    println!("{report}");
    for f in &found {
        println!("cycle {f}");
    }
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n"));
}

/// ARCHITECTURE.md's table under the bullet that starts with `bullet`: (file, what it uses).
fn table(doc: &str, bullet: &str) -> Vec<(String, BTreeSet<String>)> {
    let names = |cell: &str| -> BTreeSet<String> {
        cell.split(',')
            .map(|n| n.trim().trim_matches('`').to_string())
            .filter(|n| !n.is_empty() && n != "—")
            .collect()
    };
    doc.lines()
        .skip_while(|l| !l.starts_with(bullet))
        .skip_while(|l| !l.trim_start().starts_with("| file |"))
        .skip(2)
        .take_while(|l| l.trim_start().starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim().splitn(4, '|').collect();
            (
                cells[1].trim().trim_matches('`').to_string(),
                names(cells[2]),
            )
        })
        .collect()
}

#[test]
fn architecture_lists_the_lock_files_bottom_up_with_what_they_use() {
    let (all, krate) = load();
    let edges = graph(&all, &krate, &["lock".to_string()]);
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .expect("read ARCHITECTURE.md");
    let rows = table(&doc, "- `lock` —");
    let listed: BTreeSet<&String> = rows.iter().map(|(n, _)| n).collect();
    let files: BTreeSet<&String> = edges.keys().collect();
    assert_eq!(
        listed, files,
        "ARCHITECTURE.md's table of lock/ lists every file once"
    );
    for (i, (file, uses)) in rows.iter().enumerate() {
        let actual: BTreeSet<String> = edges[file].keys().cloned().collect();
        assert_eq!(
            uses, &actual,
            "ARCHITECTURE.md's table of lock/: `{file}` uses {actual:?}"
        );
        let above: Vec<&String> = rows[..i].iter().map(|(n, _)| n).collect();
        for u in uses {
            assert!(
                above.contains(&u),
                "ARCHITECTURE.md's table of lock/: `{u}` must come before `{file}`, which uses it"
            );
        }
    }
}

/// The shared helpers ARCHITECTURE.md's layer table leaves out: every layer may use them, and they
/// use only each other.
const HELPERS: &[&str] = &[
    "error",
    "exit_status",
    "log",
    "time",
    "redact",
    "choice",
    "private_files",
];

/// What each top-level module of the crate uses: module -> (module it uses -> a file and line that
/// says so). The crate root (`lib.rs`) and the tests-only `layering` are left out.
fn top_level(all: &[Source], krate: &Crate) -> BTreeMap<String, BTreeMap<String, String>> {
    let top = |idx: usize| all[idx].module.first().cloned();
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (idx, src) in all.iter().enumerate() {
        let Some(from) = top(idx).filter(|m| m != "layering" && m != "lib") else {
            continue;
        };
        edges.entry(from.clone()).or_default();
        let (refs, _, idents) = references(src, &krate.children);
        let mut reached = refs;
        for (ident, line) in idents {
            if let Some(to) = krate.reexports.get(&(src.module.clone(), ident)) {
                reached.push((to.clone(), line));
            }
        }
        for (path, line) in reached {
            let Some(to) = krate.file_of(&path).and_then(top) else {
                continue;
            };
            if to != from {
                edges
                    .get_mut(&from)
                    .expect("node")
                    .entry(to)
                    .or_insert_with(|| format!("{}:{line}", src.module.join("::")));
            }
        }
    }
    edges
}

/// ARCHITECTURE.md's table whose header starts with `header` after the line starting with
/// `after`: (first cell, the backticked names of the second cell outside parentheses).
fn named_table(doc: &str, after: &str, header: &str) -> Vec<(String, BTreeSet<String>)> {
    let names = |cell: &str| -> BTreeSet<String> {
        let mut depth = 0usize;
        let mut plain = String::new();
        for ch in cell.chars() {
            match ch {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ if depth == 0 => plain.push(ch),
                _ => {}
            }
        }
        plain
            .split(',')
            .map(|n| n.trim().trim_matches('`').to_string())
            .filter(|n| !n.is_empty() && n != "—")
            .collect()
    };
    doc.lines()
        .skip_while(|l| !l.starts_with(after))
        .skip_while(|l| !l.trim_start().starts_with(header))
        .skip(2)
        .take_while(|l| l.trim_start().starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim().splitn(4, '|').collect();
            (
                cells[1].trim().trim_matches('`').to_string(),
                names(cells[2]),
            )
        })
        .collect()
}

#[test]
fn architecture_lists_what_each_top_level_module_uses() {
    let (all, krate) = load();
    let edges = top_level(&all, &krate);
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .expect("read ARCHITECTURE.md");
    let rows = named_table(&doc, "## Layers", "| module |");
    let helper = |m: &String| HELPERS.contains(&m.as_str());
    let layered: BTreeSet<&String> = edges.keys().filter(|m| !helper(m)).collect();
    let listed: BTreeSet<&String> = rows.iter().map(|(m, _)| m).collect();
    assert_eq!(
        listed, layered,
        "ARCHITECTURE.md's layer table lists every top-level module but the shared helpers once"
    );
    for (module, uses) in &rows {
        let actual: BTreeMap<&String, &String> =
            edges[module].iter().filter(|(m, _)| !helper(m)).collect();
        let actual_names: BTreeSet<String> = actual.keys().map(|m| m.to_string()).collect();
        assert_eq!(
            uses, &actual_names,
            "ARCHITECTURE.md's layer table: `{module}` uses {actual:?} (module: where)"
        );
    }
    for h in HELPERS {
        let h = h.to_string();
        let outside: Vec<&String> = edges[&h].keys().filter(|m| !helper(m)).collect();
        assert!(
            outside.is_empty(),
            "`{h}` is a shared helper but uses {outside:?}"
        );
    }
}

mod checks {
    use super::*;

    fn edges_of(files: &[(&str, &str)]) -> BTreeMap<String, BTreeMap<String, usize>> {
        let all: Vec<Source> = files
            .iter()
            .map(|(name, text)| {
                let mut module = vec!["x".to_string()];
                if *name != "mod" {
                    module.push(name.to_string());
                }
                Source {
                    module,
                    toks: without_tests(tokens(&strip(text))),
                }
            })
            .collect();
        let krate = Crate::of(&all);
        graph(&all, &krate, &["x".to_string()])
    }

    #[test]
    fn the_graph_sees_uses_paths_and_reexports_and_finds_the_cycle() {
        let edges = edges_of(&[
            ("mod", "pub mod a;\npub mod b;\npub mod c;\npub use a::Alpha;\npub struct Top { c: c::Gamma }\n"),
            ("a", "use super::b::{self, Beta};\n// use super::c::Gamma;\nconst S: &str = \"super::c::X\";\n"),
            ("b", "pub struct Beta;\nfn f() { super::c::g(); }\n#[cfg(test)]\nmod tests { use crate::x::a::Alpha; }\n"),
            ("c", "use super::Alpha;\npub struct Gamma;\n"),
        ]);
        let to = |n: &str| edges[n].keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            to("mod"),
            ["c"],
            "re-exports are not edges; a child's path is"
        );
        assert_eq!(to("a"), ["b"], "comments and strings are not edges");
        assert_eq!(to("b"), ["c"], "test modules are not edges");
        assert_eq!(to("c"), ["a"], "a re-exported name counts for its file");
        assert_eq!(cycles(&edges), vec![vec!["a", "b", "c"]]);
    }
}
