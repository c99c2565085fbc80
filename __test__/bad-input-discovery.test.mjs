// Bad input, discovery and scripts family: what the migrations folder holds and what `down` is
// given. The scanner takes every real folder and file once (a symbolic link loop is no second
// copy; `node_modules` and hidden folders are skipped); a version that is no version (0, not a
// number) and a migration found twice are refused before anything runs; `down <version>` needs
// an executed version. Refusals exit 2 with the database exactly as it was.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')

const shared = h.emulatorPerFile()

const run = (p, args = ['migrate'], env = {}) => h.cliIn(p, args, env)
const migrations = (p, ...rest) => path.join(p.dir, 'migrations', ...rest)

test('a symbolic link loop, a linked file, node_modules and hidden folders: every migration runs once', async () => {
  const p = await h.seeded(shared.emu, { prefix: 'scan' })
  fs.symlinkSync('.', migrations(p, 'self')) // ln -s . migrations/self
  fs.mkdirSync(migrations(p, 'linked'))
  fs.symlinkSync(migrations(p, 'V202501010002_b.js'), migrations(p, 'linked', 'V202501010002_b.js'))
  fs.mkdirSync(migrations(p, 'node_modules', 'dep'), { recursive: true })
  fs.writeFileSync(migrations(p, 'node_modules', 'dep', 'V202501010003_dep.js'), h.nodeScript('dep'))
  fs.mkdirSync(migrations(p, '.cache'))
  fs.writeFileSync(migrations(p, '.cache', 'V202501010004_hidden.js'), h.nodeScript('hidden'))
  const out = await run(p, ['migrate', '--format', 'json'])
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(
    JSON.parse(out.stdout).executed.map((e) => e.name),
    ['V202501010002_b.js'],
  )
  assert.match(out.stderr, /Skipping .*linked\/V202501010002_b\.js \(the same file as .*migrations\/V202501010002_b\.js\)/)
  const data = await h.dump(shared.emu, p.ns)
  assert.deepEqual(Object.keys(data.schema_version), ['v202501010001', 'v202501010002'])
  assert.equal(data.dep, undefined, 'node_modules is not scanned')
  assert.equal(data.hidden, undefined, 'hidden folders are not scanned')
})

test('file names without a usable version, and a migration found twice, are refused before anything runs', async () => {
  const cases = [
    { what: 'version 0', files: { 'V000000000000_x.js': h.nodeScript('x') }, re: [/V000000000000_x\.js: version 0 is not a migration version/, /Rename/] },
    {
      what: 'a pattern whose group is no number',
      files: { 'M_first_x.js': h.nodeScript('x') },
      config: "module.exports = { filePatterns: ['^V(\\\\d{12})_.*\\\\.js$', '^M_(\\\\w+)_.*\\\\.js$'] }",
      re: [/M_first_x\.js: the version "first" \(group 1 of the pattern\) is not a whole number/, /filePatterns/],
    },
    {
      what: 'the same migration in two folders',
      files: { 'old/V202501010002_b.js': h.nodeScript('b') },
      re: [/The migration V202501010002_b\.js exists twice/, /old\/V202501010002_b\.js/, /remove one/],
    },
  ]
  for (const c of cases) {
    const p = await h.seeded(shared.emu, { prefix: 'ver', config: c.config })
    for (const [name, src] of Object.entries(c.files)) {
      fs.mkdirSync(path.dirname(migrations(p, name)), { recursive: true })
      fs.writeFileSync(migrations(p, name), src)
    }
    await h.refused(shared.emu, p.ns, { ...c, code: 2 }, () => run(p))
  }
})

test('down <version> needs an executed version (or 0, or --steps): a typo rolls back nothing', async () => {
  const p = await h.seeded(shared.emu, { prefix: 'down' })
  assert.equal((await run(p)).code, 0, 'both executed')
  const cases = [
    {
      what: 'a version no migration has',
      args: ['down', '202501010000'],
      re: [/Cannot roll back to version 202501010000/, /nearest executed version is 202501010001 \(V202501010001_a\.js\)/],
    },
    {
      what: 'an executed version (a dry run)',
      args: ['down', '202501010001', '--dry-run'],
      ok: true,
    },
    { what: 'a version above every executed one', args: ['down', '202612312359'], re: [/nearest executed version is 202501010002/, /--steps N/] },
    { what: 'under --format json', args: ['down', '202501010000', '--format', 'json'], re: [/"code": "VALIDATION_FAILED"/, /"exitCode": 2/] },
  ]
  for (const c of cases) {
    if (c.ok) {
      const out = await run(p, c.args)
      assert.equal(out.code, 0, `${c.what}: ${out.stderr}`)
      continue
    }
    await h.refused(shared.emu, p.ns, { ...c, code: 2 }, () => run(p, c.args))
  }
  // Not yet executed: refused too, naming what is.
  fs.writeFileSync(migrations(p, 'V202501010003_c.js'), h.nodeScript('c'))
  await h.refused(shared.emu, p.ns, { what: 'a pending version', code: 2, re: [/version 202501010003/, /202501010002 \(V202501010002_b\.js\)/] }, () =>
    run(p, ['down', '202501010003']),
  )
})
