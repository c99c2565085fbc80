// Rehearsals (`msr-firebase rehearse`, `runner.rehearse()`) against an emulator standing in for
// production: the report matches what the scripts do to the data, failures and downs that do
// not undo their ups are reported with the right exit codes, backups work with no database, and
// production only ever gets reads of the shift subtree (its request log is checked every time).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import net from 'node:net'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')
const { FirebaseRunner } = require('..')

let prod
before(async () => {
  prod = await h.startEmulator({ host: '127.0.0.1', port: 0 })
})
after(async () => {
  await prod.stop()
})

const V1 = 'V202501010001_create_users.js'
const RENAME = 'V202501010002_rename_name.js'
const THIRD = 'V202501010003_third.js'

const createUsers = `module.exports = class CreateUsers {
  async up(db, info, handler) {
    await db.database.ref(handler.cfg.buildPath('users')).set({ u1: { name: 'Alice', age: 30 }, u2: { name: 'Bob', age: 25 } })
  }
  async down(db, info, handler) { await db.database.ref(handler.cfg.buildPath('users')).remove() }
}
`
const flip = (from, to) => `
    const ref = db.database.ref(handler.cfg.buildPath('users'))
    const users = (await ref.once('value')).val() || {}
    const patch = {}
    for (const [k, u] of Object.entries(users)) {
      if (u.${from} !== undefined) { patch[k + '/${to}'] = u.${from}; patch[k + '/${from}'] = null }
    }
    await ref.update(patch)
    return 'renamed ' + Object.keys(patch).length / 2`
const rename = `module.exports = class RenameName {
  async up(db, info, handler) {${flip('name', 'fullName')}
  }
  async down(db, info, handler) {${flip('fullName', 'name')}
  }
}
`
const config = `module.exports = { folder: './migrations', shift: 'app', locking: { enabled: true, timeout: 60000 } }\n`

/**
 * A project whose production (a namespace of `prod`) has V1 executed and its lock held by
 * another pod; `files` are the pending scripts. Request counts are reset at the end.
 */
async function setUp(files) {
  const dir = h.project({ [V1]: createUsers }, 'msr-rehearse-')
  fs.writeFileSync(path.join(dir, 'msr.config.js'), config)
  const ns = h.uniqueNs('rehearse')
  const migrated = await run(dir, ns, ['migrate'])
  assert.equal(migrated.code, 0, migrated.stderr)
  for (const [name, src] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'migrations', name), src)
  const now = Date.now()
  await h.rawPut(prod, ns, 'app/migrations/_lock', {
    executorId: 'web-7d9f-other-pod',
    lockedAt: now,
    expiresAt: now + 600000,
    hostname: 'web-7d9f',
    processId: 7,
    epoch: 3,
  })
  await h.lever(prod, 'DELETE', 'requests')
  return { dir, ns }
}

/** The CLI in `dir`, with `FIREBASE_DATABASE_EMULATOR_HOST` pointing at production. */
function run(dir, ns, args, env = {}) {
  return h.cli([...args, '--database-url', prod.databaseUrl(ns)], { cwd: dir, env: { FIREBASE_DATABASE_EMULATOR_HOST: prod.hostPort, ...env } })
}

function json(out) {
  try {
    return JSON.parse(out.stdout)
  } catch (e) {
    throw new Error(`stdout is not JSON (${e.message}):\n${out.stdout}\nstderr:\n${out.stderr}`)
  }
}

/** Production received reads only, each of the shift subtree. */
async function onlyReads() {
  const counts = await h.lever(prod, 'GET', 'requests')
  assert.deepEqual(
    Object.keys(counts.byMethod).filter((m) => m !== 'GET'),
    [],
    JSON.stringify(counts),
  )
  for (const p of Object.keys(counts.byPath)) assert.match(p, /^GET \/app(\/|$)/, `read outside the shift: ${p}`)
  return counts
}

test('rehearse: a rename shows its counts and example paths, production is only read', async () => {
  const { dir, ns } = await setUp({ [RENAME]: rename })
  const before = await h.rawGet(prod, ns, 'app')
  await h.lever(prod, 'DELETE', 'requests')

  const out = await run(dir, ns, ['rehearse', '--format', 'json'])
  assert.equal(out.code, 0, out.stderr)
  const r = json(out)
  assert.equal(r.success, true)
  assert.equal(r.source.kind, 'database')
  assert.equal(r.source.path, '/app')
  assert.equal(r.source.lockSkipped, true)
  assert.equal(r.executed, 1)
  assert.deepEqual(
    r.migrations.map((m) => [m.name, m.outcome]),
    [[RENAME, 'succeeded']],
  )
  const c = r.migrations[0].changes
  assert.deepEqual([c.added, c.removed, c.changed], [2, 2, 0])
  assert.deepEqual(c.examples, [
    { path: '/app/users/u1/fullName', kind: 'added' },
    { path: '/app/users/u1/name', kind: 'removed' },
    { path: '/app/users/u2/fullName', kind: 'added' },
    { path: '/app/users/u2/name', kind: 'removed' },
  ])
  assert.deepEqual(
    c.children.map((ch) => [ch.key, ch.bytesBefore, ch.bytesAfter]),
    [
      [
        'users',
        JSON.stringify({ u1: { age: 30, name: 'Alice' }, u2: { age: 25, name: 'Bob' } }).length,
        JSON.stringify({ u1: { age: 30, fullName: 'Alice' }, u2: { age: 25, fullName: 'Bob' } }).length,
      ],
    ],
  )
  assert.deepEqual(r.migrations[0].requests, { total: 2, byMethod: { GET: 1, PATCH: 1 } })

  // Production: read only (one GET here), untouched (its lock still the other pod's).
  const counts = await onlyReads()
  assert.equal(counts.total, r.source.requests, JSON.stringify(counts))
  assert.deepEqual(await h.rawGet(prod, ns, 'app'), before)

  // The same as text.
  const text = await run(dir, ns, ['rehearse'])
  assert.equal(text.code, 0, text.stderr)
  assert.match(text.stdout, /Rehearsal on a copy of \/app/)
  assert.match(text.stdout, new RegExp(`✓ \\[1/1\\] ${RENAME} \\(\\d+ ms, 2 request\\(s\\): 1 GET, 1 PATCH\\)`))
  assert.match(text.stdout, /\+2 added, -2 removed, ~0 changed/)
  assert.match(text.stdout, /\+ \/app\/users\/u1\/fullName\n\s+- \/app\/users\/u1\/name/)
  assert.match(text.stdout, /The live migration lock in the data was not copied/)
  assert.match(text.stdout, /nothing was written to it/)
  assert.match(text.stderr, /\[rehearsal\] /)
  await onlyReads()
})

test('rehearse: a read of production that takes a while shows a progress line; --format json stdout stays one document', async () => {
  const { dir, ns } = await setUp({ [RENAME]: rename })
  // Slow answers so the read takes more than the second before progress is drawn.
  await h.lever(prod, 'PUT', 'latency', { ms: 1500 })
  try {
    const out = await run(dir, ns, ['rehearse', '--format', 'json'])
    assert.equal(out.code, 0, out.stderr)
    assert.equal(json(out).success, true)
    assert.match(out.stderr, /^Reading \/app: \d+\.\d MB, [\d,]+ nodes, \d+\.\d MB\/s, 1 requests$/m)
    assert.doesNotMatch(out.stderr, /\r|\x1b/, 'no terminal control codes off a terminal')
  } finally {
    await h.lever(prod, 'PUT', 'latency', { ms: 0 })
  }
  await onlyReads()
})

test('rehearse: a failing script exits 3 naming it, production untouched', async () => {
  const failing = `module.exports = { async up(db, info, handler) {
    await db.database.ref(handler.cfg.buildPath('half')).set('written before the failure')
    throw new Error('users[7] has no email')
  } }\n`
  const { dir, ns } = await setUp({ [RENAME]: rename, [THIRD]: failing })
  const before = await h.rawGet(prod, ns, 'app')
  const out = await run(dir, ns, ['rehearse'])
  assert.equal(out.code, 3, out.stdout + out.stderr)
  assert.match(out.stdout, new RegExp(`✗ \\[2/2\\] ${THIRD} failed .*users\\[7\\] has no email`))
  assert.match(out.stdout, /\+ \/app\/half/)
  assert.match(out.stdout, /Rollback \(backup\) in the copy: done/)
  assert.match(out.stderr, /Rehearsal failed: .*V202501010003_third\.js.*users\[7\] has no email/)
  const j = await run(dir, ns, ['rehearse', '--format', 'json'])
  assert.equal(j.code, 3)
  const r = json(j)
  assert.equal(r.error.code, 'SCRIPT_FAILED')
  assert.equal(r.error.exitCode, 3)
  assert.deepEqual(
    r.migrations.map((m) => m.outcome),
    ['succeeded', 'failed'],
  )
  assert.deepEqual(await h.rawGet(prod, ns, 'app'), before)
  await onlyReads()
})

test('rehearse --down flags a down that leaves a stray node and passes one that round-trips', async () => {
  const leaky = `module.exports = class Leaky {
    async up(db, info, handler) {
      await db.database.ref(handler.cfg.buildPath('flags/a')).set(1)
      await db.database.ref(handler.cfg.buildPath('stray')).set({ x: 1 })
    }
    async down(db, info, handler) { await db.database.ref(handler.cfg.buildPath('flags')).remove() }
  }\n`
  const { dir, ns } = await setUp({ [RENAME]: rename })
  const ok = await run(dir, ns, ['rehearse', '--down'])
  assert.equal(ok.code, 0, ok.stdout + ok.stderr)
  assert.match(ok.stdout, new RegExp(`✓ ${RENAME}: down\\(\\) undoes up\\(\\)`))
  assert.match(ok.stdout, /The data is back to what it was before the first up\(\)/)
  await onlyReads()

  fs.writeFileSync(path.join(dir, 'migrations', THIRD), leaky)
  const bad = await run(dir, ns, ['rehearse', '--down', '--format', 'json'])
  assert.equal(bad.code, 3, bad.stderr)
  const r = json(bad)
  assert.equal(r.down.roundTrip, false)
  assert.deepEqual(
    r.down.migrations.map((c) => [c.name, c.outcome]),
    [
      [THIRD, 'differs'],
      [RENAME, 'undone'],
    ],
  )
  assert.deepEqual(r.down.migrations[0].changes.examples, [{ path: '/app/stray', kind: 'added' }])
  assert.match(r.error.message, /down\(\) of V202501010003_third\.js does not undo its up\(\).*\/app\/stray added/)
  await onlyReads()
})

test('rehearse --from-backup works with no database reachable; bad inputs exit 2, an unreadable source 7', async () => {
  const { dir, ns } = await setUp({ [RENAME]: rename })
  const backup = await run(dir, ns, ['backup', 'create', '--format', 'json'])
  assert.equal(backup.code, 0, backup.stderr)
  const file = json(backup).path
  await h.lever(prod, 'DELETE', 'requests')
  // No database: a closed port, and no emulator host.
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = srv.address().port
      srv.close(() => resolve(p))
    })
  })
  const offline = (args) =>
    h.cli([...args, '--database-url', `http://127.0.0.1:${port}?ns=${ns}`], { cwd: dir, env: { FIREBASE_DATABASE_EMULATOR_HOST: '', MSR_NETWORK_RETRY_WINDOW: '500' } })
  const out = await offline(['rehearse', '--from-backup', file, '--format', 'json'])
  assert.equal(out.code, 0, out.stderr)
  const r = json(out)
  assert.equal(r.source.kind, 'backup')
  assert.equal(r.source.requests, 0)
  assert.deepEqual(
    r.migrations.map((m) => [m.name, m.changes.added, m.changes.removed]),
    [[RENAME, 2, 2]],
  )
  // Even without any database URL.
  const noUrl = await h.cli(['rehearse', '--from-backup', file], { cwd: dir, env: { FIREBASE_DATABASE_EMULATOR_HOST: '', FIREBASE_DATABASE_URL: '', DATABASE_URL: '' } })
  assert.equal(noUrl.code, 0, noUrl.stderr)
  assert.match(noUrl.stdout, /from the backup .*backup-/)

  const missing = await offline(['rehearse', '--from-backup', 'nope.json'])
  assert.equal(missing.code, 7, missing.stderr)
  assert.match(missing.stderr, /Cannot read the backup .*nope\.json/)
  fs.writeFileSync(path.join(dir, 'plain.json'), '{"users": {}}')
  const notBackup = await offline(['rehearse', '--from-backup', 'plain.json'])
  assert.equal(notBackup.code, 2, notBackup.stderr)
  assert.match(notBackup.stderr, /no "metadata" block/)
  const target = await offline(['rehearse', '42', '--from-backup', file])
  assert.equal(target.code, 2, target.stderr)
  assert.match(target.stderr, /Invalid target version "42"/)
  const unreachable = await offline(['rehearse'])
  assert.equal(unreachable.code, 7, unreachable.stderr)
  assert.match(unreachable.stderr, /Cannot read \/app from/)

  // The source refuses the shift: exit 7, nothing ran.
  await h.lever(prod, 'PUT', 'deny', { ns, paths: ['app'] })
  try {
    const denied = await run(dir, ns, ['rehearse'])
    assert.equal(denied.code, 7, denied.stderr)
    assert.match(denied.stderr, /Cannot read \/app .* to rehearse on/)
  } finally {
    await h.lever(prod, 'DELETE', 'deny')
  }
  // Nothing pending.
  fs.rmSync(path.join(dir, 'migrations', RENAME))
  const nothing = await run(dir, ns, ['rehearse'])
  assert.equal(nothing.code, 0, nothing.stderr)
  assert.match(nothing.stdout, /Nothing to rehearse: all 1 migration\(s\) already executed/)
  await onlyReads()
})

test('runner.rehearse(): a typed report, the scripts get the copy, hooks are not called', async () => {
  const { dir, ns } = await setUp({ [RENAME]: rename })
  const calls = []
  const cwd = process.cwd()
  process.chdir(dir)
  try {
    const runner = await FirebaseRunner.getInstance({
      config: { folder: './migrations', shift: 'app', databaseUrl: prod.databaseUrl(ns), locking: { enabled: true } },
      logger: () => {},
      hooks: { onStart: () => calls.push('onStart'), onAfterMigrate: () => calls.push('onAfterMigrate') },
    })
    await h.lever(prod, 'DELETE', 'requests')
    const keep = path.join(dir, 'rehearsed.json')
    const r = await runner.rehearse({ down: true, keep })
    assert.equal(r.success, true, JSON.stringify(r.error))
    assert.equal(r.migrations[0].name, RENAME)
    assert.deepEqual(r.migrations[0].changes.examples[0], { path: '/app/users/u1/fullName', kind: 'added' })
    assert.equal(r.down.roundTrip, true)
    assert.equal(r.kept, keep)
    const kept = JSON.parse(fs.readFileSync(keep, 'utf8'))
    assert.deepEqual(kept.data.users.u1, { age: 30, fullName: 'Alice' })
    assert.deepEqual(calls, [], 'a rehearsal is not a deploy: no hooks')
    await onlyReads()
    // The runner's own database is still production's, and the lock there is the other pod's.
    const status = await runner.getLockStatus()
    assert.equal(status.lockedBy, 'web-7d9f-other-pod')
    await assert.rejects(runner.rehearse({ fromBackup: path.join(dir, 'nope.json') }), { code: 'SOURCE_UNREADABLE' })
  } finally {
    process.chdir(cwd)
  }
})

test('runner.rehearse(): a script abandoned after scriptTimeout gets its further writes refused, as in a real run (the sandbox runner fences its db)', async () => {
  // Its up() outlives scriptTimeout, then writes: the rehearsal runner's fence closed when it
  // abandoned the script, so that write is refused before it leaves (SCRIPT_TIMEOUT).
  const late = `module.exports = { async up(db, info, handler) {
    await new Promise((resolve) => setTimeout(resolve, 400))
    globalThis.lateWrite = db.database.ref(handler.cfg.buildPath('late')).set(true).then(() => 'written', (e) => e.code)
    await globalThis.lateWrite
  } }
`
  const { dir, ns } = await setUp({ [RENAME]: late })
  const cwd = process.cwd()
  process.chdir(dir)
  try {
    const runner = await FirebaseRunner.getInstance({
      config: { folder: './migrations', shift: 'app', databaseUrl: prod.databaseUrl(ns), scriptTimeout: 100, locking: { enabled: true } },
      logger: () => {},
    })
    await h.lever(prod, 'DELETE', 'requests')
    delete globalThis.lateWrite
    const r = await runner.rehearse()
    assert.equal(r.success, false)
    assert.equal(r.error.code, 'SCRIPT_TIMEOUT', JSON.stringify(r.error))
    for (let i = 0; i < 100 && globalThis.lateWrite === undefined; i += 1) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(await globalThis.lateWrite, 'SCRIPT_TIMEOUT', 'the late write was refused by the fence, not sent')
    await onlyReads()
  } finally {
    delete globalThis.lateWrite
    process.chdir(cwd)
  }
})

test('rehearse under firebase.json rules: data a .validate refuses after a migration is a warning; --strict fails it (exit 3)', async () => {
  const ageAsText = `module.exports = { async up(db, info, handler) { await db.database.ref(handler.cfg.buildPath('users/u1/age')).set('thirty') } }\n`
  const { dir, ns } = await setUp({ [RENAME]: ageAsText })
  fs.writeFileSync(
    path.join(dir, 'database.rules.json'),
    JSON.stringify({ rules: { '.read': true, '.write': true, app: { users: { $uid: { age: { '.validate': 'newData.isNumber()' } } } } } }),
  )
  fs.writeFileSync(path.join(dir, 'firebase.json'), JSON.stringify({ database: { rules: 'database.rules.json' } }))
  const before = await h.rawGet(prod, ns, 'app')

  const out = await run(dir, ns, ['rehearse'])
  assert.equal(out.code, 0, out.stdout + out.stderr)
  assert.match(out.stdout, /Rules: .*database\.rules\.json; the scripts write as an admin/)
  assert.match(out.stdout, /! the data at \/app\/users\/u1\/age fails \.validate \(newData\.isNumber\(\), line 1\): clients can no longer write there/)
  assert.match(out.stdout, /1 warning\(s\) above \(--strict makes them fail the rehearsal\)/)

  const strict = await run(dir, ns, ['rehearse', '--strict', '--format', 'json'])
  assert.equal(strict.code, 3, strict.stdout + strict.stderr)
  const r = json(strict)
  assert.equal(r.success, false)
  assert.equal(r.warnings, 1)
  assert.match(r.error.message, /--strict: V202501010002_rename_name\.js: the data at \/app\/users\/u1\/age fails \.validate/)
  assert.deepEqual(r.migrations[0].findings.invalid, [{ path: '/app/users/u1/age', rule: 'newData.isNumber()', line: 1 }])
  assert.deepEqual(await h.rawGet(prod, ns, 'app'), before)
  await onlyReads()
})
