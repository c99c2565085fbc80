// The documentation as a reader follows it: every relative link in README.md, ARCHITECTURE.md,
// CHANGELOG.md and docs/*.md leads to a file of the repository (and to a heading there when it names
// one). Reads files only: no addon needed.
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
