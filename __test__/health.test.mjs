// Health checks, readiness and metrics: the Express example (examples/express-health) as a real
// server in its own process, a real `msr-firebase migrate` in another, probed over HTTP while the
// migration holds the lock, after it released it, and with the database gone. Request counts
// come from the emulator's counters; one emulator for the file, stopped by the last test.
import test, { before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import helpers from './helpers.cjs'
import { FirebaseRunner, FirebaseConfig } from '../index.js'

const require = createRequire(import.meta.url)
const { healthHandler, metricsHandler } = require('@migration-script-runner/firebase/health')
const promClient = require('prom-client')
const { startEmulator, uniqueNs, lever, rawGet, project, cli, ROOT } = helpers
const SERVER = path.join(ROOT, 'examples', 'express-health', 'server.mjs')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// This process connects through config.databaseUrl; child processes get what they need explicitly.
helpers.clearDatabaseEnv()

const V1 = 202501010001
const V2 = 202501010002
// V2 holds the lock until the test writes `release` (a lever, not a sleep); it writes `started`
// once it runs.
const MIGRATIONS = {
  'V202501010001_users.js': `module.exports = { up: async (db) => { await db.database.ref('users/u1').set({ name: 'Ada' }) } }\n`,
  'V202501010002_posts.js': `const fs = require('node:fs')
module.exports = {
  up: async (db) => {
    fs.writeFileSync('started', '')
    for (let i = 0; i < 3000 && !fs.existsSync('release'); i++) await new Promise((r) => setTimeout(r, 10))
    await db.database.ref('posts/p1').set({ title: 'Hello' })
  },
}
`,
}

let emu
const children = new Set()
const servers = new Set()

before(async () => {
  emu = await startEmulator({ port: 0 })
})

after(async () => {
  for (const c of children) c.kill('SIGKILL')
  for (const e of [emu, ...servers]) await e.stop().catch(() => {})
})

const counts = (e = emu) => lever(e, 'GET', 'requests')
const resetCounts = (e = emu) => lever(e, 'DELETE', 'requests')

/** Wait (bounded) until `fn()` is truthy; resolves with its value. */
async function until(fn, what, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** The example server in its own process; resolves once it listens. */
async function startServer(emu, dir, ns) {
  const child = spawn(process.execPath, [SERVER], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: '1', FIREBASE_DATABASE_URL: emu.databaseUrl(ns), HOST: '127.0.0.1', PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  const s = { child, stdout: '', stderr: '' }
  child.stdout.on('data', (d) => (s.stdout += d))
  child.stderr.on('data', (d) => (s.stderr += d))
  child.on('close', () => children.delete(child))
  const m = await until(() => /Listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(s.stdout) || child.exitCode !== null, 'the example server to listen', 20000)
  assert.ok(Array.isArray(m), `server exited: ${s.stdout}\n${s.stderr}`)
  s.url = m[1]
  return s
}

async function get(url) {
  const started = Date.now()
  const res = await fetch(url)
  const text = await res.text()
  const type = res.headers.get('content-type') ?? ''
  return { status: res.status, body: type.startsWith('application/json') ? JSON.parse(text) : text, ms: Date.now() - started }
}

/** `n` GETs of each path, `concurrency` at a time; returns the status codes seen per path. */
async function probeMany(base, paths, n, concurrency = 8) {
  const seen = Object.fromEntries(paths.map((p) => [p, {}]))
  const jobs = paths.flatMap((p) => Array.from({ length: n }, () => p))
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let p = jobs.pop(); p; p = jobs.pop()) {
        const res = await fetch(base + p)
        await res.arrayBuffer()
        seen[p][res.status] = (seen[p][res.status] ?? 0) + 1
      }
    }),
  )
  return seen
}

/** A strict check of the Prometheus text format (0.0.4); returns the samples by metric name. */
function parsePrometheus(text) {
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
  const VALUE = '(?:[+-]?(?:\\d+\\.?\\d*(?:[eE][+-]?\\d+)?|\\.\\d+(?:[eE][+-]?\\d+)?)|[+-]?Inf|NaN)'
  const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`
  const sample = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?,?\\})? (${VALUE})(?: -?\\d+)?$`)
  const types = new Map()
  const samples = {}
  assert.ok(text.endsWith('\n'), 'ends with a newline')
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue
    let m
    if ((m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line))) continue
    if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      assert.ok(!types.has(m[1]), `one TYPE line per metric: ${line}`)
      types.set(m[1], m[2])
      continue
    }
    assert.ok(!line.startsWith('#') || line.startsWith('# '), `comment: ${line}`)
    if (line.startsWith('# ')) continue
    m = sample.exec(line)
    assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`)
    const family = [...types.keys()].find((t) => m[1] === t || m[1].startsWith(`${t}_`))
    assert.ok(family, `sample before its TYPE line: ${line}`)
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]))
    ;(samples[m[1]] ??= []).push({ labels, value: Number(m[3].replace('Inf', 'Infinity')) })
  }
  return { types, samples }
}

/** A runner in this process on a fresh namespace, on `dir`'s migrations. */
async function connect(ns, dir, locking = {}) {
  const config = new FirebaseConfig({ databaseUrl: emu.databaseUrl(ns), folder: path.join(dir, 'migrations'), locking: { enabled: true, ...locking } })
  return FirebaseRunner.getInstance({ config, logger: () => {} })
}

test('status() and getLockStatus({ cached: true }): one read of each node, then no request per call', async () => {
  const ns = uniqueNs('cost')
  const runner = await connect(ns, project(MIGRATIONS, 'msr-health-'))
  const ls = runner.getHandler().lockingService
  // Before: the guide's getLockStatus() reads the lock node every time.
  await resetCounts()
  for (let i = 0; i < 20; i++) assert.equal(await ls.getLockStatus(), null)
  assert.equal((await counts()).total, 20, 'one request per uncached status')

  await resetCounts()
  const s = await runner.status()
  assert.deepEqual(
    { ...s, lastRun: s.lastRun },
    {
      appliedVersion: null,
      appliedCount: 0,
      pending: [
        { version: V1, name: 'V202501010001_users.js' },
        { version: V2, name: 'V202501010002_posts.js' },
      ],
      neededVersion: V2,
      upToDate: false,
      lock: null,
      current: true,
      reason: null,
      lastRun: null,
    },
  )
  const first = await counts()
  assert.deepEqual(first.byPath, { 'GET /migrations/_lock': 1, 'GET /schema_version': 1 }, 'each node read once, by opening its event stream')
  await resetCounts()
  for (let i = 0; i < 500; i++) await runner.status()
  for (let i = 0; i < 500; i++) assert.equal(await ls.getLockStatus({ cached: true }), null)
  assert.equal((await counts()).total, 0, 'no request for 1,000 cached reads')

  // The views follow writes: a holder, then a recorded migration.
  assert.equal(await ls.acquireLock('cost-holder'), true)
  const held = await until(async () => (await ls.getLockStatus({ cached: true }))?.lockedBy === 'cost-holder' && (await ls.getLockStatus({ cached: true })), 'the holder')
  assert.ok(held.lockedAt instanceof Date && held.expiresAt instanceof Date && held.isLocked)
  assert.equal(held.processId, process.pid)
  await ls.releaseLock('cost-holder')
  await assert.rejects(runner.status({ version: 123 }), { code: 'CONFIG_INVALID' })
  await assert.rejects(runner.status({ timeout: -1 }), { code: 'CONFIG_INVALID' })
  await assert.rejects(ls.getLockStatus({ cached: true, timeout: 'soon' }), { code: 'CONFIG_INVALID' })
})

test('watchLockStatus(): changes as events and as an async iterator (a lease running out included), close() ends it', async () => {
  const ns = uniqueNs('watch')
  const runner = await connect(ns, project(MIGRATIONS, 'msr-health-'), { timeout: 1500 })
  const ls = runner.getHandler().lockingService
  const watch = ls.watchLockStatus()
  const events = []
  watch.on('change', (st) => events.push(st && st.lockedBy))
  const seen = []
  const iterated = (async () => {
    for await (const st of watch) seen.push(st && { by: st.lockedBy, isLocked: st.isLocked, lockedAt: st.lockedAt instanceof Date })
  })()
  await until(() => watch.status === null, 'the first status')
  assert.equal(watch.current, true)
  assert.equal(await ls.acquireLock('watch-holder'), true)
  await until(() => watch.status?.lockedBy === 'watch-holder', 'the holder')
  // No renewal: the lease (1.5 s) runs out and the watch says so without any write.
  await resetCounts()
  await until(() => watch.status === null, 'the lease running out', 5000)
  assert.equal((await counts()).total, 0, 'a lease running out is seen without a request')
  watch.close()
  await iterated
  assert.deepEqual(seen, [null, { by: 'watch-holder', isLocked: true, lockedAt: true }, null])
  assert.deepEqual(events, [null, 'watch-holder', null])
})

test('where event streams are refused or keep ending, status() stays current from reads and reconnects', async () => {
  const ns = uniqueNs('refused')
  const dir = project(MIGRATIONS, 'msr-health-')
  await lever(emu, 'PUT', 'streams', { refuse: 400 })
  try {
    const runner = await connect(ns, dir)
    const s = await runner.status()
    assert.equal(s.current, true, s.reason)
    await resetCounts()
    for (let i = 0; i < 200; i++) await runner.status()
    assert.ok((await counts()).total <= 2, 'reads every few seconds, not per call')
  } finally {
    await lever(emu, 'DELETE', 'streams')
  }
  // Streams the server ends every 300 ms: the views reopen them and keep up.
  await lever(emu, 'PUT', 'streams', { closeAfterMs: 300 })
  try {
    const runner = await connect(uniqueNs('flaky'), dir)
    const ls = runner.getHandler().lockingService
    assert.equal((await runner.status()).lock, null)
    await sleep(700)
    assert.equal(await ls.acquireLock('flaky-holder'), true)
    await until(async () => (await runner.status()).lock?.lockedBy === 'flaky-holder', 'the holder through reopened streams', 5000)
    assert.equal((await runner.status()).current, true)
  } finally {
    await lever(emu, 'DELETE', 'streams')
  }
})

test('healthHandler and metricsHandler on plain node:http; metrics in prom-client’s default registry or on their own', async () => {
  const http = await import('node:http')
  const ns = uniqueNs('handlers')
  const dir = project({ 'V202501010001_users.js': MIGRATIONS['V202501010001_users.js'] }, 'msr-health-')
  const runner = await connect(ns, dir)
  assert.throws(() => healthHandler({}), { code: 'CONFIG_INVALID' })
  assert.throws(() => healthHandler(runner, { timeout: -5 }), { code: 'CONFIG_INVALID' })
  assert.throws(() => healthHandler(runner, { requireUptoDate: true }), { code: 'CONFIG_INVALID', message: /did you mean `requireUpToDate`/ })
  assert.throws(() => metricsHandler(runner, { version: '2025' }), { code: 'CONFIG_INVALID' })
  const routes = {
    '/healthz': healthHandler(runner),
    '/readyz': healthHandler(runner, { requireUpToDate: true }),
    '/metrics': metricsHandler(runner, { registry: false }),
  }
  const server = http.createServer((req, res) => routes[req.url](req, res))
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const base = `http://127.0.0.1:${server.address().port}`
  try {
    const ready = await get(`${base}/readyz`)
    assert.equal(ready.status, 503)
    assert.deepEqual(ready.body, {
      status: 'pending',
      reason: '1 migration pending: 202501010001 (V202501010001_users.js) (no migration recorded yet)',
      lock: null,
      appliedVersion: null,
      pending: [{ version: V1, name: 'V202501010001_users.js' }],
    })
    assert.deepEqual((await get(`${base}/healthz`)).body, { status: 'ok', lock: null, appliedVersion: null, pending: [{ version: V1, name: 'V202501010001_users.js' }] })
    await runner.migrate()
    await until(async () => (await get(`${base}/readyz`)).status === 200, '/readyz 200')
    const text = await get(`${base}/metrics`)
    const { samples } = parsePrometheus(text.body)
    assert.deepEqual(Object.keys(samples).sort(), [
      'msr_last_run_duration_seconds',
      'msr_last_run_success',
      'msr_lock_held',
      'msr_lock_lease_remaining_seconds',
      'msr_migrations_applied_total',
      'msr_migrations_pending',
    ])
    assert.deepEqual(samples.msr_last_run_success, [{ labels: { command: 'migrate' }, value: 1 }])
    assert.ok(samples.msr_last_run_duration_seconds[0].value > 0)
    assert.equal(samples.msr_process_cpu_user_seconds_total, undefined)

    // With prom-client: registered into its default registry, computed at each scrape.
    metricsHandler(runner)
    assert.ok(promClient.register.getSingleMetric('msr_lock_held'), 'in the default registry')
    const reg = parsePrometheus(await promClient.register.metrics()).samples
    assert.deepEqual(reg.msr_migrations_applied_total, [{ labels: {}, value: 1 }])
    assert.deepEqual(reg.msr_last_run_success, [{ labels: { command: 'migrate' }, value: 1 }])
    assert.deepEqual(reg.msr_lock_held, [{ labels: {}, value: 0 }])
    const own = new promClient.Registry()
    metricsHandler(runner, { registry: own })
    assert.deepEqual(parsePrometheus(await own.metrics()).samples.msr_migrations_pending, [{ labels: {}, value: 0 }])
  } finally {
    server.close()
    promClient.register.clear()
  }
})

test('the Express example: guide monitoring, probes at no request cost during and after a run, readiness, metrics, an unreachable database', async () => {
  // An emulator of its own: the views of the runners above (reads every few seconds where
  // streams were refused) keep talking to theirs, and this one is stopped at the end.
  const emu = await startEmulator({ port: 0 })
  servers.add(emu)
  const ns = uniqueNs('health')
  const dir = project(MIGRATIONS, 'msr-health-')
  const env = { FIREBASE_DATABASE_URL: emu.databaseUrl(ns), MSR_LOCKING_ENABLED: 'true', MSR_LOCKING_TIMEOUT: '6000' }

  // A real migration in another process: V1 runs, V2 holds the lock until released.
  const migration = cli(['migrate'], { cwd: dir, env, timeoutMs: 60000, onSpawn: (c) => children.add(c) })
  await until(() => fs.existsSync(path.join(dir, 'started')), 'the migration to start V2')
  const holder = (await rawGet(emu, ns, 'migrations/_lock')).executorId
  assert.ok(holder, 'the migration holds the lock')

  // The server starts while the migration runs: the guide's two snippets print the holder.
  const server = await startServer(emu, dir, ns)
  await until(() => server.stdout.includes('Migration in progress:'), 'the dashboard line')
  assert.match(server.stdout, /Lock status: \{[^}]*isLocked: true/)
  assert.ok(server.stdout.includes(`lockedBy: '${holder}'`), server.stdout)
  assert.ok(server.stdout.includes(`executor: '${holder}'`), server.stdout)
  assert.match(server.stdout, /duration: \d+/)

  // (The server read each node once as it started: its lock watch and waitUntilMigrated opened
  // the two event streams the probes answer from.)
  const health = await get(`${server.url}/healthz`)
  assert.equal(health.status, 200, JSON.stringify(health.body))
  assert.equal(health.body.status, 'ok')
  assert.equal(health.body.lock.lockedBy, holder)
  assert.equal(health.body.lock.isLocked, true)
  assert.equal(health.body.appliedVersion, V1)
  assert.deepEqual(health.body.pending, [{ version: V2, name: 'V202501010002_posts.js' }])
  const ready = await get(`${server.url}/readyz`)
  assert.equal(ready.status, 503)
  assert.equal(ready.body.status, 'pending')
  assert.match(ready.body.reason, /1 migration pending: 202501010002 \(V202501010002_posts\.js\)/)

  // 1,000 probes while the migration holds the lock: the server sends nothing (the migration's
  // own lease renewals are all the database sees).
  await resetCounts(emu)
  const during = await probeMany(server.url, ['/healthz', '/readyz'], 500)
  assert.deepEqual(during, { '/healthz': { 200: 500 }, '/readyz': { 503: 500 } })
  const duringCounts = await counts(emu)
  const others = Object.entries(duringCounts.byPath).filter(([k]) => k !== 'PUT /migrations/_lock')
  assert.deepEqual(others, [], `requests other than the migration's renewals: ${JSON.stringify(duringCounts)}`)

  // waitUntilMigrated in this process: rejects on its timeout naming the pending version, and
  // resolves once V2 is recorded.
  const config = new FirebaseConfig({ databaseUrl: emu.databaseUrl(ns), folder: path.join(dir, 'migrations'), locking: { enabled: true } })
  const runner = await FirebaseRunner.getInstance({ config, logger: () => {} })
  await assert.rejects(runner.waitUntilMigrated({ timeout: 200 }), (err) => {
    assert.equal(err.code, 'MIGRATIONS_PENDING')
    assert.match(err.message, /still pending: 202501010002 \(V202501010002_posts\.js\)/)
    return true
  })
  await assert.rejects(runner.waitUntilMigrated({ version: 'soon' }), { code: 'CONFIG_INVALID' })
  let waitedAt = null
  const waited = runner.waitUntilMigrated().then((s) => ((waitedAt = Date.now()), s))

  // Release V2: the record and the lock's release show up within a second.
  fs.writeFileSync(path.join(dir, 'release'), '')
  const readyAt = await until(async () => (await get(`${server.url}/readyz`)).status === 200 && Date.now(), '/readyz 200')
  const freeAt = await until(async () => (await get(`${server.url}/healthz`)).body.lock === null && Date.now(), 'the lock free in /healthz')
  const done = await migration
  assert.equal(done.code, 0, done.stderr)
  const record = (await rawGet(emu, ns, 'schema_version'))[`v${V2}`]
  const tombstone = await rawGet(emu, ns, 'migrations/_lock')
  assert.ok(readyAt - record.finishedAt < 1000, `/readyz turned 200 ${readyAt - record.finishedAt} ms after V2 was recorded`)
  assert.ok(freeAt - tombstone.releasedAt < 1000, `/healthz showed the release ${freeAt - tombstone.releasedAt} ms after it`)
  const status = await waited
  assert.equal(status.upToDate, true)
  assert.equal(status.appliedVersion, V2)
  assert.ok(waitedAt - record.finishedAt < 1000, `waitUntilMigrated resolved ${waitedAt - record.finishedAt} ms after the record`)
  await until(() => server.stdout.includes(`Schema ready at ${V2}`), "the server's own waitUntilMigrated")

  // 1,000 probes after the run: no request at all.
  await resetCounts(emu)
  const afterRun = await probeMany(server.url, ['/healthz', '/readyz'], 500)
  assert.deepEqual(afterRun, { '/healthz': { 200: 500 }, '/readyz': { 200: 500 } })
  assert.equal((await counts(emu)).total, 0, 'no database request for 1,000 probes')

  // A lock taken by another process shows up in /healthz within a second.
  const ls = runner.getHandler().lockingService
  assert.equal(await ls.acquireLock('probe-holder'), true)
  const heldAt = await until(async () => (await get(`${server.url}/healthz`)).body.lock?.lockedBy === 'probe-holder' && Date.now(), 'the new holder in /healthz')
  const taken = await ls.getLockStatus()
  assert.ok(heldAt - taken.lockedAt.getTime() < 1000, `/healthz showed the holder ${heldAt - taken.lockedAt.getTime()} ms after it took the lock`)
  await until(() => server.stdout.includes('Lock changed: held by probe-holder'), "the example's watchLockStatus line")

  // /metrics: the Prometheus text format, the runner's metrics in prom-client's default registry
  // beside the app's own (its default metrics).
  const metrics = await get(`${server.url}/metrics`)
  assert.equal(metrics.status, 200)
  const { types, samples } = parsePrometheus(metrics.body)
  assert.equal(types.get('msr_lock_held'), 'gauge')
  assert.equal(types.get('msr_migrations_applied_total'), 'counter')
  assert.deepEqual(samples.msr_lock_held, [{ labels: {}, value: 1 }])
  assert.deepEqual(samples.msr_lock_holder_info, [{ labels: { executor: 'probe-holder', host: taken.hostname }, value: 1 }])
  const lease = samples.msr_lock_lease_remaining_seconds[0].value
  // (judged by the server-time estimate, a lower bound from second-granular Date headers)
  assert.ok(lease > 590 && lease < 602, `lease remaining ${lease}`)
  assert.deepEqual(samples.msr_migrations_applied_total, [{ labels: {}, value: 2 }])
  assert.deepEqual(samples.msr_migrations_pending, [{ labels: {}, value: 0 }])
  assert.ok(samples.process_cpu_user_seconds_total, "the app's own prom-client metrics are served too")
  assert.equal(samples.msr_last_run_success, undefined, 'no run in the server process: no last-run sample')
  await ls.releaseLock('probe-holder')

  // The database goes away: each probe answers 503 within its deadline, never hangs.
  await emu.stop()
  const [h, r] = await Promise.all([get(`${server.url}/healthz`), get(`${server.url}/readyz`)])
  for (const p of [h, r]) {
    assert.equal(p.status, 503, JSON.stringify(p.body))
    assert.equal(p.body.status, 'unavailable')
    assert.match(p.body.reason, /The database is unreachable/)
    assert.ok(p.ms < 2000, `answered in ${p.ms} ms`)
  }
  server.child.kill('SIGTERM')
})
