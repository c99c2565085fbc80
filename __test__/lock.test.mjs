// The distributed migration lock: the locking guide's examples and CLI output (the user guide of
// migration locking, quoted word for word) and lock properties L1–L9 (docs/lock-properties.md), with real
// processes, real signals and one embedded emulator for the whole file.
import test, { before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import helpers from './helpers.cjs'
import { FirebaseRunner, FirebaseConfig } from '../index.js'

const { startEmulator, uniqueNs, lever, rawGet, rawPut, tmpDir, runNode, cli, exampleMigrations, ROOT } = helpers
const WORKER = path.join(ROOT, '__test__', 'fixtures', 'lock-worker.mjs')
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)))
const iso = (ms) => new Date(ms).toISOString()

// This process connects through config.databaseUrl; child processes get what they need explicitly.
delete process.env.FIREBASE_DATABASE_EMULATOR_HOST
delete process.env.FIREBASE_DATABASE_URL
delete process.env.DATABASE_URL
delete process.env.GOOGLE_APPLICATION_CREDENTIALS
delete process.env.MSR_CLOCK_SKEW_MS

let emu
const live = new Set()
const tmpDirs = []
function scratch(prefix) {
  const d = tmpDir(prefix)
  tmpDirs.push(d)
  return d
}

before(async () => {
  emu = await startEmulator({ port: 0 })
})

after(async () => {
  for (const child of live) child.kill('SIGKILL')
  await emu.stop()
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true })
})

const lockNode = (ns, shift) => rawGet(emu, ns, shift ? `${shift}/migrations/_lock` : 'migrations/_lock')

/** A FirebaseRunner in this process on namespace `ns` with locking enabled (unless overridden). */
function connect(ns, extra = {}) {
  const config = new FirebaseConfig()
  config.databaseUrl = emu.databaseUrl(ns)
  config.locking = { enabled: true, timeout: 600000 }
  config.assign(extra)
  return FirebaseRunner.getInstance({ config, logger: () => {} })
}

async function lockingService(ns, extra) {
  return (await connect(ns, extra)).getHandler().lockingService
}

/**
 * A lock worker process (fixtures/lock-worker.mjs). `events` collects its JSON lines;
 * `waitFor(ev)` resolves with the first event named `ev`; `exited` with `{ code, signal }`.
 */
function startWorker(spec, env = {}) {
  const child = spawn(process.execPath, [WORKER, JSON.stringify(spec)], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', LOCK_TEST_WORKER: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  live.add(child)
  const w = { child, pid: child.pid, events: [], stderr: '', listeners: new Set() }
  let buf = ''
  child.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      let ev
      try {
        ev = JSON.parse(line)
      } catch {
        ev = { ev: 'text', line, at: Date.now() }
      }
      w.events.push(ev)
      for (const l of w.listeners) l(ev)
    }
  })
  child.stderr.on('data', (d) => (w.stderr += d))
  w.exited = new Promise((resolve) =>
    child.on('close', (code, signal) => {
      live.delete(child)
      resolve({ code, signal })
    }),
  )
  const describe = () => `worker ${child.pid} (${spec.mode}): events ${JSON.stringify(w.events)} stderr ${w.stderr}`
  w.waitFor = (match, timeoutMs = 15000) => {
    const pred = typeof match === 'function' ? match : (e) => e.ev === match
    const hit = w.events.find(pred)
    if (hit) return Promise.resolve(hit)
    return new Promise((resolve, reject) => {
      const done = (fn, v) => {
        clearTimeout(timer)
        w.listeners.delete(listener)
        fn(v)
      }
      const listener = (e) => pred(e) && done(resolve, e)
      const timer = setTimeout(() => done(reject, new Error(`no ${match} within ${timeoutMs} ms: ${describe()}`)), timeoutMs)
      w.listeners.add(listener)
      w.exited.then(() => setImmediate(() => done(reject, new Error(`exited before ${match}: ${describe()}`))))
    })
  }
  w.describe = describe
  return w
}

const SKEW = (ms) => ({ MSR_CLOCK_SKEW_MS: String(ms) })

// ---------------------------------------------------------------------------------------------
// The guide's JS examples, run as printed in their own processes (only the database URL comes
// from the emulator, through FIREBASE_DATABASE_URL, and locking is switched on in the config,
// since the guide's default for `locking.enabled` is false).

const GUIDE_SETUP = `import { FirebaseRunner, FirebaseConfig } from '@migration-script-runner/firebase';

const appConfig = new FirebaseConfig();
appConfig.folder = './migrations';
appConfig.tableName = 'schema_version';
appConfig.databaseUrl = process.env.FIREBASE_DATABASE_URL;
appConfig.applicationCredentials = process.env.GOOGLE_APPLICATION_CREDENTIALS;
appConfig.locking = { enabled: true, timeout: 600000 };  // (added: the guide's msr.config.js setting)

const runner = await FirebaseRunner.getInstance({ config: appConfig });
const handler = runner.getHandler();
`

const HEALTH_CHECK = `${GUIDE_SETUP}
if (handler.lockingService) {
  const lockStatus = await handler.lockingService.getLockStatus();
  console.log('Lock status:', lockStatus);
}
`

const MONITORING = `import { FirebaseRunner, FirebaseConfig } from '@migration-script-runner/firebase';

async function monitorLock() {
  const appConfig = new FirebaseConfig();
  appConfig.folder = './migrations';
  appConfig.tableName = 'schema_version';
  appConfig.databaseUrl = process.env.FIREBASE_DATABASE_URL;
  appConfig.applicationCredentials = process.env.GOOGLE_APPLICATION_CREDENTIALS;
  appConfig.locking = { enabled: true, timeout: 600000 };  // (added)

  const runner = await FirebaseRunner.getInstance({ config: appConfig });
  const handler = runner.getHandler();

  if (!handler.lockingService) {
    console.log('Locking not enabled');
    return;
  }

  const status = await handler.lockingService.getLockStatus();

  if (status && status.isLocked) {
    console.log('Migration in progress:', {
      executor: status.lockedBy,
      started: status.lockedAt,
      expires: status.expiresAt,
      duration: Date.now() - status.lockedAt.getTime()
    });
  }
}

setInterval(monitorLock, 60000);  // Check every minute
await monitorLock(); process.exit(0);  // (added: one check now, then stop)
`

const PROGRAMMATIC = `${GUIDE_SETUP}
// Check if locking is enabled
if (handler.lockingService) {
  // Get current lock status
  const status = await handler.lockingService.getLockStatus();

  // Force release if needed
  if (status && isStuckLock(status)) {
    await handler.lockingService.forceReleaseLock();
  }
}

function isStuckLock(status) {
  const ageMinutes = (Date.now() - status.lockedAt.getTime()) / 60000;
  return ageMinutes > 30;  // Stuck if older than 30 minutes
}
`

const LOG_ACQUISITION = `import { hostname } from 'os';
import { randomUUID as uuidv4 } from 'crypto';  // (the guide uses the uuid package)
${GUIDE_SETUP}
const lockingService = handler.lockingService;
const executorId = \`\${hostname()}-\${process.pid}-\${uuidv4()}\`;

// In your migration runner
const lockAcquired = await lockingService.acquireLock(executorId);
if (lockAcquired) {
  console.log(\`Lock acquired by \${executorId}\`);
} else {
  console.log('Failed to acquire lock - another process is running migrations');
}
`

const TRY_CATCH = `${GUIDE_SETUP}
try {
  await runner.migrate();
} catch (error) {
  if (error.message.includes('lock')) {
    console.log('Migrations skipped - lock held by another process');
    process.exit(0);  // Exit gracefully
  }
  throw error;
}
console.log('Migrations done');
`

/** A project dir where `@migration-script-runner/firebase` resolves to this package. */
function guideProject({ migrations = false } = {}) {
  const dir = migrations ? exampleMigrations(scratch('msr-lock-guide-')) : scratch('msr-lock-guide-')
  const scope = path.join(dir, 'node_modules', '@migration-script-runner')
  fs.mkdirSync(scope, { recursive: true })
  fs.symlinkSync(ROOT, path.join(scope, 'firebase'), 'dir')
  return dir
}

async function runGuide(dir, name, source, ns) {
  fs.writeFileSync(path.join(dir, name), source)
  let pid
  const res = await runNode([name], {
    cwd: dir,
    env: { FIREBASE_DATABASE_URL: emu.databaseUrl(ns) },
    timeoutMs: 20000,
    onSpawn: (c) => (pid = c.pid),
  })
  return { ...res, pid }
}

test('guide: health check prints the lock status; getLockStatus() shape (Dates, real pid)', async () => {
  const ns = uniqueNs('health')
  const dir = guideProject()
  const ls = await lockingService(ns)
  assert.equal(await ls.getLockStatus(), null, 'no lock yet')
  const none = await runGuide(dir, 'health.mjs', HEALTH_CHECK, ns)
  assert.equal(none.code, 0, none.stderr)
  assert.equal(none.stdout, 'Lock status: null\n')

  const before = Date.now()
  assert.equal(await ls.acquireLock('web-server-1-12345-a1b2c3d4'), true)
  const status = await ls.getLockStatus()
  assert.equal(status.isLocked, true)
  assert.equal(status.lockedBy, 'web-server-1-12345-a1b2c3d4')
  assert.ok(status.lockedAt instanceof Date && status.expiresAt instanceof Date)
  assert.ok(Math.abs(status.lockedAt.getTime() - before) < 5000, `lockedAt ${status.lockedAt.toISOString()}`)
  const lease = status.expiresAt.getTime() - status.lockedAt.getTime()
  assert.ok(lease > 595000 && lease <= 600000, `lease ${lease}`)
  assert.equal(status.processId, process.pid, 'the real pid, not parsed from the executor id')

  const rec = await lockNode(ns)
  assert.equal(rec.executorId, 'web-server-1-12345-a1b2c3d4')
  assert.equal(rec.hostname, os.hostname())
  assert.equal(rec.processId, process.pid)
  assert.equal(rec.lockedAt, status.lockedAt.getTime())
  assert.equal(rec.expiresAt, status.expiresAt.getTime())

  const held = await runGuide(dir, 'health.mjs', HEALTH_CHECK, ns)
  assert.equal(held.code, 0, held.stderr)
  assert.match(held.stdout, /^Lock status: \{/)
  assert.match(held.stdout, /isLocked: true/)
  assert.match(held.stdout, /lockedBy: 'web-server-1-12345-a1b2c3d4'/)
  assert.ok(held.stdout.includes(`lockedAt: ${status.lockedAt.toISOString()}`), held.stdout)
  assert.ok(held.stdout.includes(`expiresAt: ${status.expiresAt.toISOString()}`), held.stdout)
  assert.ok(held.stdout.includes(`processId: ${process.pid}`), held.stdout)
})

test('guide: lock status monitoring reports the running migration', async () => {
  const ns = uniqueNs('monitor')
  const dir = guideProject()
  const ls = await lockingService(ns)
  assert.equal(await ls.acquireLock('monitor-holder'), true)
  const status = await ls.getLockStatus()
  const res = await runGuide(dir, 'monitor.mjs', MONITORING, ns)
  assert.equal(res.code, 0, res.stderr)
  assert.match(res.stdout, /^Migration in progress: \{/)
  assert.match(res.stdout, /executor: 'monitor-holder'/)
  assert.ok(res.stdout.includes(`started: ${status.lockedAt.toISOString()}`), res.stdout)
  assert.ok(res.stdout.includes(`expires: ${status.expiresAt.toISOString()}`), res.stdout)
  assert.match(res.stdout, /duration: \d+/)
})

test('guide: programmatic lock management force-releases a stuck lock and keeps a fresh one', async () => {
  const ns = uniqueNs('manage')
  const dir = guideProject()
  const now = Date.now()
  await rawPut(emu, ns, 'migrations/_lock', {
    executorId: 'web-server-2-67890-e5f6g7h8',
    lockedAt: now - 31 * 60000,
    expiresAt: now + 10 * 60000,
    hostname: 'web-server-2',
    processId: 67890,
    epoch: 5,
  })
  const stuck = await runGuide(dir, 'manage.mjs', PROGRAMMATIC, ns)
  assert.equal(stuck.code, 0, stuck.stderr)
  const after = await lockNode(ns)
  assert.equal(after?.executorId, undefined, `stuck lock released: ${JSON.stringify(after)}`)
  assert.equal(after.epoch, 5, 'the fencing epoch survives a release')

  const ls = await lockingService(ns)
  assert.equal(await ls.acquireLock('fresh-holder'), true)
  const fresh = await runGuide(dir, 'manage.mjs', PROGRAMMATIC, ns)
  assert.equal(fresh.code, 0, fresh.stderr)
  const kept = await lockNode(ns)
  assert.equal(kept.executorId, 'fresh-holder')
  assert.equal(kept.epoch, 6)
})

test('guide: acquireLock(executorId) logging example, in two processes', async () => {
  const ns = uniqueNs('logacq')
  const dir = guideProject()
  const first = await runGuide(dir, 'acquire.mjs', LOG_ACQUISITION, ns)
  assert.equal(first.code, 0, first.stderr)
  const m = /^Lock acquired by (.+)\n$/.exec(first.stdout)
  assert.ok(m, first.stdout)
  assert.equal(m[1], `${os.hostname()}-${first.pid}-${m[1].split('-').slice(-5).join('-')}`)
  const rec = await lockNode(ns)
  assert.equal(rec.executorId, m[1])
  assert.equal(rec.processId, first.pid)
  assert.equal(rec.hostname, os.hostname())

  const second = await runGuide(dir, 'acquire.mjs', LOG_ACQUISITION, ns)
  assert.equal(second.code, 0, second.stderr)
  assert.equal(second.stdout, 'Failed to acquire lock - another process is running migrations\n')
  assert.equal((await lockNode(ns)).executorId, m[1])
})

test("guide: try/catch runner.migrate(): LOCK_HELD with the guide's message; skips gracefully", async () => {
  const ns = uniqueNs('trycatch')
  const dir = guideProject({ migrations: true })
  const holder = await connect(ns)
  const ls = holder.getHandler().lockingService
  assert.equal(await ls.acquireLock('web-server-2-67890-e5f6g7h8'), true)
  const status = await ls.getLockStatus()

  const second = await connect(ns, { folder: path.join(dir, 'migrations') })
  const err = await second.migrate().then(
    () => assert.fail('migrate() must reject while another process holds the lock'),
    (e) => e,
  )
  assert.equal(err.code, 'LOCK_HELD')
  assert.ok(err.message.includes('lock'))
  assert.equal(
    err.message,
    [
      'Migration lock is currently held by another process.',
      'Executor: web-server-2-67890-e5f6g7h8',
      `Locked since: ${status.lockedAt.toISOString()}`,
      `Expires at: ${status.expiresAt.toISOString()}`,
      '',
      'If you believe this is a stale lock, use: msr-firebase lock:release --force',
    ].join('\n'),
  )
  assert.equal(await rawGet(emu, ns, 'schema_version'), null, 'nothing ran')

  const skipped = await runGuide(dir, 'migrate.mjs', TRY_CATCH, ns)
  assert.equal(skipped.code, 0, skipped.stderr)
  assert.match(skipped.stdout, /Migrations skipped - lock held by another process\n$/)
  assert.equal(await rawGet(emu, ns, 'schema_version'), null, 'nothing ran')

  await ls.releaseLock('web-server-2-67890-e5f6g7h8')
  const ran = await runGuide(dir, 'migrate.mjs', TRY_CATCH, ns)
  assert.equal(ran.code, 0, ran.stderr)
  assert.match(ran.stdout, /Migrations done\n$/)
  assert.equal(Object.keys(await rawGet(emu, ns, 'schema_version')).length, 4)
  assert.equal((await lockNode(ns)).executorId, undefined, 'released after the run')
})

test('config: locking as a plain object literal; disabled -> no lockingService; one handler', async () => {
  const ns = uniqueNs('plain')
  const runner = await FirebaseRunner.getInstance({
    config: { databaseUrl: emu.databaseUrl(ns), locking: { enabled: true, timeout: 600000 } },
    logger: () => {},
  })
  const handler = runner.getHandler()
  assert.equal(runner.getHandler(), handler)
  assert.ok(handler.lockingService)
  assert.equal(await handler.lockingService.acquireLock('plain-1'), true)
  const rec = await lockNode(ns)
  assert.ok(rec.expiresAt - rec.lockedAt > 595000 && rec.expiresAt - rec.lockedAt <= 600000, JSON.stringify(rec))

  const cfg = new FirebaseConfig()
  cfg.databaseUrl = emu.databaseUrl(ns)
  cfg.locking = { enabled: true, timeout: 300000 }
  assert.equal(cfg.locking.timeout, 300000)
  const ls300 = (await FirebaseRunner.getInstance({ config: cfg, logger: () => {} })).getHandler().lockingService
  await ls300.forceReleaseLock()
  assert.equal(await ls300.acquireLock('plain-2'), true)
  const rec2 = await lockNode(ns)
  assert.ok(rec2.expiresAt - rec2.lockedAt > 295000 && rec2.expiresAt - rec2.lockedAt <= 300000, JSON.stringify(rec2))

  const off = await FirebaseRunner.getInstance({ config: { databaseUrl: emu.databaseUrl(ns) }, logger: () => {} })
  assert.equal(off.getHandler().lockingService, undefined)
  assert.equal(off.getHandler(), off.getHandler())
  const off2 = await FirebaseRunner.getInstance({ config: { databaseUrl: emu.databaseUrl(ns), locking: { enabled: false } }, logger: () => {} })
  assert.equal(off2.getHandler().lockingService, undefined)
})

// ---------------------------------------------------------------------------------------------
// Lock properties with real processes.

test('L1: 20 processes race each round; exactly one wins and the record is the winner’s', async () => {
  const ns = uniqueNs('l1')
  const url = emu.databaseUrl(ns)
  const N = 20
  const ROUNDS = 4
  const PERIOD = 1200
  const HOLD = 800
  const workers = Array.from({ length: N }, (_, i) => startWorker({ mode: 'race', url, id: `racer-${i}` }))
  await Promise.all(workers.map((w) => w.waitFor('ready', 30000)))
  const t0 = Date.now() + 300
  for (const w of workers) w.child.stdin.write(JSON.stringify({ t0, period: PERIOD, rounds: ROUNDS, hold: HOLD }) + '\n')

  const seen = []
  for (let r = 0; r < ROUNDS; r++) {
    await sleep(t0 + r * PERIOD + HOLD / 2 + 100 - Date.now())
    seen.push(await lockNode(ns))
  }
  const exits = await Promise.all(workers.map((w) => w.exited))
  exits.forEach((e, i) => assert.equal(e.code, 0, workers[i].describe()))

  for (let r = 0; r < ROUNDS; r++) {
    const results = workers.map((w) => w.events.find((e) => e.ev === 'round' && e.r === r))
    assert.ok(results.every(Boolean), `every worker tried in round ${r}`)
    const winners = results.filter((e) => e.won)
    assert.equal(winners.length, 1, `round ${r}: winners ${JSON.stringify(winners)}`)
    assert.equal(seen[r]?.executorId, winners[0].id, `round ${r}: record ${JSON.stringify(seen[r])}`)
    assert.equal(seen[r].processId, winners[0].pid)
    assert.equal(seen[r].epoch, r + 1, 'one new epoch per owner')
    assert.ok(winners[0].at < t0 + r * PERIOD + HOLD, `round ${r}: won in time`)
  }
  const end = await lockNode(ns)
  assert.equal(end.executorId, undefined)
  assert.equal(end.epoch, ROUNDS)
})

/** Start a holder (plain acquireLock, no renewal), wait until it holds, return it and the record. */
async function holder(ns, { timeout, env = {}, id } = {}) {
  const w = startWorker({ mode: 'hold', url: emu.databaseUrl(ns), timeout, id }, env)
  const ev = await w.waitFor('acquired')
  const rec = await lockNode(ns)
  assert.equal(rec.executorId, ev.id)
  return { w, ev, rec }
}

async function kill9(w) {
  w.child.kill('SIGKILL')
  const e = await w.exited
  assert.equal(e.signal, 'SIGKILL')
}

test('L2: a SIGKILLed holder’s lock is taken over once expired, by exactly one of two takers', async () => {
  const ns = uniqueNs('l2')
  const { w, rec } = await holder(ns, { timeout: 2000 })
  await kill9(w)
  assert.ok(rec.expiresAt - rec.lockedAt <= 2000)
  const deadline = rec.expiresAt - Date.now() + 3000
  const takers = [0, 1].map((i) => startWorker({ mode: 'take', url: emu.databaseUrl(ns), id: `taker-${i}`, timeout: 60000, interval: 50, deadline }))
  await Promise.all(takers.map((t) => t.exited))
  const results = takers.map((t) => t.events.find((e) => e.ev === 'acquired' || e.ev === 'gaveUp'))
  assert.ok(results.every(Boolean), takers.map((t) => t.describe()).join('\n'))
  const wins = results.filter((e) => e.ev === 'acquired')
  assert.equal(wins.length, 1, JSON.stringify(results))
  assert.ok(wins[0].at >= rec.expiresAt, `taken ${wins[0].at - rec.expiresAt} ms before expiry`)
  assert.ok(wins[0].at <= rec.expiresAt + 2500, `taken ${wins[0].at - rec.expiresAt} ms after expiry`)
  const now = await lockNode(ns)
  assert.equal(now.executorId, wins[0].id)
  assert.equal(now.epoch, 2)
})

test('L3: runExclusive renews: work of 3x timeout is never interrupted; a poller gets the lock only after', async () => {
  const ns = uniqueNs('l3')
  const url = emu.databaseUrl(ns)
  const h = startWorker({ mode: 'exclusive', url, timeout: 1500, steps: 9, stepMs: 500, markers: 'markers', id: 'long-runner' })
  await h.waitFor('start')
  const t = startWorker({ mode: 'take', url, id: 'poller', timeout: 60000, interval: 100, deadline: 10000 })
  const [he, te] = await Promise.all([h.exited, t.exited])
  assert.equal(he.code, 0, h.describe())
  assert.equal(te.code, 0, t.describe())
  const workEnd = h.events.find((e) => e.ev === 'workEnd')
  assert.ok(workEnd, h.describe())
  const start = h.events.find((e) => e.ev === 'start')
  assert.ok(workEnd.at - start.at >= 4500, 'the work lasted 3x the timeout')
  const got = t.events.find((e) => e.ev === 'acquired')
  assert.ok(got, `the poller acquires once the work is done: ${t.describe()}`)
  assert.ok(got.at >= workEnd.at, `poller acquired ${workEnd.at - got.at} ms before the work ended`)
  assert.ok(got.tries > 20, 'the poller really kept trying during the work')
  assert.equal(Object.keys(await rawGet(emu, ns, 'markers')).length, 9)
  const rec = await lockNode(ns)
  assert.equal(rec.executorId, 'poller')
  assert.equal(rec.epoch, 2)
})

test('L4: a force-released holder fails its next check with LOCK_LOST and writes nothing more', async () => {
  const ns = uniqueNs('l4')
  const url = emu.databaseUrl(ns)
  const h = startWorker({ mode: 'exclusive', url, timeout: 10000, steps: 20, stepMs: 400, markers: 'markers', id: 'victim' })
  await h.waitFor((e) => e.ev === 'step' && e.i === 1)
  const ls = await lockingService(ns)
  await ls.forceReleaseLock()
  const releasedAt = Date.now()
  const err = await h.waitFor('error', 5000)
  const exit = await h.exited
  assert.equal(err.code, 'LOCK_LOST', h.describe())
  assert.match(err.message, /lock/)
  assert.equal(exit.code, 3)
  assert.ok(err.at - releasedAt < 1500, 'noticed before its next step')

  const steps = h.events.filter((e) => e.ev === 'step').map((e) => e.i)
  assert.ok(steps.length <= 3, `at most the step in flight ran after the release: ${steps}`)
  const markers = await rawGet(emu, ns, 'markers')
  assert.deepEqual(Object.keys(markers).sort(), steps.map((i) => `s${i}`).sort())
  for (const m of Object.values(markers)) assert.ok(m.at < err.at, 'no write after LOCK_LOST')
  await sleep(500)
  assert.deepEqual(await rawGet(emu, ns, 'markers'), markers, 'nothing written after exit either')
  const node = await lockNode(ns)
  assert.equal(node.executorId, undefined)
  assert.equal(node.epoch, 1)
})

test('L12: runExclusive work that writes through lock.database is fenced: refused with LOCK_LOST once the lock is known lost', async () => {
  const ns = uniqueNs('l12x')
  const ls = await lockingService(ns)
  const admin = await lockingService(ns)
  const refused = await ls.runExclusive(
    async (lock) => {
      await lock.database.ref('work/a').set({ by: lock.executorId })
      await admin.forceReleaseLock()
      await assert.rejects(lock.check(), { code: 'LOCK_LOST' })
      return lock.database
        .ref('work/b')
        .set(1)
        .then(
          () => null,
          (e) => e,
        )
    },
    { executorId: 'worker' },
  )
  assert.equal(refused?.code, 'LOCK_LOST', String(refused))
  assert.match(refused.message, /^Write refused: the migration lock at migrations\/_lock was force-released \(epoch 1\)/)
  assert.deepEqual(await rawGet(emu, ns, 'work'), { a: { by: 'worker' } }, 'the refused write never left')
})

test('L5: clock skew: +1h contender does not steal a live lock; -1h takes a dead one after its timeout; +1h holder’s lock expires on time', async () => {
  const url = (ns) => emu.databaseUrl(ns)
  const liveLock = async () => {
    const ns = uniqueNs('l5live')
    const { w } = await holder(ns, { timeout: 60000, id: 'live-holder' })
    const t = startWorker({ mode: 'take', url: url(ns), id: 'fast-clock', timeout: 60000, interval: 100, deadline: 2500 }, SKEW(3600000))
    const te = await t.exited
    assert.equal(te.code, 0, t.describe())
    assert.ok(
      t.events.find((e) => e.ev === 'gaveUp'),
      `a +1h contender stole a live lock: ${t.describe()}`,
    )
    assert.ok(t.events.find((e) => e.ev === 'gaveUp').tries > 10)
    assert.equal((await lockNode(ns)).executorId, 'live-holder')
    await kill9(w)
  }
  const deadSlowTaker = async () => {
    const ns = uniqueNs('l5slow')
    const { w, rec } = await holder(ns, { timeout: 2000, id: 'dead-holder' })
    await kill9(w)
    const t = startWorker({ mode: 'take', url: url(ns), id: 'slow-clock', timeout: 60000, interval: 100, deadline: rec.expiresAt - Date.now() + 3000 }, SKEW(-3600000))
    await t.exited
    const got = t.events.find((e) => e.ev === 'acquired')
    assert.ok(got, `a -1h contender must take an expired lock after its timeout, not after an hour: ${t.describe()}`)
    assert.ok(got.at >= rec.expiresAt, `taken ${rec.expiresAt - got.at} ms early`)
    assert.ok(got.at <= rec.expiresAt + 2500)
    assert.equal((await lockNode(ns)).executorId, 'slow-clock')
  }
  const fastDeadHolder = async () => {
    const ns = uniqueNs('l5fast')
    const { w, ev, rec } = await holder(ns, { timeout: 2000, id: 'fast-dead-holder', env: SKEW(3600000) })
    assert.ok(rec.expiresAt <= ev.at + 2000, `expiresAt is in server time, not the holder's clock: ${rec.expiresAt - ev.at} ms ahead`)
    await kill9(w)
    const t = startWorker({ mode: 'take', url: url(ns), id: 'normal-clock', timeout: 60000, interval: 100, deadline: 5000 })
    await t.exited
    const got = t.events.find((e) => e.ev === 'acquired')
    assert.ok(got, `a normal process must take the +1h holder's dead lock after the timeout: ${t.describe()}`)
    assert.ok(got.at >= rec.expiresAt)
    assert.ok(got.at <= ev.at + 2000 + 2500)
  }
  await Promise.all([liveLock(), deadSlowTaker(), fastDeadHolder()])
})

test('L6: owner-checked release; forceReleaseLock removes any lock; the epoch grows 1,2,3', async () => {
  const ns = uniqueNs('l6')
  const a = await lockingService(ns)
  const b = await lockingService(ns)
  assert.equal(await a.acquireLock('owner-a'), true)
  assert.deepEqual(await lockNode(ns).then((n) => [n.executorId, n.epoch]), ['owner-a', 1])

  await b.releaseLock('someone-else')
  await a.releaseLock('someone-else')
  assert.equal((await lockNode(ns)).executorId, 'owner-a', 'a non-owner release is a no-op')
  // Same executor id from another process is not the owner either.
  const other = startWorker({ mode: 'release', url: emu.databaseUrl(ns), id: 'owner-a' })
  assert.equal((await other.exited).code, 0, other.describe())
  assert.equal((await lockNode(ns)).executorId, 'owner-a', 'another process with the same id is not the owner')
  assert.equal(await b.verifyLockOwnership('owner-b'), false)
  assert.equal(await a.verifyLockOwnership('owner-a'), true)
  assert.equal(await b.acquireLock('owner-b'), false)

  await a.releaseLock('owner-a')
  assert.deepEqual(await lockNode(ns), { epoch: 1, releasedAt: (await lockNode(ns)).releasedAt })
  assert.equal(await a.getLockStatus(), null)

  assert.equal(await b.acquireLock('owner-b'), true)
  assert.deepEqual(await lockNode(ns).then((n) => [n.executorId, n.epoch]), ['owner-b', 2])
  await a.forceReleaseLock()
  const forced = await lockNode(ns)
  assert.equal(forced.executorId, undefined)
  assert.equal(forced.epoch, 2)
  assert.equal(await b.verifyLockOwnership('owner-b'), false, 'the old owner no longer owns it')

  assert.equal(await a.acquireLock('owner-c'), true)
  assert.deepEqual(await lockNode(ns).then((n) => [n.executorId, n.epoch]), ['owner-c', 3])
  await b.releaseLock('owner-b')
  assert.equal((await lockNode(ns)).executorId, 'owner-c', 'the previous owner cannot release the new lock')
  await a.forceReleaseLock()
  await a.forceReleaseLock() // nothing to release: fine
  assert.equal((await lockNode(ns)).epoch, 3)
})

/** A migrations folder: one migration that takes `ms` (in a worker it prints `slow-started`), then quick ones. */
function slowMigrations(ms, { count = 2 } = {}) {
  const dir = scratch('msr-lock-slow-')
  const folder = path.join(dir, 'migrations')
  fs.mkdirSync(folder)
  fs.writeFileSync(
    path.join(folder, 'V202501010001_slow.js'),
    `module.exports = { async up(db) { if (process.env.LOCK_TEST_WORKER) console.log('slow-started'); await new Promise((r) => setTimeout(r, ${ms})); await db.database.ref('slow/done').set(true); return 'slow' } }\n`,
  )
  for (let i = 2; i <= count; i++) {
    fs.writeFileSync(path.join(folder, `V20250101000${i}_quick${i}.js`), `module.exports = { async up(db) { await db.database.ref('quick/q${i}').set(true); return 'quick' } }\n`)
  }
  return folder
}

test('L7: runExclusive waits for a release; gives up with LOCK_HELD after waitTimeout', async () => {
  const ns = uniqueNs('l7w')
  const hold = await lockingService(ns)
  const waiter = await lockingService(ns)
  assert.equal(await hold.acquireLock('holder'), true)

  let t = Date.now()
  const err = await waiter
    .runExclusive(async () => assert.fail('must not run'), { wait: true, waitTimeout: 800, executorId: 'impatient' })
    .then(
      () => assert.fail('must reject'),
      (e) => e,
    )
  const waited = Date.now() - t
  assert.equal(err.code, 'LOCK_HELD')
  // It says it gave up after the wait limit and which setting sets it, then the guide's text.
  assert.match(
    err.message,
    /^Gave up waiting for the migration lock at [^ ]+ after 0\.\d s: the wait limit is 0\.8 s, set by the waitTimeout option; raise it to wait longer\.\nMigration lock is currently held by another process\.\nExecutor: holder\n/,
  )
  assert.ok(waited >= 750 && waited < 3000, `waited ${waited} ms`)

  const fast = await waiter.runExclusive(async () => 1, { executorId: 'fail-fast' }).catch((e) => e)
  assert.equal(fast.code, 'LOCK_HELD', 'fail fast by default')

  // Set when the release is sent: the waiter may be woken (by the lock node's event stream)
  // before the releaser's own response arrives.
  let releasedAt = 0
  setTimeout(() => {
    releasedAt = Date.now()
    hold.releaseLock('holder')
  }, 700)
  t = Date.now()
  const result = await waiter.runExclusive(
    async (lock) => {
      assert.ok(releasedAt > 0, 'runs only after the holder released')
      await lock.check()
      assert.equal((await lockNode(ns)).executorId, 'patient')
      return 'ran'
    },
    { wait: true, waitTimeout: 10000, executorId: 'patient' },
  )
  assert.equal(result, 'ran')
  assert.ok(Date.now() - releasedAt < 2000, 'woken soon after the release')
  const node = await lockNode(ns)
  assert.equal(node.executorId, undefined, 'released after the work')
  assert.equal(node.epoch, 2)
})

test('L7: runner.migrate() with retryAttempts/retryDelay waits for another runner, then runs nothing', async () => {
  const ns = uniqueNs('l7r')
  const folder = slowMigrations(1500)
  const first = await connect(ns, { folder })
  const patient = await connect(ns, { folder, locking: { retryAttempts: 20, retryDelay: 250 } })
  const impatient = await connect(ns, { folder, locking: { retryAttempts: 2, retryDelay: 100 } })
  const p1 = first.migrate()
  await sleep(300)
  assert.ok((await lockNode(ns)).executorId, 'the first runner holds the lock')
  const [r1, r2, r3] = await Promise.allSettled([p1, patient.migrate(), impatient.migrate()])
  assert.equal(r1.status, 'fulfilled', String(r1.reason))
  assert.equal(r1.value.success, true)
  assert.equal(r1.value.executed.length, 2)
  assert.equal(r2.status, 'fulfilled', String(r2.reason))
  assert.equal(r2.value.success, true)
  assert.equal(r2.value.executed.length, 0, 'everything already ran')
  assert.equal(r3.status, 'rejected')
  assert.equal(r3.reason.code, 'LOCK_HELD')
  assert.ok(r3.reason.message.includes('lock'))
  assert.equal(Object.keys(await rawGet(emu, ns, 'schema_version')).length, 2)
  assert.equal((await lockNode(ns)).executorId, undefined)
})

for (const sig of ['SIGTERM', 'SIGINT']) {
  test(`L8: ${sig} during runExclusive stops after the current step and releases the lock before exit`, async () => {
    const ns = uniqueNs(`l8${sig.toLowerCase()}`)
    const h = startWorker({ mode: 'exclusive', url: emu.databaseUrl(ns), timeout: 60000, steps: 30, stepMs: 200, markers: 'markers', id: `sig-${sig}` })
    await h.waitFor((e) => e.ev === 'step' && e.i === 1)
    assert.equal((await lockNode(ns)).executorId, `sig-${sig}`)
    h.child.kill(sig)
    const exit = await h.exited
    const node = await lockNode(ns) // immediately: the lease has 60 s left, so only a release frees it
    assert.ok(exit.signal === sig || (exit.code !== 0 && exit.code !== null), `exit ${JSON.stringify(exit)}: ${h.describe()}`)
    assert.ok(!h.events.find((e) => e.ev === 'done' || e.ev === 'workEnd'), h.describe())
    assert.equal(node.executorId, undefined, `lock released before exit: ${JSON.stringify(node)}`)
    assert.equal(node.epoch, 1)
    const steps = Object.keys(await rawGet(emu, ns, 'markers'))
    assert.ok(steps.length <= 4, `stopped after the current step: ${steps}`)
  })
}

test('L8: SIGTERM during runner.migrate() finishes the current migration, records it, releases, exits non-zero', async () => {
  const ns = uniqueNs('l8migrate')
  const folder = slowMigrations(1200)
  const h = startWorker({ mode: 'migrate', url: emu.databaseUrl(ns), folder, timeout: 60000 })
  await h.waitFor((e) => e.ev === 'text' && e.line === 'slow-started')
  h.child.kill('SIGTERM')
  const exit = await h.exited
  const node = await lockNode(ns)
  assert.ok(exit.signal === 'SIGTERM' || (exit.code !== 0 && exit.code !== null), `exit ${JSON.stringify(exit)}: ${h.describe()}`)
  assert.equal(node.executorId, undefined, `lock released before exit: ${JSON.stringify(node)}`)
  assert.equal(await rawGet(emu, ns, 'quick'), null, 'the next migration did not run')
  assert.equal(await rawGet(emu, ns, 'slow/done'), true, 'the current step completed')
  const history = Object.values((await rawGet(emu, ns, 'schema_version')) || {})
  assert.equal(history.length, 1, `the completed migration is recorded: ${JSON.stringify(history)}`)
})

test('L9: initLockStorage() reports PERMISSION_DENIED with the lock path (with and without shift)', async () => {
  const ns = uniqueNs('l9')
  // Connect first: connecting reads the database root, which is "over" a denied path.
  const ls = await lockingService(ns)
  const shifted = await lockingService(ns, { shift: 'tenant-a' })
  try {
    await lever(emu, 'PUT', 'deny', { ns, paths: ['migrations/_lock'] })
    const err = await ls.initLockStorage().then(
      () => assert.fail('must reject'),
      (e) => e,
    )
    assert.equal(err.message, 'Failed to initialize lock storage at migrations/_lock: PERMISSION_DENIED')
    assert.equal(err.code, 'PERMISSION_DENIED')

    await lever(emu, 'PUT', 'deny', { ns, paths: ['tenant-a/migrations/_lock'] })
    const err2 = await shifted.initLockStorage().then(
      () => assert.fail('must reject'),
      (e) => e,
    )
    assert.equal(err2.message, 'Failed to initialize lock storage at tenant-a/migrations/_lock: PERMISSION_DENIED')
    assert.equal(err2.code, 'PERMISSION_DENIED')
    await ls.initLockStorage() // the unshifted path is allowed again
    await lever(emu, 'PUT', 'deny', { ns, paths: [] })
    await shifted.initLockStorage()
    assert.equal(await shifted.acquireLock('shifted'), true)
    assert.equal((await rawGet(emu, ns, 'tenant-a/migrations/_lock')).executorId, 'shifted')
  } finally {
    await lever(emu, 'PUT', 'deny', { ns, paths: [] })
  }
})

// ---------------------------------------------------------------------------------------------
// CLI

function cliProject(ns, { migrations = true } = {}) {
  const dir = migrations ? exampleMigrations(scratch('msr-lock-cli-')) : scratch('msr-lock-cli-')
  fs.writeFileSync(
    path.join(dir, 'msr.config.js'),
    `module.exports = {
  folder: './migrations',
  tableName: 'schema_version',
  databaseUrl: 'https://${ns}.firebaseio.com',
  locking: {
    enabled: true,
    timeout: 600000
  }
};
`,
  )
  return { cwd: dir, env: { FIREBASE_DATABASE_EMULATOR_HOST: emu.hostPort }, timeoutMs: 30000 }
}

test('CLI: lock:status, --format json and lock:release output exactly as the guide shows', async () => {
  const ns = uniqueNs('cli')
  const opts = cliProject(ns, { migrations: false })

  const unlocked = await cli(['lock:status'], opts)
  assert.equal(unlocked.code, 0, unlocked.stderr)
  assert.equal(unlocked.stdout, '🔓 Lock Status: UNLOCKED\n\n   No active migration lock\n')
  const unlockedJson = await cli(['lock:status', '--format', 'json'], opts)
  assert.equal(unlockedJson.code, 0, unlockedJson.stderr)
  assert.equal(JSON.parse(unlockedJson.stdout).locked, false)

  const ls = await lockingService(ns)
  assert.equal(await ls.acquireLock('web-server-1-12345-a1b2c3d4'), true)
  const rec = await lockNode(ns)

  const locked = await cli(['lock:status'], opts)
  assert.equal(locked.code, 0, locked.stderr)
  assert.equal(
    locked.stdout,
    [
      '🔒 Lock Status: LOCKED',
      '',
      '   Executor ID:  web-server-1-12345-a1b2c3d4',
      `   Acquired At:  ${iso(rec.lockedAt)}`,
      `   Expires At:   ${iso(rec.expiresAt)}`,
      `   Process ID:   ${process.pid}`,
      '',
    ].join('\n'),
  )
  const lockedJson = await cli(['lock:status', '--format', 'json'], opts)
  assert.equal(lockedJson.code, 0, lockedJson.stderr)
  const j = JSON.parse(lockedJson.stdout)
  assert.equal(j.locked, true)
  assert.equal(j.executorId, 'web-server-1-12345-a1b2c3d4')
  assert.equal(j.lockedAt, iso(rec.lockedAt))
  assert.equal(j.expiresAt, iso(rec.expiresAt))
  assert.equal(j.processId, process.pid)

  const noForce = await cli(['lock:release'], opts)
  assert.equal(noForce.code, 1)
  assert.match(noForce.stderr, /--force flag is required/)
  assert.equal((await lockNode(ns)).executorId, 'web-server-1-12345-a1b2c3d4', 'nothing released without --force')

  const release = await cli(['lock:release', '--force'], opts)
  assert.equal(release.code, 0, release.stderr)
  assert.equal(
    release.stdout,
    [
      '⚠️  Warning: Force-releasing migration lock',
      '',
      '   Locked by:    web-server-1-12345-a1b2c3d4',
      `   Acquired at:  ${iso(rec.lockedAt)}`,
      '',
      '✅ Lock released successfully',
      '',
    ].join('\n'),
  )
  const node = await lockNode(ns)
  assert.equal(node.executorId, undefined)
  assert.equal(node.epoch, 1)
  const after = await cli(['lock:status'], opts)
  assert.equal(after.stdout, '🔓 Lock Status: UNLOCKED\n\n   No active migration lock\n')
})

test('CLI: firebase:test-connection against a dead port exits 7', async () => {
  const srv = net.createServer()
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  const port = srv.address().port
  await new Promise((r) => srv.close(r))
  const opts = cliProject(uniqueNs('dead'), { migrations: false })
  // (A short retry window: the default rides out ~5 s of refused connections before exit 7.)
  const res = await cli(['firebase:test-connection'], { ...opts, env: { FIREBASE_DATABASE_EMULATOR_HOST: `127.0.0.1:${port}`, MSR_NETWORK_RETRY_WINDOW: '1000' } })
  assert.equal(res.code, 7, `${res.stdout}\n${res.stderr}`)
})

test('CLI: 5 `migrate` processes at once: all exit 0, each migration recorded exactly once', async () => {
  const ns = uniqueNs('cli5')
  const opts = cliProject(ns)
  const runs = await Promise.all(Array.from({ length: 5 }, () => cli(['migrate'], { ...opts, timeoutMs: 60000 })))
  runs.forEach((r, i) => assert.equal(r.code, 0, `migrate #${i}: ${r.stdout}\n${r.stderr}`))
  const history = Object.values(await rawGet(emu, ns, 'schema_version'))
  assert.equal(history.length, 4, JSON.stringify(history))
  assert.equal(new Set(history.map((h) => h.name)).size, 4)
  assert.equal(Object.keys(await rawGet(emu, ns, 'users')).length, 3)
  const node = await lockNode(ns)
  assert.equal(node.executorId, undefined, 'no lock left behind')
  // The first to take it migrates; the others, once it released, find nothing left to run and
  // never take it (only a process whose history read came before the records could).
  assert.ok(node.epoch >= 1 && node.epoch <= 5, JSON.stringify(node))
})

test('CLI: request floors: a locked migrate of 4 scripts; with nothing pending, the history alone and no lock request', async () => {
  const ns = uniqueNs('floor')
  const opts = cliProject(ns)
  const counts = async () => {
    const c = await lever(emu, 'GET', 'requests')
    await lever(emu, 'DELETE', 'requests')
    const on = (suffix) =>
      Object.entries(c.byPath)
        .filter(([k]) => k.endsWith(suffix))
        .reduce((n, [, v]) => n + v, 0)
    return {
      lock: on('/migrations/_lock'),
      history:
        on('/schema_version') +
        Object.entries(c.byPath)
          .filter(([k]) => k.includes('/schema_version/'))
          .reduce((n, [, v]) => n + v, 0),
    }
  }
  await lever(emu, 'DELETE', 'requests')
  const first = await cli(['migrate'], opts)
  assert.equal(first.code, 0, first.stderr)
  // Lock: take (create if absent), after the backup and after each script one conditional
  // write proving ownership, release. History: read, read again under the lock, 4 records.
  assert.deepEqual(await counts(), { lock: 1 + 1 + 4 + 1, history: 2 + 4 })
  const idle = await cli(['migrate'], opts)
  assert.equal(idle.code, 0, idle.stderr)
  assert.match(idle.stdout + idle.stderr, /Nothing to do/)
  const c = await lever(emu, 'GET', 'requests')
  assert.deepEqual(c.byPath, { 'GET /schema_version': 1 }, 'an idle migrate reads the history, nothing else')
})

/** Until `f()` is truthy (bounded: 30 s). */
async function until(f, what) {
  for (let i = 0; i < 1500; i++) {
    if (await f()) return
    await sleep(20)
  }
  throw new Error(`never: ${what}`)
}

/**
 * A holder (a CLI `migrate` whose first script waits for a file) and `n` CLI pods waiting for its
 * lock on their event streams; once all wait, the holder is let go. Returns the requests made
 * from then on until every process exited (all exit 0).
 */
async function crowd(n) {
  const ns = uniqueNs('crowd')
  const dir = scratch('msr-crowd-')
  const go = path.join(dir, 'go')
  fs.mkdirSync(path.join(dir, 'migrations'))
  fs.writeFileSync(
    path.join(dir, 'migrations', 'V202501010001_slow.js'),
    `const fs = require('node:fs')\nmodule.exports = { async up() { while (!fs.existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 20)); return 'slow' } }\n`,
  )
  fs.writeFileSync(path.join(dir, 'migrations', 'V202501010002_quick.js'), `module.exports = { async up() { return 'quick' } }\n`)
  fs.writeFileSync(
    path.join(dir, 'msr.config.js'),
    `module.exports = { folder: './migrations', databaseUrl: 'https://${ns}.firebaseio.com', backupMode: 'manual', rollbackStrategy: 'none', locking: { enabled: true, timeout: 600000 } }\n`,
  )
  const opts = { cwd: dir, env: { FIREBASE_DATABASE_EMULATOR_HOST: emu.hostPort }, timeoutMs: 60000 }
  const holder = cli(['migrate'], opts)
  await until(async () => (await lockNode(ns))?.executorId, 'the holder takes the lock')
  await lever(emu, 'DELETE', 'requests')
  const stderr = Array(n).fill('')
  const pods = Array.from({ length: n }, (_, i) => cli(['migrate'], { ...opts, onSpawn: (c) => c.stderr.on('data', (d) => (stderr[i] += d)) }))
  const streams = async () => (await lever(emu, 'GET', 'requests')).byPath['GET /migrations/_lock'] ?? 0
  // Every pod waits: it printed the wait line and opened the lock node's event stream (its only
  // read of the lock node: its attempt was a create-if-absent that the 412 answered).
  await until(async () => stderr.every((e) => /Waiting for the migration lock/.test(e)) && (await streams()) >= n, 'all pods wait')
  assert.equal(await streams(), n, 'one stream per waiting pod, no polling')
  await lever(emu, 'DELETE', 'requests')
  fs.writeFileSync(go, '')
  const runs = await Promise.all([holder, ...pods])
  runs.forEach((r, i) => assert.equal(r.code, 0, `process #${i}: ${r.stdout}\n${r.stderr}`))
  const c = await lever(emu, 'GET', 'requests')
  const history = Object.values(await rawGet(emu, ns, 'schema_version'))
  assert.deepEqual(history.map((h) => h.name).sort(), ['V202501010001_slow.js', 'V202501010002_quick.js'])
  for (const r of runs.slice(1)) assert.match(r.stderr + r.stdout, /released and the history shows nothing left to run/)
  return { total: c.total, lockWrites: c.byPath['PUT /migrations/_lock'] ?? 0, historyReads: c.byPath['GET /schema_version'] ?? 0 }
}

test('no stampede: with N pods waiting, the requests after the holder finishes grow by one history read per pod; no pod writes the lock', async () => {
  const alone = await crowd(0)
  // The holder: a proof of ownership and a record per script, the release.
  assert.deepEqual(alone, { total: 5, lockWrites: 3, historyReads: 0 })
  for (const n of [3, 6]) {
    const r = await crowd(n)
    assert.deepEqual(r, { total: alone.total + n, lockWrites: alone.lockWrites, historyReads: n }, `${n} pods`)
  }
})
