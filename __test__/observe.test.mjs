// What an operator sees and what instrumentation hears: a waiting pod's log lines (holder,
// since, lease end, updates, a give-up that names its setting), progress on a terminal (a
// real pseudo-terminal through `script`) and under pipes, `--log-format json`, and the
// library's hooks and metrics collectors (names, arguments, order, isolation) and lock hooks.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')
const { FirebaseRunner, JsonMetricsCollector, CsvMetricsCollector, LoggerMetricsCollector } = require('..')

let emu
before(async () => {
  emu = await h.startEmulator({ host: '127.0.0.1', port: 0 })
})
after(async () => {
  await emu.stop()
})

const emuEnv = () => ({ FIREBASE_DATABASE_EMULATOR_HOST: emu.hostPort })
const run = (dir, args, env = {}) => h.cli(args, { cwd: dir, env: { ...emuEnv(), ...env } })
const nsData = async (ns) => (await emu.export())[ns] ?? null
const iso = (d) => d.toISOString().replace(/\./g, '\\.')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const okScript = (node, ms = 0) =>
  `module.exports = { async up(db, info, handler) { await new Promise((r) => setTimeout(r, ${ms})); await db.database.ref(handler.cfg.buildPath('${node}')).set(true); return '${node} done' }, async down(db, info, handler) { await new Promise((r) => setTimeout(r, ${ms})); await db.database.ref(handler.cfg.buildPath('${node}')).remove() } }\n`

/** The lock service of namespace `ns`, in this process (the "other pod"). */
async function holderService(ns) {
  const r = await FirebaseRunner.getInstance({ config: { databaseUrl: emu.databaseUrl(ns), locking: { enabled: true, timeout: 60000 } }, logger: () => {} })
  return r.getHandler().lockingService
}

function lockedProject(files, ns) {
  const dir = h.project(files, 'msr-obs-')
  fs.writeFileSync(path.join(dir, 'msr.config.js'), `module.exports = { databaseUrl: '${emu.databaseUrl(ns)}', locking: { enabled: true, timeout: 60000 } }`)
  return dir
}

test('a waiting pod logs who holds the lock, since when, when its lease ends; updates; a give-up naming its setting', async () => {
  const ns = h.uniqueNs('wait')
  const dir = lockedProject({ 'V202501010001_a.js': okScript('a') }, ns)
  const ls = await holderService(ns)
  assert.equal(await ls.acquireLock('holder-pod'), true)
  const st = await ls.getLockStatus()
  const env = { MSR_LOCKING_WAIT_LOG_INTERVAL: '300' }

  let out = await run(dir, ['migrate', '--wait-timeout', '1500'], env)
  assert.equal(out.code, 3, out.stderr)
  const lines = out.stderr.split('\n')
  const first = new RegExp(
    `^Waiting for the migration lock at migrations/_lock: held by holder-pod \\(host ${os.hostname()}, pid ${process.pid}\\) since ${iso(st.lockedAt)}; ` +
      `its lease ends at ${iso(st.expiresAt)} unless renewed\\. Waiting up to 1\\.5 s \\(set by --wait-timeout\\)\\.$`,
  )
  assert.equal(lines.filter((l) => first.test(l)).length, 1, out.stderr)
  const updates = lines.filter((l) => /^Still waiting for the migration lock at migrations\/_lock \(\d\.\d s so far\): held by holder-pod \(host /.test(l))
  assert.ok(updates.length >= 1, `no update while waiting:\n${out.stderr}`)
  assert.ok(lines.indexOf(updates[0]) > lines.findIndex((l) => first.test(l)), 'the first line comes first')
  const gaveUp = lines.findIndex((l) =>
    /^Gave up waiting for the migration lock at migrations\/_lock after 1\.\d s: the wait limit is 1\.5 s, set by --wait-timeout; raise it to wait longer\.$/.test(l),
  )
  assert.ok(gaveUp > 0, out.stderr)
  assert.equal(lines[gaveUp + 1], 'Migration lock is currently held by another process.')
  assert.equal(lines[gaveUp + 2], 'Executor: holder-pod')

  // locking.waitTimeout (here from the environment) is named as the setting
  out = await run(dir, ['migrate'], { ...env, MSR_LOCKING_WAIT_TIMEOUT: '600' })
  assert.equal(out.code, 3, out.stderr)
  assert.match(out.stderr, /Waiting up to 0\.6 s \(set by locking\.waitTimeout \(MSR_LOCKING_WAIT_TIMEOUT\)\)\./)
  assert.match(out.stderr, /: the wait limit is 0\.6 s, set by locking\.waitTimeout \(MSR_LOCKING_WAIT_TIMEOUT\); raise it to wait longer\./)

  // --no-wait: the guide's text alone, no wait lines, no give-up line
  out = await run(dir, ['migrate', '--no-wait'], env)
  assert.equal(out.code, 3, out.stderr)
  assert.match(out.stderr, /^Migration lock is currently held by another process\.\nExecutor: holder-pod\n/)
  assert.doesNotMatch(out.stderr, /Waiting for|Gave up/)
  assert.equal((await nsData(ns)).schema_version, undefined, 'nothing ran')

  // the holder finishes: the waiting pod says it got the lock, migrates and exits 0
  const waiting = run(dir, ['migrate'], env)
  await sleep(800)
  await ls.releaseLock('holder-pod')
  out = await waiting
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stderr, /^Waiting for the migration lock at migrations\/_lock: held by holder-pod .* Waiting until it is released or its lease runs out/m)
  assert.match(out.stderr, /^Acquired the migration lock at migrations\/_lock after waiting \d+\.\d s \(epoch 2\)$/m)
  assert.match(out.stderr, /^\[1\/1\] V202501010001_a\.js \(\d+\.\d s\)$/m)
})

test('--log-format json: one JSON object per stderr line with time, level, event and fields; MSR_LOG_FORMAT and logFormat too', async () => {
  const ns = h.uniqueNs('jsonlog')
  const dir = lockedProject({ 'V202501010001_a.js': okScript('a'), 'V202501010002_b.js': okScript('b') }, ns)
  const ls = await holderService(ns)
  assert.equal(await ls.acquireLock('holder-pod'), true)
  const parse = (stderr) =>
    stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        try {
          return JSON.parse(l)
        } catch {
          throw new Error(`not a JSON line: ${l}\n${stderr}`)
        }
      })
  // hold the lock until the waiting pod has logged an update while waiting (bounded: 30 s)
  let child
  const waiting = h.runNode([h.BIN, 'migrate', '--log-format', 'json', '--format', 'json'], {
    cwd: dir,
    env: { ...emuEnv(), MSR_LOCKING_WAIT_LOG_INTERVAL: '200' },
    onSpawn: (c) => (child = c),
  })
  let seen = ''
  child.stderr.on('data', (d) => (seen += d))
  for (let i = 0; i < 300 && !seen.includes('"lock.still-waiting"'); i++) await sleep(100)
  await ls.releaseLock('holder-pod')
  let out = await waiting
  assert.equal(out.code, 0, out.stderr)
  assert.equal(JSON.parse(out.stdout).executed.length, 2, 'stdout is the result alone')
  let logs = parse(out.stderr)
  for (const l of logs) {
    assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.ok(['info', 'warn', 'error', 'debug'].includes(l.level), JSON.stringify(l))
    assert.equal(typeof l.event, 'string')
    assert.equal(typeof l.message, 'string')
  }
  const wait = logs.find((l) => l.event === 'lock.waiting')
  assert.deepEqual(wait.holder.executorId, 'holder-pod')
  assert.equal(wait.holder.processId, process.pid)
  assert.equal(wait.holder.hostname, os.hostname())
  assert.match(wait.holder.expiresAt, /Z$/)
  assert.equal(wait.path, 'migrations/_lock')
  assert.ok(
    logs.some((l) => l.event === 'lock.still-waiting' && l.waited > 0),
    'updates while waiting',
  )
  assert.ok(logs.some((l) => l.event === 'lock.acquired' && l.waited > 0 && l.epoch === 2))
  const done = logs.filter((l) => l.event === 'migration.done')
  assert.deepEqual(
    done.map((l) => [l.migration, l.index, l.total, l.method]),
    [
      ['V202501010001_a.js', 1, 2, 'up'],
      ['V202501010002_b.js', 2, 2, 'up'],
    ],
  )
  assert.ok(done.every((l) => Number.isInteger(l.duration) && l.version > 202501010000))

  // a failure: the final error is a JSON line too (code and exit code), and nothing else is text
  fs.writeFileSync(path.join(dir, 'migrations', 'V202501010003_boom.js'), "module.exports = { async up() { throw new Error('kaput') } }\n")
  out = await run(dir, ['migrate'], { MSR_LOG_FORMAT: 'json' })
  assert.equal(out.code, 3, out.stderr)
  logs = parse(out.stderr)
  const failed = logs.find((l) => l.event === 'migration.failed')
  assert.equal(failed.migration, 'V202501010003_boom.js')
  assert.equal(failed.code, 'SCRIPT_FAILED')
  const last = logs[logs.length - 1]
  assert.equal(last.event, 'command.failed')
  assert.equal(last.exitCode, 3)
  assert.equal(last.code, 'SCRIPT_FAILED')
  assert.match(last.message, /kaput/)

  // the config field
  fs.rmSync(path.join(dir, 'migrations', 'V202501010003_boom.js'))
  fs.writeFileSync(path.join(dir, 'msr.config.js'), `module.exports = { databaseUrl: '${emu.databaseUrl(ns)}', logFormat: 'json', logLevel: 'debug' }`)
  out = await run(dir, ['down', '--steps', '1'])
  assert.equal(out.code, 0, out.stderr)
  logs = parse(out.stderr)
  assert.ok(logs.some((l) => l.event === 'migration.done' && l.method === 'down' && l.migration === 'V202501010002_b.js'))
  assert.ok(logs.some((l) => l.event === 'run.complete' && l.level === 'debug'))

  // the default stays text
  out = await run(dir, ['migrate', '--log-format', 'text'])
  assert.equal(out.code, 0, out.stderr)
  assert.ok(out.stderr.length > 0 && !out.stderr.split('\n').some((l) => l.startsWith('{')), out.stderr)
  assert.match(out.stderr, /^\[1\/1\] V202501010002_b\.js \(\d+\.\d s\)$/m)
})

test('progress under pipes: a plain line when each script starts and when it is done, no control characters', async () => {
  const ns = h.uniqueNs('pipes')
  const dir = h.project({ 'V202501010001_a.js': okScript('a'), 'V202501010002_b.js': okScript('b', 300), 'V202501010003_c.js': okScript('c') }, 'msr-obs-')
  let out = await run(dir, ['migrate', '--database-url', emu.databaseUrl(ns)])
  assert.equal(out.code, 0, out.stderr)
  const lines = out.stderr.split('\n')
  const at = (re) => lines.findIndex((l) => re.test(l))
  const order = [
    /^\[1\/3\] V202501010001_a\.js \.\.\.$/,
    /^\[1\/3\] V202501010001_a\.js \(\d+\.\d s\)$/,
    /^\[2\/3\] V202501010002_b\.js \.\.\.$/,
    /^\[2\/3\] V202501010002_b\.js \(0\.[3-9] s\)$/,
    /^\[3\/3\] V202501010003_c\.js \(\d+\.\d s\)$/,
  ].map(at)
  assert.ok(
    order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])),
    `${order}\n${out.stderr}`,
  )
  assert.doesNotMatch(out.stderr, /[\r\x1b]/)
  out = await run(dir, ['down', '0', '--database-url', emu.databaseUrl(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stderr, /^\[1\/3\] Rolling back V202501010003_c\.js \.\.\.$/m)
  assert.match(out.stderr, /^\[2\/3\] V202501010002_b\.js rolled back \(0\.[3-9] s\)$/m)
})

/** Run the CLI under a real pseudo-terminal (`script`); stdout of the CLI to `stdoutFile` when given. */
function underPty(dir, args, env, stdoutFile) {
  const quote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`
  const cmd = [process.execPath, h.BIN, ...args].map(quote).join(' ') + (stdoutFile ? ` > ${quote(stdoutFile)}` : '')
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], { cwd: dir, env: { ...process.env, ...emuEnv(), ...env, TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] })
    let transcript = ''
    child.stdout.on('data', (d) => (transcript += d))
    child.stderr.on('data', (d) => (transcript += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`timed out under script: ${transcript}`))
    }, 60000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, transcript })
    })
    child.stdin.end()
  })
}

test('progress on a terminal: the running script is a live line redrawn in place, its done line stays; --format json stdout stays clean', async () => {
  const ns = h.uniqueNs('pty')
  const dir = h.project({ 'V202501010001_a.js': okScript('a'), 'V202501010002_slow.js': okScript('slow', 700) }, 'msr-obs-')
  const stdoutFile = path.join(dir, 'result.json')
  const r = await underPty(dir, ['migrate', '--format', 'json', '--database-url', emu.databaseUrl(ns)], {}, stdoutFile)
  assert.equal(r.code, 0, r.transcript)
  const t = r.transcript
  // live line: cleared and redrawn with a moving clock while the slow script runs
  const live = [...t.matchAll(/\r\x1b\[2K\[2\/2\] V202501010002_slow\.js {2}(\d+\.\d) s/g)].map((m) => Number(m[1]))
  assert.ok(live.length >= 2 && live[live.length - 1] > live[0], `live line not redrawn: ${JSON.stringify(t)}`)
  assert.match(t, /\r\x1b\[2K\[2\/2\] V202501010002_slow\.js \(0\.[7-9] s\)\r?\n/)
  assert.doesNotMatch(t, /V202501010002_slow\.js \.\.\./, 'no separate start line on a terminal')
  const result = fs.readFileSync(stdoutFile, 'utf8')
  assert.doesNotMatch(result, /\x1b|\r|\[2\/2\]/)
  assert.deepEqual(
    JSON.parse(result).executed.map((e) => e.timestamp),
    [202501010001, 202501010002],
  )

  const down = await underPty(dir, ['down', '--steps', '1', '--database-url', emu.databaseUrl(ns)], {})
  assert.equal(down.code, 0, down.transcript)
  assert.match(down.transcript, /\r\x1b\[2K\[1\/1\] Rolling back V202501010002_slow\.js {2}\d+\.\d s/)
  assert.match(down.transcript, /\[1\/1\] V202501010002_slow\.js rolled back \(0\.[7-9] s\)/)
})

test('progress on a terminal over many databases: one live line per running database, redrawn together', async () => {
  const [a, b] = [h.uniqueNs('lanea'), h.uniqueNs('laneb')]
  const dir = h.project({ 'V202501010001_a.js': okScript('a'), 'V202501010002_slow.js': okScript('slow', 900) }, 'msr-obs-')
  const r = await underPty(dir, ['migrate', '--database-url', emu.databaseUrl(a), '--database-url', emu.databaseUrl(b)], {})
  assert.equal(r.code, 0, r.transcript)
  const t = r.transcript
  // one redraw holds both lanes, each named, each with its step and a moving clock
  const lane = (ns) => `${ns} +\\[2\\/2\\] V202501010002_slow\\.js {2}\\d+\\.\\d s`
  const both = new RegExp(`\\x1b\\[2K(?:${lane(a)}\\r?\\n${lane(b)}|${lane(b)}\\r?\\n${lane(a)})`)
  assert.match(t, both, `no redraw with both databases' lines: ${JSON.stringify(t)}`)
  for (const ns of [a, b]) {
    const clocks = [...t.matchAll(new RegExp(`${ns} +\\[2\\/2\\] V202501010002_slow\\.js {2}(\\d+\\.\\d) s`, 'g'))].map((m) => Number(m[1]))
    assert.ok(clocks.length >= 2 && clocks[clocks.length - 1] > clocks[0], `${ns}'s line is not redrawn: ${JSON.stringify(t)}`)
  }
  for (const ns of [a, b]) assert.equal(Object.keys((await nsData(ns)).schema_version).length, 2, ns)
})

test('library hooks and metrics collectors: names, arguments and order of the predecessor; a throwing hook or collector does not break the run', async () => {
  const ns = h.uniqueNs('hooks')
  const dir = h.project({ 'V202501010001_a.js': okScript('a'), 'V202501010002_b.js': okScript('b') }, 'msr-obs-')
  const calls = []
  const rec =
    (name) =>
    (...args) => {
      calls.push([name, ...args])
    }
  const hooks = {
    onStart: rec('onStart'),
    onBeforeBackup: rec('onBeforeBackup'),
    onAfterBackup: rec('onAfterBackup'),
    onBeforeMigrate: async (script) => {
      calls.push(['onBeforeMigrate', script.name])
      await sleep(20)
      if (script.name.includes('_a')) throw new Error('hook exploded')
    },
    onAfterMigrate: (script, result) => calls.push(['onAfterMigrate', script.name, result]),
    onMigrationError: (script, err) => calls.push(['onMigrationError', script.name, err.code, err.message]),
    onBeforeRestore: rec('onBeforeRestore'),
    onAfterRestore: rec('onAfterRestore'),
    onComplete: (result) => calls.push(['onComplete', result.success, result.executed.map((e) => e.name)]),
    onError: (err) => calls.push(['onError', err.code]),
    onLockAcquired: (info) => calls.push(['onLockAcquired', info.event, info.holder.lockedBy === 'hooks-test', info.epoch]),
    onLockReleased: (info) => calls.push(['onLockReleased', info.event, info.epoch]),
  }
  const second = { onStart: () => Promise.reject(new Error('second hook rejected')), onComplete: rec('second.onComplete') }
  const metricCalls = []
  const spy = new Proxy(
    {},
    {
      get: (_, m) => (m === 'constructor' ? Object : (...args) => metricCalls.push([m, ...args])),
    },
  )
  const broken = {
    recordScriptStart() {
      throw new Error('collector exploded')
    },
  }
  const jsonFile = path.join(dir, 'metrics', 'run.json')
  const csvFile = path.join(dir, 'metrics', 'run.csv')
  const loggerLines = []
  const warnings = []
  const runner = await FirebaseRunner.getInstance({
    config: {
      folder: path.join(dir, 'migrations'),
      databaseUrl: emu.databaseUrl(ns),
      backup: { folder: path.join(dir, 'backups') },
      locking: { enabled: true, timeout: 60000, executorId: 'hooks-test' },
    },
    logger: { info: () => {}, warn: (m) => warnings.push(m), error: () => {}, debug: () => {} },
    hooks: [hooks, second],
    metricsCollectors: [
      spy,
      broken,
      new JsonMetricsCollector({ filePath: jsonFile }),
      new CsvMetricsCollector({ filePath: csvFile }),
      new LoggerMetricsCollector({ logger: { info: (m) => loggerLines.push(m), warn: (m) => loggerLines.push(m), error: (m) => loggerLines.push(m) } }),
    ],
  })
  const r = await runner.migrate()
  assert.equal(r.success, true)
  assert.deepEqual(Object.keys((await nsData(ns)) || {}).sort(), ['a', 'b', 'migrations', 'schema_version'], 'the run went on')

  const backupPath = calls.find((c) => c[0] === 'onAfterBackup')[1]
  assert.ok(fs.existsSync(backupPath), backupPath)
  const secondComplete = calls.findIndex((c) => c[0] === 'second.onComplete')
  assert.equal(secondComplete, calls.length - 1, 'hook objects are called in order')
  assert.equal(calls[secondComplete][1].success, true)
  assert.deepEqual(calls.slice(0, -1), [
    ['onLockAcquired', 'lock.acquired', true, 1],
    ['onBeforeBackup'],
    ['onAfterBackup', backupPath],
    ['onStart', 2, 2],
    ['onBeforeMigrate', 'V202501010001_a.js'],
    ['onAfterMigrate', 'V202501010001_a.js', 'a done'],
    ['onBeforeMigrate', 'V202501010002_b.js'],
    ['onAfterMigrate', 'V202501010002_b.js', 'b done'],
    ['onLockReleased', 'lock.released', 1],
    ['onComplete', true, ['V202501010001_a.js', 'V202501010002_b.js']],
  ])
  assert.match(warnings.join('\n'), /Hook onBeforeMigrate\(\) failed: hook exploded/)
  assert.match(warnings.join('\n'), /Hook onStart\(\) failed: second hook rejected/)
  assert.match(warnings.join('\n'), /Metrics collector Object\.recordScriptStart\(\) failed: collector exploded|recordScriptStart\(\) failed: collector exploded/)

  // collectors: methods and arguments in the predecessor's order
  assert.deepEqual(
    metricCalls.map((c) => c[0]),
    ['recordBackup', 'recordMigrationStart', 'recordScriptStart', 'recordScriptComplete', 'recordScriptStart', 'recordScriptComplete', 'recordMigrationComplete', 'close'],
  )
  assert.deepEqual(metricCalls[1][1].total, 2)
  assert.deepEqual([metricCalls[1][1].pending, metricCalls[1][1].executed], [2, 0])
  assert.equal(metricCalls[3][1].name, 'V202501010001_a.js')
  assert.ok(Number.isInteger(metricCalls[3][2]) && metricCalls[3][2] >= 0)
  assert.equal(metricCalls[6][1].success, true)
  const json = JSON.parse(fs.readFileSync(jsonFile, 'utf8'))
  assert.equal(json.summary.migrationsSucceeded, 2)
  assert.equal(json.summary.success, true)
  assert.deepEqual(
    json.migrations.map((m) => [m.name, m.status]),
    [
      ['V202501010001_a.js', 'success'],
      ['V202501010002_b.js', 'success'],
    ],
  )
  assert.equal(json.backups[0].path, backupPath)
  const csv = fs.readFileSync(csvFile, 'utf8').trim().split('\n')
  assert.equal(csv[0], 'timestamp,migration,migrationTimestamp,durationMs,status,error')
  assert.match(csv[1], /,V202501010001_a\.js,202501010001,\d+,success,$/)
  assert.ok(loggerLines.includes('[METRICS] Migration started - 2 pending scripts, 0 already executed'), loggerLines.join('\n'))
  assert.ok(loggerLines.some((l) => /^\[METRICS\] Migration completed - 2 scripts in \d+ms \(success\)$/.test(l)))

  // a failing run: onMigrationError, the restore hooks, onError; collectors record it and close
  fs.writeFileSync(path.join(dir, 'migrations', 'V202501010003_boom.js'), "module.exports = { async up() { throw new Error('kaput') } }\n")
  calls.length = 0
  metricCalls.length = 0
  const failed = await runner.migrate().then(
    () => assert.fail('must reject'),
    (e) => e,
  )
  assert.equal(failed.code, 'SCRIPT_FAILED')
  assert.deepEqual(
    calls.map((c) => c[0]),
    ['onLockAcquired', 'onBeforeBackup', 'onAfterBackup', 'onStart', 'onBeforeMigrate', 'onMigrationError', 'onBeforeRestore', 'onAfterRestore', 'onLockReleased', 'onError'],
  )
  assert.deepEqual(calls.find((c) => c[0] === 'onMigrationError').slice(2, 3), ['SCRIPT_FAILED'])
  assert.match(calls.find((c) => c[0] === 'onMigrationError')[3], /kaput/)
  assert.deepEqual(
    calls.find((c) => c[0] === 'onError'),
    ['onError', 'SCRIPT_FAILED'],
  )
  assert.deepEqual(
    metricCalls.map((c) => c[0]),
    ['recordBackup', 'recordMigrationStart', 'recordScriptStart', 'recordScriptError', 'recordRollback', 'recordError', 'recordMigrationComplete', 'close'],
  )
  assert.deepEqual(metricCalls[4].slice(1, 3), ['backup', true])
  assert.equal(metricCalls[6][1].success, false)
  const json2 = JSON.parse(fs.readFileSync(jsonFile, 'utf8'))
  assert.equal(json2.summary.migrationsFailed, 1)
  assert.equal(json2.summary.success, false)
  assert.equal(json2.rollbacks[0].strategy, 'backup')
  assert.match(json2.errors[0].message, /kaput/)
  assert.match(fs.readFileSync(csvFile, 'utf8'), /,V202501010003_boom\.js,202501010003,,failed,.*kaput/)

  // down: onStart, per script onBeforeMigrate / onAfterMigrate, onComplete
  fs.rmSync(path.join(dir, 'migrations', 'V202501010003_boom.js'))
  calls.length = 0
  await runner.down(null, { steps: 1 })
  assert.deepEqual(
    calls.filter((c) => !c[0].startsWith('onLock') && c[0] !== 'second.onComplete'),
    [
      ['onStart', 2, 1],
      ['onBeforeMigrate', 'V202501010002_b.js'],
      ['onAfterMigrate', 'V202501010002_b.js', ''],
      ['onComplete', true, ['V202501010002_b.js']],
    ],
  )
})

test('lock hooks: onLockWait (start, updates, give-up) with the holder, onLockRenewed, onLockLost, onForceRelease; the logger gets the wait lines', async () => {
  const ns = h.uniqueNs('lockhooks')
  const dir = h.project({ 'V202501010001_slow.js': okScript('slow', 900) }, 'msr-obs-')
  const holder = await holderService(ns)
  assert.equal(await holder.acquireLock('holder-pod'), true)
  const st = await holder.getLockStatus()
  const events = []
  const logged = []
  const record = (name) => (info) => events.push([name, info])
  const runner = await FirebaseRunner.getInstance({
    config: {
      folder: path.join(dir, 'migrations'),
      databaseUrl: emu.databaseUrl(ns),
      rollbackStrategy: 'none',
      locking: { enabled: true, timeout: 1500, renewInterval: 100, waitLogInterval: 200 },
    },
    logger: (level, message) => logged.push([level, message]),
    hooks: {
      onLockWait: record('wait'),
      onLockAcquired: record('acquired'),
      onLockRenewed: record('renewed'),
      onLockLost: record('lost'),
      onLockReleased: record('released'),
      onForceRelease: record('force'),
    },
  })
  const err = await runner.migrate(undefined, { wait: true, waitTimeout: 700 }).then(
    () => assert.fail('must not get the lock'),
    (e) => e,
  )
  assert.equal(err.code, 'LOCK_HELD')
  assert.match(err.message, /^Gave up waiting for the migration lock at migrations\/_lock after 0\.\d s: the wait limit is 0\.7 s, set by the waitTimeout option/)
  const waits = events.filter((e) => e[0] === 'wait').map((e) => e[1])
  assert.equal(waits[0].event, 'lock.waiting')
  assert.equal(waits[0].holder.lockedBy, 'holder-pod')
  assert.equal(waits[0].holder.processId, process.pid)
  assert.equal(waits[0].holder.hostname, os.hostname())
  assert.equal(waits[0].holder.expiresAt.getTime(), st.expiresAt.getTime())
  assert.equal(waits[0].waitLimit, 700)
  assert.equal(waits[0].limitSetBy, 'the waitTimeout option')
  assert.ok(
    waits.some((w) => w.event === 'lock.still-waiting' && w.waited >= 150),
    JSON.stringify(waits),
  )
  assert.equal(waits[waits.length - 1].event, 'lock.gave-up')
  assert.ok(waits[waits.length - 1].waited >= 650)
  assert.ok(
    logged.some(([l, m]) => l === 'info' && m.startsWith('Waiting for the migration lock at migrations/_lock: held by holder-pod (host ')),
    JSON.stringify(logged),
  )
  assert.ok(logged.some(([, m]) => m.startsWith('Still waiting for the migration lock')))

  // force release from the library: onForceRelease names what was released
  events.length = 0
  await runner.forceReleaseLock()
  await sleep(50)
  assert.equal(events[0][0], 'force')
  assert.equal(events[0][1].holder.lockedBy, 'holder-pod')

  // renewals while a slow script runs; then another process force-releases: onLockLost
  events.length = 0
  const running = runner.migrate().catch((e) => e)
  await sleep(500)
  assert.ok(
    events.some((e) => e[0] === 'renewed' && e[1].epoch === events[0][1].epoch),
    JSON.stringify(events.map((e) => e[0])),
  )
  await holder.forceReleaseLock()
  const lost = await running
  assert.equal(lost.code, 'LOCK_LOST', lost.message)
  const names = events.map((e) => e[0])
  assert.equal(names[0], 'acquired')
  assert.ok(names.includes('renewed'), names.join(','))
  assert.ok(names.includes('lost'), names.join(','))
  assert.match(events.find((e) => e[0] === 'lost')[1].message, /^Migration lock lost: the lock at migrations\/_lock was force-released/)
  assert.ok(!names.includes('released'), 'a lost lock is not reported as released')
})

test('library: logFormat json hands the logger JSON lines; markApplied and down steps', async () => {
  const ns = h.uniqueNs('liblog')
  const dir = h.project({ 'V202501010001_a.js': okScript('a'), 'V202501010002_b.js': okScript('b') }, 'msr-obs-')
  const logged = []
  const runner = await FirebaseRunner.getInstance({
    config: { folder: path.join(dir, 'migrations'), databaseUrl: emu.databaseUrl(ns), logFormat: 'json', rollbackStrategy: 'none' },
    logger: (level, message) => logged.push([level, message]),
  })
  const marked = await runner.migrate(202501010001, { markApplied: true })
  assert.deepEqual(
    marked.executed.map((e) => e.name),
    ['V202501010001_a.js'],
  )
  assert.equal((await nsData(ns)).a, undefined, 'not run')
  assert.equal((await nsData(ns)).schema_version.v202501010001.markedApplied, true)
  await runner.migrate()
  assert.equal((await nsData(ns)).b, true)
  const lines = logged.map(([level, m]) => ({ level, ...JSON.parse(m) }))
  assert.ok(lines.some((l) => l.event === 'migration.marked' && l.migration === 'V202501010001_a.js'))
  assert.ok(lines.some((l) => l.event === 'migration.done' && l.migration === 'V202501010002_b.js' && Number.isInteger(l.duration)))
  assert.ok(lines.every((l) => l.time && l.event && l.level))
  const down = await runner.down(null, { steps: 2 })
  assert.deepEqual(
    down.executed.map((e) => e.timestamp),
    [202501010002, 202501010001],
  )
  await assert.rejects(runner.down(), (e) => e.code === 'CONFIG_INVALID' && /steps/.test(e.message))
})
