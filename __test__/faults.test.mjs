// The fault campaign (issue 7; lock properties L10–L12 of docs/lock-properties.md): the CLI under
// the faults production has every week — lost responses for every write it makes, 50% 503s with
// latency, outage windows, a database that dies, a holder paused past its lease (SIGSTOP), a
// script's process.exit() and crashes, a second SIGINT/SIGTERM, SIGTERM while waiting, a
// black-holed endpoint, a signal during a backup. Real processes, real signals, the embedded
// emulator's fault levers. Every scenario checks: no migration executed twice, none recorded
// twice, no live lock left behind.
//
// Bounded for CI (about a minute). FAULT_ROUNDS=N repeats the repeated scenarios N times and
// FAULT_FULL=1 adds the slow ones (both modes for every write, the default black-hole timing);
// `npm run bench` runs it that way. FAULT_REPORT=<file> appends the figures as one JSON line.
import test, { before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import helpers from './helpers.cjs'

const { startEmulator, uniqueNs, lever, tmpDir, ROOT } = helpers
const ROUNDS = Math.max(1, Number(process.env.FAULT_ROUNDS || 1))
const FULL = process.env.FAULT_FULL === '1'
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)))

helpers.clearDatabaseEnv()

let emu
const dirs = []
const live = new Set()
/** The campaign's figures (reported at the end). */
const fig = {
  runs: 0,
  doubleExecutions: 0,
  undoneByRestore: 0,
  doubleRecords: 0,
  liveLocksAfterExit: 0,
  staleWritesAfterTakeover: [],
  lostResponsesInjected: 0,
  sigtermWhileWaitingMs: [],
  secondSignalExitMs: [],
  blackHoleExitMs: [],
  exitCodes: {},
}

before(async () => {
  emu = await startEmulator({ port: 0 })
})

after(async () => {
  for (const c of live) c.kill('SIGKILL')
  await emu.stop()
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
  const line = JSON.stringify({ rounds: ROUNDS, full: FULL, ...fig })
  if (process.env.FAULT_REPORT) fs.appendFileSync(process.env.FAULT_REPORT, line + '\n')
  console.log(`# fault campaign: ${line}`)
})

// ---------------------------------------------------------------------------------------------
// Projects and scripts. Migration data lives under the shift `app` (history at
// app/schema_version, the lock at app/migrations/_lock); every script writes a few nodes there
// and, as its very last step, a completion marker at runs/<name> outside the shift (so that a
// backup restore never erases it): two markers for one migration = executed twice — unless the
// first run was rolled back by restoring its pre-run backup, which undoes every migration of
// that run (the history included), so running one of them again is the promise, not a breach.

const SHIFT = 'app'

/**
 * One migration's source. `hook` (JS run inside up() at `hookAt`: 'start', 'mid', 'end', 'after') lets a
 * scenario inject its fault from inside the script ('after': once everything is written, just before
 * up() resolves), e.g. start an outage.
 */
function script(name, { hook = '', hookAt = 'end', ticks = 0, tickMs = 100, extra = '' } = {}) {
  const at = (p) => (hookAt === p ? hook : '')
  return `
const LEVER = process.env.FAULT_LEVER
module.exports = {
  async up(db, info) {
    const d = db.database
    const lever = (name, body) => fetch(LEVER + '/' + name, { method: 'PUT', body: JSON.stringify(body) })
    ${at('start')}
    await d.ref('${SHIFT}/data/${name}').set({ v: 1, at: { '.sv': 'timestamp' } })
    await d.ref('${SHIFT}/data/${name}/n').transaction((x) => (x || 0) + 1)
    ${at('mid')}
    await d.ref('${SHIFT}/data').update({ ${JSON.stringify(`u_${name}`)}: true })
    for (let i = 0; i < ${ticks}; i++) {
      await d.ref('ticks/${name}').push({ pid: process.pid, at: { '.sv': 'timestamp' } })
      await new Promise((r) => setTimeout(r, ${tickMs}))
    }
    ${extra}
    ${at('end')}
    await d.ref('runs/${name}').push({ pid: process.pid, at: { '.sv': 'timestamp' } })
    ${at('after')}
  },
  async down(db) {
    await db.database.ref('${SHIFT}/data/${name}').remove()
  },
}
`
}

const mname = (i, tag = 'm') => `V2025010100${String(i).padStart(2, '0')}_${tag}${i}.js`

/** A project dir for namespace `ns` with `files` ({ name: source }) and msr.config.js. */
function project(ns, files, config = {}) {
  const dir = tmpDir('msr-faults-')
  dirs.push(dir)
  fs.mkdirSync(path.join(dir, 'migrations'))
  for (const [n, src] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'migrations', n), src)
  const cfg = {
    databaseUrl: emu.databaseUrl(ns),
    shift: SHIFT,
    ...config,
    locking: { enabled: true, timeout: 10000, ...config.locking },
  }
  fs.writeFileSync(path.join(dir, 'msr.config.js'), `module.exports = ${JSON.stringify(cfg, null, 2)}\n`)
  return dir
}

/** `msr-firebase <args>` in `dir`: { child, exited } with exited -> { code, signal, stdout, stderr, ms }. */
function start(dir, args = ['migrate'], env = {}) {
  const t0 = Date.now()
  const started = helpers.startCli(args, { cwd: dir, env: { FAULT_LEVER: `${emu.url}/.emulator`, ...env } })
  live.add(started.child)
  const exited = started.exited.then(({ code, signal, stdout, stderr }) => {
    live.delete(started.child)
    fig.runs += 1
    fig.exitCodes[code ?? signal] = (fig.exitCodes[code ?? signal] || 0) + 1
    const out = `exit ${code ?? signal}\n${stdout}\n${stderr}`
    return { code, signal, stdout, stderr, ms: Date.now() - t0, out, pid: started.child.pid, restoredBackup: RESTORED.test(out) }
  })
  return { ...started, exited }
}

const run = (dir, args, env) => start(dir, args, env).exited

/** What a run prints once its rollback restored the pre-run backup (the whole run undone). */
const RESTORED = /Rollback \(backup\) done in [\d.]+ s: restored the backup/

async function data(ns) {
  return (await emu.export())[ns] ?? {}
}

async function serverNow() {
  return (await lever(emu, 'GET', 'clock')).now
}

/** Poll `pred(data)` every 25 ms until true (bounded). */
async function until(ns, pred, what, ms = 15000) {
  const end = Date.now() + ms
  for (;;) {
    const d = await data(ns)
    if (pred(d)) return d
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(d).slice(0, 2000)}`)
    await sleep(25)
  }
}

/**
 * The three promises, checked on namespace `ns` once every process has exited: no migration
 * executed twice (completion markers), none recorded twice (history by version), no live lock
 * (held and not expired in server time). `executed`: names that must have run exactly once.
 * `undone`: the pids of runs whose rollback restored their pre-run backup — a marker they left
 * belongs to a run that was undone as a whole, and does not count (see the top of the file).
 */
async function invariants(ns, executed = [], undone = new Set()) {
  const d = await data(ns)
  const runs = d.runs || {}
  for (const [name, markers] of Object.entries(runs)) {
    const n = Object.values(markers).filter((m) => !undone.has(m.pid)).length
    if (n > 1) fig.doubleExecutions += 1
    assert.ok(n <= 1, `${name} executed ${n} times (not counting runs undone by a backup restore): ${JSON.stringify(markers)}`)
  }
  for (const name of executed) assert.ok(runs[name.replace(/\.js$/, '').replace(/^V\d+_/, '')], `${name} did not run`)
  const records = Object.values(d[SHIFT]?.schema_version || {})
  const byVersion = {}
  for (const r of records) byVersion[r.timestamp] = (byVersion[r.timestamp] || 0) + 1
  for (const [v, n] of Object.entries(byVersion)) {
    if (n > 1) fig.doubleRecords += 1
    assert.equal(n, 1, `version ${v} recorded ${n} times`)
  }
  for (const name of executed) {
    const v = Number(/^V(\d{12})_/.exec(name)[1])
    assert.equal(byVersion[v], 1, `${name} is not recorded`)
  }
  const lock = d[SHIFT]?.migrations?._lock
  const isLive = !!(lock && lock.executorId && lock.expiresAt > (await serverNow()))
  if (isLive) fig.liveLocksAfterExit += 1
  assert.ok(!isLive, `a live lock was left behind: ${JSON.stringify(lock)}`)
  return d
}

/** `check()`, its failure carrying what each process printed (a broken promise must say how). */
async function withOutputs(outs, check) {
  try {
    return await check()
  } catch (e) {
    e.message += '\n' + outs.map((o, i) => `--- process ${i + 1} (pid ${o.pid}, ${o.ms} ms): ${o.out}`).join('\n')
    throw e
  }
}

// ---------------------------------------------------------------------------------------------

test('lost responses: each write the runner makes is applied and its answer lost (drop / 500), one run per write: exit 0, each migration once', async () => {
  const files = { [mname(1)]: script('m1'), [mname(2)]: script('m2') }
  // How many writes one clean run makes.
  const ns0 = uniqueNs('lost0')
  const dir0 = project(ns0, files)
  await lever(emu, 'DELETE', 'requests')
  const clean = await run(dir0)
  assert.equal(clean.code, 0, clean.out)
  const by = (await lever(emu, 'GET', 'requests')).byMethod
  const writes = (by.PUT || 0) + (by.PATCH || 0) + (by.POST || 0) + (by.DELETE || 0)
  assert.ok(writes >= 10, `writes: ${JSON.stringify(by)}`)
  await invariants(ns0, Object.keys(files))
  const modes = FULL ? ['drop', '500'] : [null]
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < writes; k++) {
      for (const m of modes) {
        const mode = m ?? (k % 2 === 0 ? 'drop' : '500')
        const ns = uniqueNs(`lost${k}`)
        const dir = project(ns, files)
        await lever(emu, 'PUT', 'lost-responses', { skip: k, count: 1, mode })
        const out = await run(dir)
        const { lost } = await lever(emu, 'GET', 'lost-responses')
        await lever(emu, 'DELETE', 'lost-responses')
        fig.lostResponsesInjected += lost
        assert.equal(lost, 1, `write ${k} (${mode}): the fault was injected\n${out.out}`)
        assert.equal(out.code, 0, `write ${k} of ${writes} lost its answer (${mode}):\n${out.out}`)
        await invariants(ns, Object.keys(files))
      }
    }
  }
})

test('50% 503s with latency: rounds of 3 concurrent migrate processes; every migration once, no live lock', async () => {
  const ns = uniqueNs('flaky')
  const dir = project(ns, {}, { locking: { timeout: 10000 } })
  const all = []
  const undone = new Set()
  const outputs = []
  await lever(emu, 'PUT', 'latency', { ms: 5 })
  await lever(emu, 'PUT', 'faults', { unavailableProbability: 0.5 })
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const i of [2 * round + 1, 2 * round + 2]) {
        const f = mname(i, 'f')
        fs.writeFileSync(path.join(dir, 'migrations', f), script(`f${i}`))
        all.push(f)
      }
      const outs = await Promise.all([0, 1, 2].map(() => run(dir)))
      // A storm may outlast a request's retries anywhere: in a migration (3), the connection
      // check (7), or the pre-run backup (5, seven 503s in a row on one of its reads). Each is a
      // clean failure; what must hold is below.
      for (const o of outs) assert.ok([0, 3, 5, 7].includes(o.code), o.out)
      for (const o of outs.filter((o) => o.restoredBackup)) {
        undone.add(o.pid)
        fig.undoneByRestore += 1
      }
      outputs.push(...outs)
      await withOutputs(outs, () => invariants(ns, [], undone))
    }
  } finally {
    await lever(emu, 'PUT', 'faults', { unavailableProbability: 0 })
    await lever(emu, 'PUT', 'latency', { ms: 0 })
  }
  // Whatever a 503 storm stopped runs now, once.
  const last = await run(dir)
  assert.equal(last.code, 0, last.out)
  await withOutputs([...outputs, last], () => invariants(ns, all, undone))
})

test('outage windows: ridden out at the start, mid-script and right after up() (lease 4 s)', async () => {
  for (let round = 0; round < ROUNDS; round++) {
    for (const [hookAt, ms] of [
      ['start', 1500],
      ['mid', 2000],
      ['after', 2500],
    ]) {
      const ns = uniqueNs(`out-${hookAt}`)
      const files = { [mname(1)]: script('m1', { hookAt, hook: `await lever('outage', { ms: ${ms} })` }), [mname(2)]: script('m2') }
      const dir = project(ns, files, { locking: { timeout: 4000 } })
      const out = await run(dir)
      assert.equal(out.code, 0, `${ms} ms outage at ${hookAt}:\n${out.out}`)
      await invariants(ns, Object.keys(files))
    }
  }
})

test('an outage longer than the lease right after up(): exit 7 naming the migration that ran unrecorded; --mark-applied then records it; no second execution', async () => {
  const ns = uniqueNs('out-long')
  const files = { [mname(1)]: script('m1', { hookAt: 'after', hook: "await lever('outage', { ms: 3500 })" }) }
  const dir = project(ns, files, { locking: { timeout: 1500 } })
  const out = await run(dir)
  assert.equal(out.code, 7, out.out)
  assert.match(out.stderr, /V202501010001_m1\.js RAN/)
  assert.match(out.stderr, /NOT RECORDED/)
  assert.match(out.stderr, /migrate --mark-applied 202501010001/)
  assert.doesNotMatch(out.stderr, /Migration lock lost/)
  await sleep(1000) // the outage ends
  await invariants(ns) // ran once (its marker), not recorded, the lock expired
  const mark = await run(dir, ['migrate', '--mark-applied', '202501010001'])
  assert.equal(mark.code, 0, mark.out)
  const again = await run(dir)
  assert.equal(again.code, 0, again.out)
  await invariants(ns, Object.keys(files))
})

test('the database dies mid-run: exit 7 (connection), never a lock error', async () => {
  const ns = uniqueNs('dies')
  const files = { [mname(1)]: script('m1', { hookAt: 'mid', hook: "await lever('outage', { ms: 60000 })" }) }
  const dir = project(ns, files, { locking: { timeout: 1500 }, network: { retryWindow: 1000 } })
  try {
    const out = await run(dir)
    assert.equal(out.code, 7, out.out)
    assert.match(out.stderr, /could not reach the database/i)
    assert.doesNotMatch(out.stderr, /Migration lock lost|LOCK_LOST/)
  } finally {
    await lever(emu, 'DELETE', 'outage')
  }
  await sleep(1600) // the dead run's lease expires on its own
  await invariants(ns)
})

test('SIGSTOP a holder past its lease: the new holder runs the migration, the paused one is fenced (stale writes ≤ 1), nothing runs twice', async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const ns = uniqueNs('stop')
    const name = mname(1, 'slow')
    const files = { [name]: script('slow1', { ticks: 25, tickMs: 100 }) }
    const dir = project(ns, files, { locking: { timeout: 2000 }, rollbackStrategy: 'backup' })
    const h = start(dir)
    await until(ns, (d) => d.ticks?.slow1, "the holder's first write")
    h.child.kill('SIGSTOP')
    const stoppedAt = Date.now()
    const c = start(dir)
    // The contender takes over once the paused holder's lease has expired.
    const taken = await until(ns, (d) => d[SHIFT]?.migrations?._lock?.epoch === 2 && d[SHIFT].migrations._lock.executorId, 'the takeover')
    const takeoverAt = taken[SHIFT].migrations._lock.lockedAt
    await sleep(Math.max(0, 3500 - (Date.now() - stoppedAt)))
    h.child.kill('SIGCONT')
    const [ho, co] = await Promise.all([h.exited, c.exited])
    assert.equal(co.code, 0, `contender:\n${co.out}`)
    assert.equal(ho.code, 3, `paused holder:\n${ho.out}`)
    assert.match(ho.stderr, /lock/i)
    assert.match(ho.stderr, /No rollback was run|not recorded/)
    const d = await invariants(ns, [name])
    const stale = Object.values(d.ticks.slow1).filter((t) => t.pid === h.child.pid && t.at >= takeoverAt).length
    fig.staleWritesAfterTakeover.push(stale)
    assert.ok(stale <= 1, `${stale} writes of the paused holder landed after the takeover`)
    const rec = Object.values(d[SHIFT].schema_version)[0]
    assert.equal(rec.lockEpoch, 2, 'recorded by the new holder')
  }
})

test('process.exit() in a script (in up() and in a timer), an uncaught exception and an unhandled rejection: the script fails (exit 3, named), it is rolled back, the lock is released; fixed, it runs once', async () => {
  const variants = [
    ['process.exit(0)', /called process\.exit\(0\)/],
    ['setTimeout(() => process.exit(1), 10); await new Promise((r) => setTimeout(r, 2000))', /called process\.exit\(1\)/],
    ["setTimeout(() => { throw new Error('boom in a timer') }, 10); await new Promise((r) => setTimeout(r, 2000))", /uncaught exception: boom in a timer/],
    ["Promise.reject(new Error('nobody awaits me')); await new Promise((r) => setTimeout(r, 2000))", /promise rejection unhandled: nobody awaits me/],
  ]
  for (const [code, re] of variants) {
    const ns = uniqueNs('exit')
    const bad = mname(2, 'bad')
    const files = { [mname(1)]: script('m1'), [bad]: script('bad2', { hookAt: 'mid', hook: code }) }
    // m1 first, on its own (the rollback then restores the backup taken after it).
    const dir = project(ns, { [mname(1)]: files[mname(1)] })
    assert.equal((await run(dir)).code, 0)
    fs.writeFileSync(path.join(dir, 'migrations', bad), files[bad])
    const out = await run(dir)
    assert.equal(out.code, 3, `${code}:\n${out.out}`)
    assert.match(out.stderr, re)
    assert.match(out.stderr, /V202501010002_bad2\.js/)
    let d = await invariants(ns, [mname(1)])
    assert.equal(d[SHIFT].data.bad2, undefined, `${code}: rolled back (backup restored)`)
    assert.equal(d.runs.bad2, undefined)
    assert.equal(d[SHIFT].migrations._lock.executorId, undefined, 'released')
    fs.writeFileSync(path.join(dir, 'migrations', bad), script('bad2'))
    const fixed = await run(dir)
    assert.equal(fixed.code, 0, fixed.out)
    d = await invariants(ns, Object.keys(files))
  }
})

test('the library: runner.migrate() with a script calling process.exit(0) rejects with SCRIPT_FAILED; the process lives on and the lock is released', async () => {
  const ns = uniqueNs('lib-exit')
  const dir = project(ns, { [mname(1)]: script('m1', { hookAt: 'mid', hook: 'process.exit(0)' }) })
  const src = `
import { FirebaseRunner } from ${JSON.stringify(path.join(ROOT, 'index.js'))}
const config = (await import(${JSON.stringify(path.join(dir, 'msr.config.js'))})).default
const runner = await FirebaseRunner.getInstance({ config: { ...config, folder: ${JSON.stringify(path.join(dir, 'migrations'))} }, logger: () => {} })
try { await runner.migrate(); console.log('resolved') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }
console.log('still alive')
`
  const out = await helpers.runNode(['--input-type=module', '-e', src], { cwd: dir, env: { FAULT_LEVER: `${emu.url}/.emulator` } })
  assert.equal(out.code, 0, out.stderr)
  const lines = out.stdout.trim().split('\n')
  assert.equal(lines.at(-1), 'still alive', out.stdout)
  const err = JSON.parse(lines[0])
  assert.equal(err.code, 'SCRIPT_FAILED', out.stdout)
  assert.match(err.message, /process\.exit\(0\)/)
  const d = await invariants(ns)
  assert.equal(d[SHIFT].migrations._lock.executorId, undefined)
})

test('process.exit() outside a script (runExclusive work): the exit hook releases the lock', async () => {
  const ns = uniqueNs('exit-hook')
  const src = `
import { FirebaseRunner } from ${JSON.stringify(path.join(ROOT, 'index.js'))}
const runner = await FirebaseRunner.getInstance({ config: { databaseUrl: ${JSON.stringify(emu.databaseUrl(ns))}, shift: '${SHIFT}', locking: { enabled: true, timeout: 60000 } }, logger: () => {} })
await runner.getHandler().lockingService.runExclusive(async () => {
  if (process.env.NO_EXIT_LISTENERS) process.removeAllListeners('exit')
  process.exit(0)
})
`
  for (const env of [{}, { NO_EXIT_LISTENERS: '1' }]) {
    const out = await helpers.runNode(['--input-type=module', '-e', src], { env })
    fig.runs += 1
    assert.equal(out.code, 0, out.stderr)
    const d = await invariants(ns)
    assert.equal(d[SHIFT].migrations._lock.executorId, undefined, `released at exit (${JSON.stringify(env)})`)
  }
})

test('a second SIGINT / SIGTERM releases the lock and exits 130 / 143 at once; the migration then runs once', async () => {
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ]) {
    const ns = uniqueNs('twice')
    const name = mname(1, 'long')
    const dir = project(ns, { [name]: script('long1', { ticks: 200, tickMs: 100 }) })
    const h = start(dir)
    await until(ns, (d) => d.ticks?.long1, 'the script running')
    h.child.kill(sig)
    await sleep(200)
    const t0 = Date.now()
    h.child.kill(sig)
    const out = await h.exited
    fig.secondSignalExitMs.push(Date.now() - t0)
    assert.equal(out.code, code, out.out)
    const d = await invariants(ns)
    assert.equal(d[SHIFT].migrations._lock.executorId, undefined, `${sig} twice: the lock is released`)
    assert.equal(d[SHIFT].schema_version, undefined, 'nothing recorded')
    fs.writeFileSync(path.join(dir, 'migrations', name), script('long1'))
    const again = await run(dir)
    assert.equal(again.code, 0, again.out)
    await invariants(ns, [name])
  }
})

test('SIGTERM while waiting for the lock: the wait ends at once, nothing is written, exit 3', async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const ns = uniqueNs('wait-term')
    const name = mname(1, 'hold')
    const dir = project(ns, { [name]: script('hold1', { ticks: 30, tickMs: 100 }) })
    const h = start(dir)
    await until(ns, (d) => d.ticks?.hold1, 'the holder running')
    const held = (await data(ns))[SHIFT].migrations._lock
    const w = start(dir)
    for (let i = 0; i < 200 && !/Waiting for the migration lock/.test(w.err()); i++) await sleep(25)
    assert.match(w.err(), /Waiting for the migration lock/)
    const t0 = Date.now()
    w.child.kill('SIGTERM')
    const wo = await w.exited
    const ms = Date.now() - t0
    fig.sigtermWhileWaitingMs.push(ms)
    assert.equal(wo.code, 3, wo.out)
    assert.match(wo.stderr, /Stopped while waiting for the migration lock/)
    assert.ok(ms < 2000, `exit took ${ms} ms`)
    // The waiter never took the lock: still the holder's record and epoch.
    const now = (await data(ns))[SHIFT].migrations._lock
    assert.deepEqual([now.executorId, now.epoch], [held.executorId, held.epoch])
    const ho = await h.exited
    assert.equal(ho.code, 0, ho.out)
    const d = await invariants(ns, [name])
    assert.equal(d[SHIFT].migrations._lock.epoch, 1, 'only the holder ever held it')
  }
})

test('scriptTimeout: a script that never settles fails the run (exit 3, SCRIPT_TIMEOUT naming it), the lock is released, nothing recorded', async () => {
  const ns = uniqueNs('timeout')
  const name = mname(1, 'hang')
  const dir = project(ns, { [name]: script('hang1', { hookAt: 'mid', hook: 'await new Promise(() => {})' }) })
  const out = await run(dir, ['migrate', '--script-timeout', '500'])
  assert.equal(out.code, 3, out.out)
  assert.match(out.stderr, /V202501010001_hang1\.js: up\(\) did not finish within scriptTimeout \(500 ms\)/)
  const d = await invariants(ns)
  assert.equal(d[SHIFT].migrations._lock.executorId, undefined)
  assert.equal(d[SHIFT].schema_version, undefined)
  // The same from the environment.
  const env = await run(dir, ['migrate'], { MSR_SCRIPT_TIMEOUT: '300' })
  assert.equal(env.code, 3, env.out)
  assert.match(env.stderr, /scriptTimeout \(300 ms\)/)
})

test('a black-holed endpoint (accepts, never answers): exit 7 naming the host and the timeout, a line on stderr while retrying', async () => {
  const sockets = new Set()
  const srv = net.createServer((s) => {
    sockets.add(s)
    s.on('data', () => {})
  })
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  const hostPort = `127.0.0.1:${srv.address().port}`
  const dir = project(uniqueNs('hole'), { [mname(1)]: script('m1') }, { databaseUrl: `http://${hostPort}?ns=hole` })
  try {
    // Short deadlines here; FAULT_FULL measures the defaults (the bound is 60 s).
    const envs = [{ MSR_NETWORK_RESPONSE_TIMEOUT: '700', MSR_NETWORK_RETRY_WINDOW: '1500' }, ...(FULL ? [{}] : [])]
    for (const env of envs) {
      const out = await run(dir, ['migrate'], env)
      fig.blackHoleExitMs.push({ env, ms: out.ms })
      assert.equal(out.code, 7, out.out)
      assert.match(out.stderr, new RegExp(`Could not reach the database at http://${hostPort.replace(/\./g, '\\.')}`))
      assert.match(out.stderr, /no response within .* \(timed out\)/)
      assert.match(out.stderr, new RegExp(`⚠ Could not reach the database at ${hostPort.replace(/\./g, '\\.')} .*; retry 1`))
      assert.ok(out.ms < 60000, `${out.ms} ms`)
    }
  } finally {
    for (const s of sockets) s.destroy()
    srv.close()
  }
})

test('backup create: SIGTERM stops it and removes the temp file (exit 5); a SIGKILLed backup’s temp file is swept by the next one', async () => {
  const ns = uniqueNs('bk')
  const dir = project(ns, {})
  await helpers.rawPut(emu, ns, SHIFT, { data: { a: 1 } })
  const backups = path.join(dir, 'backups')
  await lever(emu, 'PUT', 'latency', { ms: 3000 })
  try {
    for (const sig of ['SIGTERM', 'SIGKILL']) {
      const b = start(dir, ['backup', 'create'])
      for (let i = 0; i < 200 && !(fs.existsSync(backups) && fs.readdirSync(backups).length); i++) await sleep(25)
      assert.equal(fs.readdirSync(backups).length, 1, 'the temp file is being written')
      b.child.kill(sig)
      const out = await b.exited
      if (sig === 'SIGTERM') {
        assert.equal(out.code, 5, out.out)
        assert.match(out.stderr, /interrupted/)
        assert.deepEqual(fs.readdirSync(backups), [], 'no file left, hidden or not')
      } else {
        assert.equal(out.signal, 'SIGKILL')
        assert.equal(fs.readdirSync(backups).length, 1, 'a SIGKILLed backup leaves its temp file')
      }
    }
  } finally {
    await lever(emu, 'PUT', 'latency', { ms: 0 })
  }
  const ok = await run(dir, ['backup', 'create'])
  assert.equal(ok.code, 0, ok.out)
  const left = fs.readdirSync(backups)
  assert.equal(left.length, 1, `only the new backup: ${left}`)
  assert.ok(!left[0].startsWith('.'), left[0])
})
