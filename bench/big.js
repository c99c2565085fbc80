'use strict'
// The big-data half of `npm run bench`: figures measured side by side in one run, as ratios.
// The emulator runs in its own process (imported from a ~240 MB file of 1M users), and each
// client in its own process too, so peak memory (VmHWM) is measured per side.
//
// - emulator: import time and memory per stored JSON byte;
// - read of 100k children: the db facade vs fetch().json() (time and peak RSS);
// - "add a field to 1M users": the recipe of docs/scripts.md (children() + bulkWriter()) vs the same job
//   written with fetch() (time and peak RSS);
// - multi-path PATCH: 40k paths vs 4k paths vs the same data as one path (time ratios);
// - backup create and restore of the 1M users (~240 MB) and of a quarter of them, under a 16 MB
//   response limit: wall time and client peak RSS at both sizes, and the emulator's peak RSS.
//
// BENCH_USERS scales it (default 1000000).

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const BIN = path.join(ROOT, 'bin', 'msr-firebase.js')
const PEAK = path.join(__dirname, 'peak.js')

function user(i) {
  return {
    name: `User ${i}`,
    email: `user${i}@example.com`,
    age: 18 + (i % 60),
    city: ['Berlin', 'Paris', 'Lisbon', 'Oslo'][i % 4],
    createdAt: 1700000000000 + i,
    tags: { beta: i % 3 === 0, newsletter: i % 2 === 0 },
    bio: 'Likes long walks and short migrations; '.repeat(2),
  }
}

const key = (i) => `u${String(i).padStart(7, '0')}`

/** `{ "<ns>": { "users": { ... n users } }, ... }` streamed to `file`. */
async function writeImport(file, namespaces) {
  const out = fs.createWriteStream(file)
  const write = (s) => (out.write(s) ? null : new Promise((r) => out.once('drain', r)))
  await write('{')
  let firstNs = true
  for (const [ns, n] of Object.entries(namespaces)) {
    await write(`${firstNs ? '' : ','}${JSON.stringify(ns)}:{"users":{`)
    firstNs = false
    let chunk = ''
    for (let i = 0; i < n; i++) {
      chunk += `${i ? ',' : ''}"${key(i)}":${JSON.stringify(user(i))}`
      if (chunk.length > 1 << 20) {
        await write(chunk)
        chunk = ''
      }
    }
    await write(`${chunk}}}`)
  }
  await write('}')
  await new Promise((r) => out.end(r))
}

/** Run `node [-r peak.js] args` (`env` added to this process's); resolves { code, stdout, stderr, peakKb, ms }. */
function node(args, { cwd = ROOT, env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(process.execPath, ['-r', PEAK, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      const peak = /PEAK_RSS_KB=(\d+)/.exec(stderr)
      if (code !== 0) return reject(new Error(`node ${args.join(' ')} exited ${code}\n${stdout}\n${stderr}`))
      resolve({ code, stdout, stderr, peakKb: peak ? Number(peak[1]) : NaN, ms })
    })
  })
}

/**
 * One side of a side-by-side figure: the emulator's request counts reset, then `node args` (a
 * side script printing one JSON line last) in its own process; resolves { out: that line parsed,
 * peakKb: the side's peak RSS }.
 */
async function side(emu, args) {
  await emu.lever('DELETE', 'requests')
  const r = await node(args)
  return { out: JSON.parse(r.stdout.trim().split('\n').pop()), peakKb: r.peakKb }
}

function status(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(s)[1])
  return { rssKb: kb('VmRSS'), peakKb: kb('VmHWM') }
}

async function startEmulatorProcess(importFile) {
  const child = spawn(process.execPath, [path.join(__dirname, 'emulator-proc.js'), importFile], { stdio: ['pipe', 'pipe', 'inherit'] })
  const info = await new Promise((resolve, reject) => {
    let buf = ''
    child.stdout.on('data', (d) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)))
    })
    child.on('exit', (code) => reject(new Error(`emulator exited ${code}`)))
  })
  return {
    ...info,
    pid: child.pid,
    db: (ns) => `${info.url}?ns=${ns}`,
    async lever(method, name, body) {
      const res = await fetch(`${info.url}/.emulator/${name}`, { method, body: body === undefined ? undefined : JSON.stringify(body) })
      return res.json()
    },
    stop: () =>
      new Promise((r) => {
        child.on('exit', r)
        child.stdin.end()
      }),
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const mb = (kb) => Math.round(kb / 1024)
const ratio = (a, b) => Number((a / b).toFixed(2))

async function patchMs(emu, ns, at, body) {
  const t0 = process.hrtime.bigint()
  const res = await fetch(`${emu.url}/${at}.json?ns=${ns}&print=silent`, { method: 'PATCH', body })
  if (res.status !== 204) throw new Error(`PATCH ${res.status}: ${await res.text()}`)
  return Number(process.hrtime.bigint() - t0) / 1e6
}

async function bigData() {
  const users = Number(process.env.BENCH_USERS || 1_000_000)
  const quarter = Math.round(users / 4)
  const reads = Math.min(100_000, users)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-bench-big-'))
  const rows = []
  try {
    const file = path.join(dir, 'import.json')
    await writeImport(file, { bench: users, small: quarter, read: reads })
    const fileBytes = fs.statSync(file).size
    const perUser = (fileBytes - 40) / (users + quarter + reads)

    const empty = await startEmulatorProcess('')
    const baseline = status(empty.pid)
    await empty.stop()
    const emu = await startEmulatorProcess(file)
    const afterImport = status(emu.pid)
    const base = status(process.pid) // a node process with the addon, for scale
    rows.push({
      figure: 'emulator --import',
      value: `${mb(fileBytes / 1024)} MB in ${(emu.importMs / 1000).toFixed(1)} s`,
      ratio: `${ratio(fileBytes / 1e6, emu.importMs / 1000)} MB/s`,
    })
    rows.push({
      figure: 'emulator memory per JSON byte',
      value: `RSS ${mb(afterImport.rssKb)} MB for ${mb(fileBytes / 1024)} MB`,
      ratio: `${ratio((afterImport.rssKb - baseline.rssKb) * 1024, fileBytes)}x (RSS above an empty emulator's ${mb(baseline.rssKb)} MB)`,
    })

    // Read of 100k children: facade vs fetch().json(), each in its own process, 3 reads each.
    const readPath = 'users'
    const facade = await node([path.join(__dirname, 'read.js'), 'facade', emu.db('read'), readPath, '3'])
    const plain = await node([path.join(__dirname, 'read.js'), 'fetch', emu.db('read'), readPath, '3'])
    const f = JSON.parse(facade.stdout)
    const p = JSON.parse(plain.stdout)
    rows.push({
      figure: `read ${f.children} children: facade vs fetch().json()`,
      value: `${median(f.ms).toFixed(0)} ms vs ${median(p.ms).toFixed(0)} ms`,
      ratio: `${ratio(median(f.ms), median(p.ms))}x time`,
    })
    rows.push({ figure: '  peak RSS, facade vs fetch', value: `${mb(facade.peakKb)} MB vs ${mb(plain.peakKb)} MB`, ratio: `${ratio(facade.peakKb, plain.peakKb)}x` })

    // Add a field to every user: the recipe of docs/scripts.md vs the same job with fetch().
    const t = []
    for (const [mode, field] of [
      ['helpers', 'planA'],
      ['fetch', 'planB'],
    ]) {
      const r = await node([path.join(__dirname, 'transform.js'), mode, emu.db('bench'), 'users', field])
      t.push({ ...JSON.parse(r.stdout), peakKb: r.peakKb })
    }
    if (t[0].writes !== users || t[1].writes !== users) throw new Error(`transform wrote ${t[0].writes} / ${t[1].writes} of ${users}`)
    rows.push({
      figure: `add a field to ${users.toLocaleString('en-US')} users: helpers vs fetch`,
      value: `${(t[0].ms / 1000).toFixed(1)} s vs ${(t[1].ms / 1000).toFixed(1)} s`,
      ratio: `${ratio(t[0].ms, t[1].ms)}x time`,
    })
    rows.push({ figure: '  peak RSS, helpers vs fetch', value: `${mb(t[0].peakKb)} MB vs ${mb(t[1].peakKb)} MB`, ratio: `${ratio(t[0].peakKb, t[1].peakKb)}x` })

    // Multi-path PATCH: linear in its paths.
    const patch = (n) => {
      const o = {}
      for (let i = 0; i < n; i++) o[`users/${key(i)}/profile`] = { n: i, s: 'abc' }
      return JSON.stringify(o)
    }
    const one = (n) => {
      const o = {}
      for (let i = 0; i < n; i++) o[key(i)] = { profile: { n: i, s: 'abc' } }
      return JSON.stringify({ users: o })
    }
    const p4 = []
    const p40 = []
    const p1 = []
    for (let round = 0; round < 3; round++) {
      p4.push(await patchMs(emu, `linear-a${round}`, '', patch(4000)))
      p40.push(await patchMs(emu, `linear-b${round}`, '', patch(40000)))
      p1.push(await patchMs(emu, `linear-c${round}`, '', one(40000)))
    }
    rows.push({
      figure: 'PATCH 40k paths vs 4k paths',
      value: `${median(p40).toFixed(0)} ms vs ${median(p4).toFixed(0)} ms`,
      ratio: `${ratio(median(p40), median(p4))}x (linear: ~10x)`,
    })
    rows.push({
      figure: 'PATCH 40k paths vs the same data as 1 path',
      value: `${median(p40).toFixed(0)} ms vs ${median(p1).toFixed(0)} ms`,
      ratio: `${ratio(median(p40), median(p1))}x`,
    })

    // Backup and restore under a 16 MB response limit, at two sizes.
    await emu.lever('PUT', 'limits', { responseBytes: 16 * 1024 * 1024 })
    for (const [ns, n] of [
      ['small', quarter],
      ['bench', users],
    ]) {
      const cwd = fs.mkdtempSync(path.join(dir, `cli-${ns}-`))
      const made = await node([BIN, 'backup', 'create', '--format', 'json', '--database-url', emu.db(ns)], { cwd })
      const backupFile = JSON.parse(made.stdout).path
      const size = fs.statSync(backupFile).size
      await fetch(`${emu.url}/users.json?ns=${ns}`, { method: 'DELETE' })
      const restored = await node([BIN, 'backup', 'restore', backupFile, '--database-url', emu.db(ns)], { cwd })
      await emu.lever('PUT', 'limits', { responseBytes: 256 * 1024 * 1024 })
      const counted = Object.keys(await (await fetch(`${emu.url}/users.json?ns=${ns}&shallow=true`)).json()).length
      await emu.lever('PUT', 'limits', { responseBytes: 16 * 1024 * 1024 })
      if (counted !== n) throw new Error(`restore of ${ns}: ${counted} of ${n} users`)
      rows.push({
        figure: `backup create, ${mb(size / 1024)} MB (16 MB limit)`,
        value: `${(made.ms / 1000).toFixed(1)} s, client peak ${mb(made.peakKb)} MB`,
        ratio: `${ratio(size / 1e6, made.ms / 1000)} MB/s`,
      })
      rows.push({
        figure: `backup restore, ${mb(size / 1024)} MB`,
        value: `${(restored.ms / 1000).toFixed(1)} s, client peak ${mb(restored.peakKb)} MB`,
        ratio: `${ratio(size / 1e6, restored.ms / 1000)} MB/s`,
      })
      fs.rmSync(backupFile)
    }
    const emuPeak = status(emu.pid)
    rows.push({ figure: 'emulator peak RSS over the whole run', value: `${mb(emuPeak.peakKb)} MB`, ratio: `${ratio(emuPeak.peakKb * 1024, fileBytes)}x the import file` })
    rows.push({ figure: 'bench process (node + addon) for scale', value: `RSS ${mb(base.rssKb)} MB`, ratio: `~${Math.round(perUser)} bytes of JSON per user` })
    await emu.stop()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

module.exports = { bigData, writeImport, node, side, startEmulatorProcess, status, mb, ratio }
