'use strict'
// The crowd figure: a holder (a CLI `migrate` whose first script waits for a file) and N CLI
// pods (real processes) waiting for its lock, at `latency` ms per request. Once every pod waits,
// the holder is let go; the figure is the time from the holder's exit to the last pod's exit,
// plus the requests made from the moment it was let go.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')

const BIN = path.join(__dirname, '..', 'bin', 'msr-firebase.js')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function lever(emu, method, name, body) {
  const r = await fetch(`${emu.url}/.emulator/${name}`, { method, body: body === undefined ? undefined : JSON.stringify(body) })
  return r.json()
}

function start(cwd, env) {
  const child = spawn(process.execPath, [BIN, 'migrate'], { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const p = { child, stderr: '', stdout: '' }
  child.stdout.on('data', (d) => (p.stdout += d))
  child.stderr.on('data', (d) => (p.stderr += d))
  p.exited = new Promise((resolve) => child.on('exit', (code) => resolve({ code, at: performance.now() })))
  return p
}

async function until(f, what, limitMs = 120000) {
  const end = Date.now() + limitMs
  while (Date.now() < end) {
    if (await f()) return
    await sleep(25)
  }
  throw new Error(`crowd: never ${what}`)
}

async function crowd(emu, pods, latency) {
  const ns = `bench-crowd-${process.pid}-${pods}-${latency}`
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-crowd-'))
  const go = path.join(dir, 'go')
  fs.mkdirSync(path.join(dir, 'migrations'))
  fs.writeFileSync(
    path.join(dir, 'migrations', 'V202501010001_slow.js'),
    `const fs = require('node:fs')\nmodule.exports = { async up() { while (!fs.existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 10)) } }\n`,
  )
  fs.writeFileSync(path.join(dir, 'migrations', 'V202501010002_quick.js'), 'module.exports = { up() {} }\n')
  fs.writeFileSync(
    path.join(dir, 'msr.config.js'),
    `module.exports = { folder: './migrations', databaseUrl: '${emu.databaseUrl(ns)}', backupMode: 'manual', rollbackStrategy: 'none', locking: { enabled: true, timeout: 600000 } }\n`,
  )
  await lever(emu, 'PUT', 'latency', { ms: latency })
  const holder = start(dir, {})
  const lockUrl = `${emu.url}/migrations/_lock.json?ns=${ns}`
  await until(async () => (await (await fetch(lockUrl)).json())?.executorId, 'a holder')
  await lever(emu, 'DELETE', 'requests')
  const crowd = Array.from({ length: pods }, () => start(dir, {}))
  // Every pod waits: it printed its wait line and opened the lock node's event stream (its only
  // read of the lock node: its attempt was a create-if-absent that the 412 answered).
  const streams = async () => (await lever(emu, 'GET', 'requests')).byPath['GET /migrations/_lock'] ?? 0
  await until(async () => crowd.every((p) => /Waiting for the migration lock/.test(p.stderr)) && (await streams()) >= pods, 'all pods waiting')
  await lever(emu, 'DELETE', 'requests')
  fs.writeFileSync(go, '')
  const h = await holder.exited
  const exits = await Promise.all(crowd.map((p) => p.exited))
  const requests = (await lever(emu, 'GET', 'requests')).total
  await lever(emu, 'PUT', 'latency', { ms: 0 })
  fs.rmSync(dir, { recursive: true, force: true })
  const failed = [h, ...exits].filter((e) => e.code !== 0).length
  const lastMs = Math.max(...exits.map((e) => e.at)) - h.at
  return {
    pods,
    'latency ms': latency,
    'holder exit -> last pod exit, ms': Math.round(lastMs),
    'requests after the holder was let go': requests,
    'requests per pod': Number(((requests - 5) / pods).toFixed(2)),
    'non-zero exits': failed,
  }
}

module.exports = { crowd }
