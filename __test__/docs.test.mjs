// The documentation as a reader follows it: every relative link in README.md, ARCHITECTURE.md,
// CHANGELOG.md and docs/*.md leads to a file of the repository (and to a heading there when it names
// one); every file, function and test docs/lock-properties.md names exists; no file of the
// repository cites a path outside it. Reads files only: no addon needed.
import test from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'

const ROOT = path.join(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..')

const DOCS = [
  'README.md',
  'ARCHITECTURE.md',
  'CHANGELOG.md',
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

/** The text outside fenced code blocks (and, unless `keepCode`, inline code): where a link is a link. */
function prose(text, keepCode = false) {
  const outside = text.split(/^```.*$[\s\S]*?^```\s*$/m).join('\n')
  return keepCode ? outside : outside.replace(/`[^`\n]*`/g, '``')
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(file) {
  const seen = new Map()
  const out = new Set()
  for (const [, title] of prose(fs.readFileSync(file, 'utf8'), true).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = title
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n ? `${base}-${n}` : base)
  }
  return out
}

/** Every inline link and image target of a Markdown file: { target, line }. */
function links(file) {
  const text = prose(fs.readFileSync(file, 'utf8'))
  const found = []
  for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    found.push({ target: m[1], line: text.slice(0, m.index).split('\n').length })
  }
  return found
}

test('every relative link in the README and docs/ resolves, to the heading it names', () => {
  const broken = []
  let checked = 0
  for (const doc of DOCS) {
    const from = path.join(ROOT, doc)
    for (const { target } of links(from)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto:: not ours to check offline
      checked++
      const [file, anchor] = target.split('#')
      const to = file ? path.resolve(path.dirname(from), decodeURIComponent(file)) : from
      if (!to.startsWith(ROOT + path.sep) && to !== ROOT) broken.push(`${doc}: ${target} leaves the repository`)
      else if (!fs.existsSync(to)) broken.push(`${doc}: ${target} (no such file)`)
      else if (anchor && to.endsWith('.md') && !anchors(to).has(anchor)) broken.push(`${doc}: ${target} (no heading #${anchor} in ${path.relative(ROOT, to)})`)
    }
  }
  assert.deepEqual(broken, [], 'broken links')
  assert.ok(checked > 40, `the links were found (${checked})`)
})

test('the README is a front door: short, and every manual page is linked from it', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const lines = readme.split('\n').length
  assert.ok(lines <= 260, `README.md has ${lines} lines: move the detail into docs/`)
  const linked = new Set(links(path.join(ROOT, 'README.md')).map(({ target }) => target.split('#')[0]))
  const pages = DOCS.filter((d) => d.startsWith('docs/') && d !== 'docs/README.md')
  assert.deepEqual(
    pages.filter((p) => !linked.has(p)),
    [],
    'docs pages the README does not link',
  )
})

/**
 * The citations of docs/lock-properties.md: each "**Kept by.**" / "**Proved by.**" paragraph is a list
 * of `file`: `name`, `name` groups separated by ";" (code spans inside parentheses are prose).
 */
function citations(text) {
  const out = []
  for (const para of text.split(/\n\s*\n/)) {
    const m = para.match(/^\*\*(Kept|Proved) by\.\*\*\s+([\s\S]*)$/)
    if (!m) continue
    const parts = m[2].replace(/\s*\n\s*/g, ' ').split('`')
    let depth = 0
    let group = null
    parts.forEach((part, i) => {
      if (i % 2 === 0) {
        for (const ch of part) {
          if (ch === '(') depth++
          else if (ch === ')') depth--
          else if (ch === ';' && depth === 0) group = null
        }
      } else if (depth === 0) {
        if (group === null) out.push((group = { kind: m[1], file: part, names: [] }))
        else group.names.push(part)
      }
    })
  }
  return out
}

test('docs/lock-properties.md: every file, function and test it names exists', () => {
  const text = fs.readFileSync(path.join(ROOT, 'docs', 'lock-properties.md'), 'utf8')
  const cited = citations(text)
  const missing = []
  for (const { kind, file, names } of cited) {
    const at = path.join(ROOT, file)
    if (!fs.existsSync(at)) {
      missing.push(`${file} (no such file)`)
      continue
    }
    const source = fs.readFileSync(at, 'utf8').replace(/\s*\n\s*/g, ' ')
    for (const name of names) {
      const found = /^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)?$/.test(name)
        ? name.split('::').every((id) => new RegExp(`\\b${id}\\b`).test(source)) && (!name.includes('::') || new RegExp(`fn ${name.split('::')[1]}\\b`).test(source))
        : source.includes(name)
      if (!found) missing.push(`${file}: ${name} (${kind.toLowerCase()} by)`)
    }
  }
  assert.deepEqual(missing, [], 'cited but not found')
  assert.ok(cited.filter((c) => c.kind === 'Proved').length >= 18, 'every property cites its tests')
  for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) assert.match(text, new RegExp(`^## L${n} `, 'm'), `L${n} is on the page`)
})

test('no file of the repository cites a path outside it', () => {
  // The project's files stand alone: a reader has no copy of the team's notes or specifications.
  const outside = [
    ['shared', 'spec'].join('/'),
    ['shared', 'seed'].join('/'),
    ['..', 'shared'].join('/'),
    ...['rtdb-rest', 'product', 'upstream-behaviour', 'napi-notes'].map((n) => `${n}.md`),
  ]
  const roots = ['src', 'tests', 'lib', 'napi', 'bench', 'scripts', 'docs', 'bin', 'examples', 'demo', '__test__', '.github']
  const files = []
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'target' || entry.name.endsWith('.node')) continue
      const p = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(p)
      else files.push(p)
    }
  }
  for (const r of roots) if (fs.existsSync(path.join(ROOT, r))) walk(path.join(ROOT, r))
  for (const f of fs.readdirSync(ROOT)) if (/\.(md|js|mjs|cjs|ts|json|toml)$/.test(f) && f !== 'package-lock.json') files.push(path.join(ROOT, f))
  const cites = []
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8')
    text.split('\n').forEach((line, i) => {
      for (const o of outside) if (line.includes(o)) cites.push(`${path.relative(ROOT, f)}:${i + 1}: ${o}`)
    })
  }
  assert.deepEqual(cites, [], "say it in the project's own words, or point into docs/")
})
