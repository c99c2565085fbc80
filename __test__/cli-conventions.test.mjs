// CLI conventions users bring from umzug, node-pg-migrate and Flyway, and JSON everywhere it is
// asked for: `down --steps N`, `migrate --mark-applied`, `--env-file`, `create --ext cjs`,
// `list -n N`, the dry-run plan, and errors as a JSON object under `--format json`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
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

const emuEnv = () => ({ FIREBASE_DATABASE_EMULATOR_HOST: emu.hostPort })
const urlFlag = (ns) => ['--database-url', emu.databaseUrl(ns)]
const run = (dir, args, env = {}) => h.cli(args, { cwd: dir, env: { ...emuEnv(), ...env } })
const nsData = async (ns) => (await emu.export())[ns] ?? null

function json(out) {
  try {
    return JSON.parse(out.stdout)
  } catch (e) {
    throw new Error(`stdout is not one JSON document (${e.message}):\n${out.stdout}\nstderr:\n${out.stderr}`)
  }
}

const okScript = (node) =>
  `module.exports = { async up(db, info, handler) { await db.database.ref(handler.cfg.buildPath('${node}')).set(true); return '${node}' }, async down(db, info, handler) { await db.database.ref(handler.cfg.buildPath('${node}')).remove() } }\n`

/** `n` scripts V20250101000<i>_s<i>.js that each set node s<i>. */
function scripts(n) {
  const files = {}
  for (let i = 1; i <= n; i += 1) files[`V20250101000${i}_s${i}.js`] = okScript(`s${i}`)
  return files
}

test('down --steps N rolls back the newest N; a target still works; neither (or both) is refused', async () => {
  const dir = h.project()
  const ns = h.uniqueNs('steps')
  assert.equal((await run(dir, ['migrate', ...urlFlag(ns)])).code, 0)

  let out = await run(dir, ['down', '--steps', '1', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stdout, /rolled back 1 migration\(s\); now at version 202501010003/)
  assert.equal((await nsData(ns)).settings, undefined, 'the newest one was undone')

  out = await run(dir, ['down', '--steps', '2', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(
    json(out).executed.map((e) => e.timestamp),
    [202501010003, 202501010002],
  )
  assert.deepEqual(Object.keys((await nsData(ns)).schema_version), ['v202501010001'])

  // more steps than there are migrations: everything, no error
  out = await run(dir, ['down', '--steps', '9', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(
    json(out).executed.map((e) => e.timestamp),
    [202501010001],
  )

  assert.equal((await run(dir, ['migrate', ...urlFlag(ns)])).code, 0)
  out = await run(dir, ['down', '202501010003', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(
    json(out).executed.map((e) => e.timestamp),
    [202501010004],
  )

  const before = await nsData(ns)
  for (const args of [['down'], ['down', '0', '--steps', '1'], ['down', '--steps', '0'], ['down', '--steps', 'x']]) {
    out = await run(dir, [...args, ...urlFlag(ns)])
    assert.equal(out.code, 1, `${args.join(' ')}: ${out.stderr}`)
    assert.match(out.stderr, /targetVersion|--steps/, args.join(' '))
  }
  assert.deepEqual(await nsData(ns), before, 'refused downs change nothing')
})

test('migrate --mark-applied records pending migrations without running them, under the lock; dry run shows it', async () => {
  const dir = h.project()
  const ns = h.uniqueNs('mark')
  fs.writeFileSync(path.join(dir, 'msr.config.js'), `module.exports = { databaseUrl: '${emu.databaseUrl(ns)}', locking: { enabled: true, timeout: 10000 } }`)

  let out = await run(dir, ['migrate', '202501010002', '--mark-applied', '--dry-run', '--format', 'json'])
  assert.equal(out.code, 0, out.stderr)
  let r = json(out)
  assert.equal(r.dryRun, true)
  assert.deepEqual(r.executed, [])
  assert.deepEqual(
    r.plan.map((m) => m.name),
    ['V202501010001_create_users.js', 'V202501010002_create_posts.js'],
  )
  out = await run(dir, ['migrate', '--mark-applied', '--dry-run'])
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stdout, /Would mark as applied: 4 migration\(s\)/)
  assert.equal(await nsData(ns), null, 'dry run wrote nothing')

  // another process holds the lock: --mark-applied waits for it like migrate (here: --no-wait fails)
  const holder = await h.runNode(
    [
      '-e',
      `
    const { FirebaseRunner } = require(${JSON.stringify(h.ROOT)})
    FirebaseRunner.getInstance({ config: { databaseUrl: '${emu.databaseUrl(ns)}', locking: { enabled: true, timeout: 10000 } }, logger: () => {} })
      .then((r) => r.getHandler().lockingService.acquireLock('other-pod'))
      .then((ok) => { if (!ok) process.exit(1) })`,
    ],
    { env: emuEnv() },
  )
  assert.equal(holder.code, 0, holder.stderr)
  out = await run(dir, ['migrate', '--mark-applied', '--no-wait'])
  assert.equal(out.code, 3, out.stderr)
  assert.match(out.stderr, /Executor: other-pod/)
  assert.equal((await nsData(ns)).schema_version, undefined, 'nothing marked without the lock')
  const released = await run(dir, ['lock:release', '--force', '--format', 'json'])
  assert.equal(released.code, 0, released.stderr)
  assert.deepEqual([json(released).released, json(released).previous.executorId], [true, 'other-pod'])

  out = await run(dir, ['migrate', '202501010002', '--mark-applied'])
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stdout, /Marked 2 migration\(s\) as applied without running them/)
  let data = await nsData(ns)
  assert.equal(data.users, undefined, 'up() did not run')
  assert.equal(data.posts, undefined, 'up() did not run')
  assert.deepEqual(Object.keys(data.schema_version), ['v202501010001', 'v202501010002'])
  const rec = data.schema_version.v202501010001
  assert.equal(rec.markedApplied, true)
  assert.equal(rec.name, 'V202501010001_create_users.js')
  assert.ok(rec.checksum && rec.executorId && rec.lockEpoch > 0, JSON.stringify(rec))
  assert.equal(data.migrations._lock.executorId, undefined, 'lock released')

  out = await run(dir, ['migrate', '--format', 'json'])
  assert.equal(out.code, 0, out.stderr)
  r = json(out)
  assert.deepEqual(
    r.executed.map((e) => e.timestamp),
    [202501010003, 202501010004],
    'the rest runs normally',
  )
  data = await nsData(ns)
  assert.equal(data.users, undefined)
  assert.ok(data.comments && data.settings)
})

test('--env-file is loaded before the configuration; the real environment wins; a missing file is named', async () => {
  const dir = h.project({ 'V202501010001_a.js': okScript('a') })
  const ns = h.uniqueNs('envfile')
  fs.writeFileSync(path.join(dir, 'msr.config.js'), 'module.exports = { databaseUrl: process.env.MY_DB_URL }')
  fs.writeFileSync(path.join(dir, 'deploy.env'), `# settings for this deploy\nMY_DB_URL=${emu.databaseUrl(ns)}\nMSR_TABLE_NAME=from_env_file\nMSR_SHIFT=from_file\n`)

  let out = await run(dir, ['migrate', '--env-file', 'deploy.env'], { MSR_SHIFT: 'from_real_env' })
  assert.equal(out.code, 0, out.stderr)
  const data = await nsData(ns)
  assert.deepEqual(Object.keys(data), ['from_real_env'], 'MSR_SHIFT from the real environment wins')
  assert.ok(data.from_real_env.from_env_file.v202501010001, 'MSR_TABLE_NAME and MY_DB_URL (read by msr.config.js) came from the file')

  // A missing file is refused before anything runs. (Node itself checks a `--env-file` argument
  // anywhere on its command line and exits 9 naming the file; otherwise the CLI exits 2.)
  out = await run(dir, ['migrate', '--env-file', 'nope.env'])
  assert.ok(out.code === 2 || out.code === 9, `exit ${out.code}: ${out.stderr}`)
  assert.match(out.stderr, /nope\.env/)
  assert.equal(Object.keys(await nsData(ns)).length, 1, 'nothing else was written')
})

test('create --ext cjs writes a CommonJS script that migrates', async () => {
  const dir = h.project(null)
  const ns = h.uniqueNs('cjs')
  const out = await run(dir, ['create', 'add_flags', '--ext', 'cjs', '--format', 'json'])
  assert.equal(out.code, 0, out.stderr)
  assert.match(json(out).path, /V\d{12}_add_flags\.cjs$/)
  assert.match(fs.readFileSync(json(out).path, 'utf8'), /module\.exports = class/)
  const m = await run(dir, ['migrate', '--format', 'json', ...urlFlag(ns)])
  assert.equal(m.code, 0, m.stderr)
  assert.match(json(m).executed[0].name, /_add_flags\.cjs$/)
})

test('list -n N shows the newest N migrations, executed and pending alike', async () => {
  const dir = h.project(scripts(6))
  const ns = h.uniqueNs('listn')
  assert.equal((await run(dir, ['migrate', '202501010002', ...urlFlag(ns)])).code, 0)

  const versions = async (args) => json(await run(dir, ['list', ...args, '--format', 'json', ...urlFlag(ns)])).migrations.map((m) => [m.version % 10, m.status])
  assert.deepEqual(await versions(['-n', '3']), [
    [4, 'pending'],
    [5, 'pending'],
    [6, 'pending'],
  ])
  assert.deepEqual(await versions(['-n', '5']), [
    [2, 'executed'],
    [3, 'pending'],
    [4, 'pending'],
    [5, 'pending'],
    [6, 'pending'],
  ])
  assert.equal((await versions(['-n', '0'])).length, 6)
  assert.equal((await versions(['--display-limit', '2'])).length, 2, 'displayLimit is the default')
  const all = json(await run(dir, ['list', '-n', '1', '--format', 'json', ...urlFlag(ns)]))
  assert.deepEqual([all.executed, all.pending], [2, 4], 'counts are totals')

  const text = await run(dir, ['list', '-n', '2', ...urlFlag(ns)])
  assert.equal(text.code, 0, text.stderr)
  const rows = text.stdout.split('\n').filter((l) => l.startsWith('2025'))
  assert.deepEqual(
    rows.map((l) => l.split(/\s+/)[0]),
    ['202501010005', '202501010006'],
  )
  assert.match(text.stdout, /newest 2 of 6 shown; 2 executed, 4 pending, 0 ignored/)
})

test('--dry-run returns the plan: what would run, in order', async () => {
  const dir = h.project()
  const ns = h.uniqueNs('plan')
  let out = await run(dir, ['migrate', '--dry-run', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  let r = json(out)
  assert.equal(r.dryRun, true)
  assert.deepEqual(r.executed, [])
  assert.deepEqual(
    r.plan.map((m) => m.timestamp),
    [202501010001, 202501010002, 202501010003, 202501010004],
  )
  out = await run(dir, ['migrate', '--dry-run', ...urlFlag(ns)])
  assert.match(out.stdout, /Would execute: 4 migration\(s\)\n {2}1\. V202501010001_create_users\.js\n {2}2\. V202501010002_create_posts\.js/)
  assert.equal(await nsData(ns), null)

  assert.equal((await run(dir, ['migrate', ...urlFlag(ns)])).code, 0)
  out = await run(dir, ['down', '202501010002', '--dry-run', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  r = json(out)
  assert.deepEqual(
    r.plan.map((m) => m.timestamp),
    [202501010004, 202501010003],
    'down plans newest first',
  )
  assert.deepEqual(r.executed, [])
  assert.equal(Object.keys((await nsData(ns)).schema_version).length, 4, 'nothing rolled back')
})

test('errors under --format json: one JSON object on stdout with code, message and exitCode; same exit codes', async () => {
  const dir = h.project({ 'V202501010001_a.js': okScript('a'), 'V202501010002_boom.js': "module.exports = { async up() { throw new Error('kaput') } }\n" })
  const ns = h.uniqueNs('jsonerr')
  const cases = [
    { args: ['migrate', '2025', ...urlFlag(ns)], exit: 2, code: 'CONFIG_INVALID', re: /Invalid target version "2025"/ },
    { args: ['migrate', '--database-url', 'http://127.0.0.1:1?ns=x'], env: { FIREBASE_DATABASE_EMULATOR_HOST: '' }, exit: 7, code: 'CONNECTION_FAILED', re: /127\.0\.0\.1:1/ },
    { args: ['list', '-n', 'abc', ...urlFlag(ns)], exit: 1, code: 'USAGE', re: /Invalid number "abc"/ },
    { args: ['lock:release'], exit: 1, code: 'USAGE', re: /--force/ },
    { args: ['bogus'], exit: 1, code: 'USAGE', re: /bogus/ },
    { args: ['down', ...urlFlag(ns)], exit: 1, code: 'USAGE', re: /targetVersion/ },
    { args: ['list', '--config-file', 'nope.js'], exit: 2, code: 'CONFIG_INVALID', re: /nope\.js/ },
    { args: ['backup', 'restore', 'backups/nope.json', ...urlFlag(ns)], exit: 6, code: null, re: /nope\.json/ },
  ]
  for (const c of cases) {
    const out = await run(dir, [...c.args, '--format', 'json'], c.env)
    assert.equal(out.code, c.exit, `${c.args.join(' ')}: ${out.stdout} ${out.stderr}`)
    const { error } = json(out)
    assert.ok(error, `${c.args.join(' ')}: ${out.stdout}`)
    if (c.code) assert.equal(error.code, c.code, c.args.join(' '))
    assert.equal(error.exitCode, c.exit)
    assert.match(error.message, c.re)
    assert.doesNotMatch(out.stderr, /✗/, `${c.args.join(' ')}: the error is not repeated as text`)
  }

  // a failing script: the error plus what ran before it
  const out = await run(dir, ['migrate', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 3, out.stderr)
  const r = json(out)
  assert.equal(r.error.code, 'SCRIPT_FAILED')
  assert.equal(r.error.exitCode, 3)
  assert.match(r.error.message, /V202501010002_boom\.js/)
  assert.match(r.error.message, /kaput/)
  assert.equal(r.success, false)
  assert.deepEqual(
    r.executed.map((e) => e.timestamp),
    [202501010001],
  )
})

test('ExitCode is the table the CLI exits with and --help lists, the same for CJS and ESM', async () => {
  const { ExitCode } = require('..')
  const table = { SUCCESS: 0, GENERAL_ERROR: 1, VALIDATION_ERROR: 2, MIGRATION_FAILED: 3, ROLLBACK_FAILED: 4, BACKUP_FAILED: 5, RESTORE_FAILED: 6, DATABASE_CONNECTION_ERROR: 7 }
  assert.deepEqual(ExitCode, table)
  assert.ok(Object.isFrozen(ExitCode))
  assert.equal((await import('../index.mjs')).ExitCode, ExitCode)
  const dir = h.project({})
  const help = await run(dir, ['--help'])
  assert.equal(help.code, ExitCode.SUCCESS)
  assert.match(
    help.stdout.replace(/\s+/g, ' '),
    /Exit codes: 0 ok, 1 general error, 2 validation\/configuration error, 3 migration failed \(incl\. lock held\), 4 rollback failed, 5 backup failed, 6 restore failed, 7 database connection error\./,
  )
  assert.equal((await run(dir, ['bogus'])).code, ExitCode.GENERAL_ERROR)
  assert.equal((await run(dir, ['list', '--config-file', 'nope.js'])).code, ExitCode.VALIDATION_ERROR)
})
