'use strict'
// Shared test helpers: an embedded emulator per test file, unique namespaces, lever calls,
// and running the CLI / node child processes.

const { spawn } = require('node:child_process')
const path = require('node:path')
const fs = require('node:fs')
const os = require('node:os')
const { startEmulator } = require('..')

const ROOT = path.join(__dirname, '..')
const BIN = path.join(ROOT, 'bin', 'msr-firebase.js')
let nsCounter = 0

function uniqueNs(prefix = 't') {
  nsCounter += 1
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${nsCounter}`
}

/** Remove what would point this process and its children elsewhere: the database and credentials variables and every `MSR_*`. */
function clearDatabaseEnv() {
  for (const k of ['FIREBASE_DATABASE_EMULATOR_HOST', 'FIREBASE_DATABASE_URL', 'DATABASE_URL', 'GOOGLE_APPLICATION_CREDENTIALS']) delete process.env[k]
  for (const k of Object.keys(process.env)) if (k.startsWith('MSR_')) delete process.env[k]
}

/** Admin lever call on the emulator (`/.emulator/...`). */
async function lever(emu, method, leverPath, body) {
  const res = await fetch(`${emu.url}/.emulator/${leverPath}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return text ? JSON.parse(text) : null
}

/** Raw REST read of `path` in namespace `ns`. */
async function rawGet(emu, ns, p = '') {
  const res = await fetch(`${emu.url}/${p}.json?ns=${ns}`)
  return res.json()
}

async function rawPut(emu, ns, p, value) {
  const res = await fetch(`${emu.url}/${p}.json?ns=${ns}`, { method: 'PUT', body: JSON.stringify(value) })
  return res.json()
}

// Every test folder goes when the test file's process ends (KEEP_TEST_DIRS=1 keeps them).
const made = []
process.on('exit', () => {
  if (process.env.KEEP_TEST_DIRS) return
  for (const d of made) fs.rmSync(d, { recursive: true, force: true })
})

function tmpDir(prefix = 'msr-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  made.push(dir)
  return dir
}

/** Run a node process; resolves { code, signal, stdout, stderr }. */
function runNode(args, { cwd = ROOT, env = {}, input, timeoutMs = 60000, onSpawn } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`timed out: node ${args.join(' ')}\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
    if (input !== undefined) child.stdin.end(input)
    else child.stdin.end()
    if (onSpawn) onSpawn(child)
  })
}

/**
 * Start the CLI without waiting: `{ child, exited, err }`; `exited` resolves `{ code, signal,
 * stdout, stderr }` once the process has closed, `err()` is its stderr so far.
 */
function startCli(args, { cwd, env = {} }) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
  return { child, exited, err: () => stderr }
}

/** Run the CLI: `cli(['migrate'], { cwd, env })`. */
function cli(args, opts = {}) {
  return runNode([BIN, ...args], opts)
}

/** Copy the example migrations into a fresh folder; returns the folder. */
function exampleMigrations(dir = tmpDir()) {
  const src = path.join(ROOT, 'examples', 'migrations')
  const dst = path.join(dir, 'migrations')
  fs.mkdirSync(dst, { recursive: true })
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dst, f))
  return dir
}

/**
 * A temp project dir with `migrations/`: the examples when `files` is undefined, the given
 * `{ name: source }` files otherwise, and no migrations folder at all when `files` is null.
 */
function project(files, prefix = 'msr-test-') {
  const dir = tmpDir(prefix)
  if (files === undefined) exampleMigrations(dir)
  else if (files !== null) {
    fs.mkdirSync(path.join(dir, 'migrations'), { recursive: true })
    for (const [name, src] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'migrations', name), src)
  }
  return dir
}

/**
 * One embedded emulator for the test file that calls this (started before its tests, stopped
 * after them): `const shared = h.emulatorPerFile()`, then `shared.emu`.
 */
function emulatorPerFile() {
  const { before, after } = require('node:test')
  const shared = { emu: null }
  before(async () => {
    shared.emu = await startEmulator({ host: '127.0.0.1', port: 0 })
  })
  after(async () => {
    await shared.emu.stop()
  })
  return shared
}

/** Run the CLI in a `seeded()` project, against its namespace (`FIREBASE_DATABASE_URL`). */
function cliIn(p, args, env = {}) {
  return cli(args, { cwd: p.dir, env: { FIREBASE_DATABASE_URL: p.url, ...env } })
}

/** A namespace's data as the emulator holds it (null when it is empty). */
async function dump(emu, ns) {
  return (await emu.export())[ns] ?? null
}

/** A script that sets `node` (under the shift) to true, and whose down() removes it. */
const nodeScript = (node) =>
  `module.exports = { async up(db, info, h) { await db.database.ref(h.cfg.buildPath('${node}')).set(true) }, ` +
  `async down(db, info, h) { await db.database.ref(h.cfg.buildPath('${node}')).remove() } }\n`

/**
 * A project whose namespace has one migration executed (V202501010001_a, node `a`) and one
 * pending (V202501010002_b): a bad input that got through would change it. `files` adds to (or
 * replaces) the migrations; `config` becomes msr.config.js. Returns `{ dir, ns, url }`.
 */
async function seeded(emu, { files = {}, config, prefix = 'bad' } = {}) {
  const dir = project({ 'V202501010001_a.js': nodeScript('a'), 'V202501010002_b.js': nodeScript('b'), ...files }, `msr-${prefix}-`)
  if (config !== undefined) fs.writeFileSync(path.join(dir, 'msr.config.js'), config)
  const ns = uniqueNs(prefix)
  await rawPut(emu, ns, '', {
    a: true,
    keep: { me: 1 },
    schema_version: { v202501010001: { name: 'V202501010001_a.js', filepath: path.join(dir, 'migrations', 'V202501010001_a.js'), timestamp: 202501010001 } },
  })
  return { dir, ns, url: emu.databaseUrl(ns) }
}

/**
 * Check a bad input was refused cleanly: `run()` ends with exit code `c.code` (or rejects with
 * `err.code === c.code` for the library), its output (or error message) matches every `c.re`,
 * and the namespace is exactly as it was before. Resolves with the output (or the error).
 */
async function refused(emu, ns, c, run) {
  const assert = require('node:assert/strict')
  const before = await dump(emu, ns)
  let out
  let text
  let code
  try {
    out = await run()
    text = typeof out === 'object' && out && 'stderr' in out ? `${out.stderr}${out.stdout}` : JSON.stringify(out)
    code = out && out.code
  } catch (e) {
    out = e
    text = e.message
    code = e.code
  }
  assert.equal(code, c.code, `${c.what}: got ${code}\n${text}`)
  for (const re of [].concat(c.re || [])) assert.match(text, re, `${c.what}:\n${text}`)
  assert.deepEqual(await dump(emu, ns), before, `${c.what}: the database changed`)
  return out
}

module.exports = {
  project,
  startEmulator,
  uniqueNs,
  lever,
  rawGet,
  rawPut,
  tmpDir,
  runNode,
  cli,
  startCli,
  clearDatabaseEnv,
  exampleMigrations,
  emulatorPerFile,
  cliIn,
  dump,
  nodeScript,
  seeded,
  refused,
  ROOT,
  BIN,
}
