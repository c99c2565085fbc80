// Backups and restores from the CLI as a user sees them: a progress line on a terminal (a real
// pseudo-terminal, through `script`), plain lines when stderr is not one, nothing but the result
// on stdout with --format json, and a restore interrupted by a real SIGINT saying how far it got.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')

let emu
before(async () => {
  emu = await h.startEmulator({ host: '127.0.0.1', port: 0 })
})
after(async () => {
  await emu.stop()
})

const hasScript = spawnSync('script', ['--version']).status === 0

/** `{ users: { u00000: {...}, ... } }` of about `mb` MB. */
function data(mb) {
  const users = {}
  const n = Math.round((mb * 1e6) / 250)
  for (let i = 0; i < n; i++) users[`u${String(i).padStart(6, '0')}`] = { name: `User ${i}`, bio: 'b'.repeat(200), n: i }
  return { users }
}

async function seed(ns, value) {
  const res = await fetch(`${emu.url}/app.json?ns=${ns}&print=silent`, { method: 'PUT', body: JSON.stringify(value) })
  assert.equal(res.status, 204)
}

const flags = (ns) => ['--database-url', emu.databaseUrl(ns), '--shift', 'app']

/** Run the CLI under a pseudo-terminal; resolves { code, output } (stdout and stderr as the terminal saw them). */
function onTerminal(args, cwd) {
  const cmd = [process.execPath, h.BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd, env: { ...process.env, NO_COLOR: '1' } })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`timed out: ${output}`))
    }, 60000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

test(
  'backup create: a progress line on a terminal, plain lines elsewhere, only JSON on stdout with --format json',
  { skip: !hasScript && 'needs script(1) for a pseudo-terminal' },
  async () => {
    const dir = h.project(null, 'msr-backup-')
    const ns = h.uniqueNs('bk')
    await seed(ns, data(1))
    // Slow requests so the backup takes more than the second before progress is drawn.
    await h.lever(emu, 'PUT', 'latency', { ms: 1100 })
    try {
      const tty = await onTerminal(['backup', 'create', ...flags(ns)], dir)
      assert.equal(tty.code, 0, tty.output)
      assert.match(tty.output, /\r\x1b\[2KBacking up \/app: \d+\.\d MB, [\d,]+ nodes, \d+\.\d MB\/s, \d+ requests/)
      assert.match(tty.output, /Backup created successfully/)

      const plain = await h.cli(['backup', 'create', '--format', 'json', ...flags(ns)], { cwd: dir })
      assert.equal(plain.code, 0, plain.stderr)
      const result = JSON.parse(plain.stdout)
      assert.ok(fs.existsSync(result.path), 'stdout is the result alone')
      assert.match(plain.stderr, /^Backing up \/app: 1\.\d MB, [\d,]+ nodes, \d+\.\d MB\/s, \d+ requests$/m)
      assert.doesNotMatch(plain.stderr, /\r|\x1b/, 'no terminal control codes in plain output')
      const backed = JSON.parse(fs.readFileSync(result.path, 'utf8'))
      assert.equal(Object.keys(backed.data.users).length, 4000)

      // --log-format json: the progress is a JSON log line too.
      const logged = await h.cli(['backup', 'create', '--log-format', 'json', ...flags(ns)], { cwd: dir })
      assert.equal(logged.code, 0, logged.stderr)
      const lines = logged.stderr
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
      const progress = lines.filter((l) => l.event === 'backup.progress').pop()
      assert.ok(progress, logged.stderr)
      assert.equal(progress.level, 'info')
      assert.equal(progress.path, '/app')
      assert.ok(progress.bytes > 0 && progress.nodes > 0 && progress.requests > 0, JSON.stringify(progress))
    } finally {
      await h.lever(emu, 'PUT', 'latency', { ms: 0 })
    }
  },
)

test(
  'migrate with backupMode full: the backup before the run draws its progress like backup create, above the scripts',
  { skip: !hasScript && 'needs script(1) for a pseudo-terminal' },
  async () => {
    const dir = h.project({ 'V202501010001_a.js': 'module.exports = class { async up() {} }\n' }, 'msr-backup-')
    const ns = h.uniqueNs('bk')
    await seed(ns, data(1))
    await h.lever(emu, 'PUT', 'latency', { ms: 1100 })
    try {
      const tty = await onTerminal(['migrate', '--no-lock', '--backup-mode', 'full', ...flags(ns)], dir)
      assert.equal(tty.code, 0, tty.output)
      assert.match(tty.output, /\r\x1b\[2KBacking up \/app: 1\.\d MB, [\d,]+ nodes, \d+\.\d MB\/s, \d+ requests\r?\nBackup prepared successfully/)
      assert.match(tty.output, /\[1\/1\] V202501010001_a\.js \(/)

      const ns2 = h.uniqueNs('bk')
      await seed(ns2, data(1))
      const plain = await h.cli(['migrate', '--no-lock', '--backup-mode', 'full', ...flags(ns2)], { cwd: dir })
      assert.equal(plain.code, 0, plain.stderr)
      assert.match(plain.stderr, /^Backing up \/app: 1\.\d MB, [\d,]+ nodes, \d+\.\d MB\/s, \d+ requests\nBackup prepared successfully/m)
      assert.doesNotMatch(plain.stderr, /\r|\x1b/, 'no terminal control codes in plain output')
    } finally {
      await h.lever(emu, 'PUT', 'latency', { ms: 0 })
    }
  },
)

test('a quick backup draws no progress at all', async () => {
  const dir = h.project(null, 'msr-backup-')
  const ns = h.uniqueNs('bk')
  await seed(ns, { a: 1 })
  const out = await h.cli(['backup', 'create', ...flags(ns)], { cwd: dir })
  assert.equal(out.code, 0, out.stderr)
  assert.doesNotMatch(out.stderr, /Backing up/)
})

test('backup restore: progress while it writes; a SIGINT stops it before the next write and it says what was written', async () => {
  const dir = h.project(null, 'msr-backup-')
  const ns = h.uniqueNs('rs')
  await seed(ns, data(12))
  const made = await h.cli(['backup', 'create', '--format', 'json', ...flags(ns)], { cwd: dir })
  assert.equal(made.code, 0, made.stderr)
  const file = path.relative(dir, JSON.parse(made.stdout).path)
  await fetch(`${emu.url}/app/users.json?ns=${ns}`, { method: 'DELETE' })
  await h.lever(emu, 'PUT', 'latency', { ms: 1000 })
  try {
    let child
    const run = h.cli(['backup', 'restore', file, ...flags(ns)], { cwd: dir, onSpawn: (c) => (child = c) })
    await new Promise((r) => setTimeout(r, 2200))
    child.kill('SIGINT')
    const out = await run
    assert.equal(out.code, 6, out.stderr)
    assert.match(out.stderr, /Restoring \/app: [\d.]+ MB of [\d.]+ MB \(\d+%\), [\d,]+ nodes, [\d.]+ MB\/s, \d+ writes/)
    assert.match(out.stderr, /Restore of \/app from .* stopped after \d+ write\(s\)[^:]*: interrupted by a signal; the data may be partly restored, run the restore again/)
    const users = (await emu.export())[ns]?.app?.users ?? {}
    assert.ok(Object.keys(users).length < 48000, 'stopped before the end')
  } finally {
    await h.lever(emu, 'PUT', 'latency', { ms: 0 })
  }
  // Run again: finished.
  const again = await h.cli(['backup', 'restore', file, ...flags(ns)], { cwd: dir })
  assert.equal(again.code, 0, again.stderr)
  assert.equal(Object.keys((await emu.export())[ns].app.users).length, 48000)
})
