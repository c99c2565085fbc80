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

module.exports = { project, startEmulator, uniqueNs, lever, rawGet, rawPut, tmpDir, runNode, cli, exampleMigrations, ROOT, BIN }
