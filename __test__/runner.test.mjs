// FirebaseRunner end to end against the embedded emulator: the predecessor's smoke scenario
// (with a shift), history layout, predecessor-format history, rollback strategies, bad scripts,
// dry run, module formats, the db facade and EntityService.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')
const pkg = await import('../index.mjs')
const { FirebaseRunner, EntityService, ServerValue } = pkg

const SHIFT = 'smoke'
let emu

before(async () => {
  emu = await h.startEmulator({ host: '127.0.0.1', port: 0 })
})
after(async () => {
  await emu.stop()
})

/** A temp project: `migrations/` with the given files ({ name: source }) or the examples. */
function project(files) {
  return h.project(files)
}

async function runnerFor(dir, extra = {}) {
  const ns = extra.ns || h.uniqueNs('run')
  const logs = []
  const config = {
    databaseUrl: emu.databaseUrl(ns),
    folder: path.join(dir, 'migrations'),
    shift: SHIFT,
    backup: { folder: path.join(dir, 'backups') },
    ...extra.config,
  }
  const runner = await FirebaseRunner.getInstance({ config, logger: (lvl, msg) => logs.push([lvl, msg]) })
  return { runner, ns, logs, dir }
}

async function nsData(ns) {
  const all = await emu.export()
  return all[ns] ?? null
}

async function history(ns, shift = SHIFT, table = 'schema_version') {
  const v = await h.rawGet(emu, ns, `${shift}/${table}`)
  return Object.values(v || {}).sort((a, b) => a.timestamp - b.timestamp)
}

function checkRecords(records, versions) {
  assert.deepEqual(
    records.map((r) => r.timestamp),
    versions,
  )
  for (const r of records) {
    assert.equal(typeof r.name, 'string')
    assert.ok(r.name.startsWith(`V${r.timestamp}_`), r.name)
    assert.equal(typeof r.startedAt, 'number')
    assert.equal(typeof r.finishedAt, 'number')
    assert.ok(r.finishedAt >= r.startedAt)
    assert.match(r.checksum, /^[0-9a-f]{64}$/)
  }
}

const script = (up, down = '') => `module.exports = class { async up(db, info, handler) { ${up} } ${down ? `async down(db, info, handler) { ${down} }` : ''} }\n`
const setAt = (node, value) => `await db.database.ref(handler.cfg.buildPath('${node}')).set(${JSON.stringify(value)});`
const removeAt = (node) => `await db.database.ref(handler.cfg.buildPath('${node}')).remove();`

test('smoke scenario with a shift: migrate to target, migrate, backup/restore, down, migrate again', async () => {
  const { runner, ns, dir } = await runnerFor(project())
  const info = runner.getConnectionInfo()
  assert.equal(info.shift, SHIFT)
  assert.equal(info.tableName, 'schema_version')
  assert.equal(info.databaseUrl, emu.databaseUrl(ns))
  assert.deepEqual(await runner.listNodes(), [])

  const v = await runner.validate()
  assert.equal(v.pending.length, 4)
  assert.ok(
    v.pending.every((p) => p.valid),
    JSON.stringify(v),
  )

  let r = await runner.migrate(202501010002)
  assert.equal(r.success, true)
  assert.equal(r.executed.length, 2)
  assert.deepEqual(
    r.executed.map((e) => e.timestamp),
    [202501010001, 202501010002],
  )
  assert.ok(r.executed[0].name.includes('create_users'))
  assert.equal(r.executed[0].result, 'created 3 users')
  checkRecords(await history(ns), [202501010001, 202501010002])
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/users/user1/name`), 'Alice')
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/posts/post1/title`), 'First Post')
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/comments`), null)
  assert.equal(await h.rawGet(emu, ns, 'schema_version'), null, 'history lives under the shift')
  assert.ok((await runner.listNodes()).includes('schema_version'))

  const nodes = await runner.backupNodes(['users', 'missing'])
  assert.equal(nodes.users.user2.name, 'Bob')
  assert.equal(nodes.missing, null)

  r = await runner.migrate()
  assert.equal(r.executed.length, 2)
  assert.equal(r.migrated.length, 2)
  const hist4 = await history(ns)
  checkRecords(hist4, [202501010001, 202501010002, 202501010003, 202501010004])
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/posts/post1/comments`), 2)
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/settings/app/name`), 'MSR Firebase Test')

  r = await runner.migrate()
  assert.equal(r.success, true)
  assert.equal(r.executed.length, 0)
  assert.equal(r.migrated.length, 4)
  assert.deepEqual(await history(ns), hist4, 'nothing new recorded')

  const backupPath = await runner.createBackup()
  assert.ok(fs.existsSync(backupPath), backupPath)
  assert.ok(backupPath.startsWith(path.join(dir, 'backups')))
  await h.rawPut(emu, ns, `${SHIFT}/users/user1/name`, 'Mallory')
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/users/user1/name`), 'Mallory')
  await runner.restoreFromBackup(backupPath)
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/users/user1/name`), 'Alice')
  assert.deepEqual(await history(ns), hist4)

  r = await runner.down(202501010003)
  assert.equal(r.executed.length, 1)
  assert.equal(r.executed[0].timestamp, 202501010004)
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/settings`), null)
  checkRecords(await history(ns), [202501010001, 202501010002, 202501010003])

  r = await runner.down(202501010001)
  assert.deepEqual(
    r.executed.map((e) => e.timestamp),
    [202501010003, 202501010002],
  )
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/posts`), null)
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/comments`), null)
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/users/user1/name`), 'Alice')
  checkRecords(await history(ns), [202501010001])

  r = await runner.migrate()
  assert.equal(r.executed.length, 3)
  checkRecords(await history(ns), [202501010001, 202501010002, 202501010003, 202501010004])
  const nodesAfter = await runner.listNodes()
  for (const n of ['users', 'posts', 'comments', 'settings', 'schema_version']) assert.ok(nodesAfter.includes(n), n)

  const list = await runner.list()
  assert.equal(list.executed, 4)
  assert.equal(list.pending, 0)
  assert.ok(list.migrations.every((m) => m.status === 'executed'))

  const handler = runner.getHandler()
  assert.equal(handler, runner.getHandler())
  assert.equal(handler.lockingService, undefined)
  assert.equal(handler.cfg.buildPath('users'), `${SHIFT}/users`)
  assert.equal(await handler.db.checkConnection(), true)
})

test('no shift: records at the root, never under "undefined/"', async () => {
  const { runner, ns } = await runnerFor(project(), { config: { shift: undefined } })
  const r = await runner.migrate(202501010001)
  assert.equal(r.executed.length, 1)
  const root = await nsData(ns)
  assert.deepEqual(Object.keys(root).sort(), ['schema_version', 'users'])
  assert.deepEqual(await runner.listNodes(), ['schema_version', 'users'])
})

test('history written by the TypeScript predecessor (push ids) is read: only newer scripts run', async () => {
  const ns = h.uniqueNs('legacy')
  const legacy = {
    '-NaBcDeFgHiJkLmNoP01': {
      name: 'V202501010001_create_users.ts',
      filepath: '/old/V202501010001_create_users.ts',
      timestamp: 202501010001,
      startedAt: 1735689600000,
      finishedAt: 1735689600100,
      username: 'ci',
      result: 'created 3 users',
      checksum: 'abc',
    },
    '-NaBcDeFgHiJkLmNoP02': {
      name: 'V202501010002_create_posts.ts',
      filepath: '/old/V202501010002_create_posts.ts',
      timestamp: 202501010002,
      startedAt: 1735689600200,
      finishedAt: 1735689600300,
      username: 'ci',
      result: 'created 2 posts',
      checksum: 'def',
    },
  }
  await h.rawPut(emu, ns, SHIFT, { schema_version: legacy, users: { user1: { name: 'Old Alice' } } })
  const { runner } = await runnerFor(project(), { ns })
  const r = await runner.migrate()
  assert.deepEqual(
    r.executed.map((e) => e.timestamp),
    [202501010003, 202501010004],
  )
  assert.deepEqual(
    r.migrated.map((e) => e.timestamp),
    [202501010001, 202501010002],
  )
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/users/user1/name`), 'Old Alice', 'create_users did not run again')
  const raw = await h.rawGet(emu, ns, `${SHIFT}/schema_version`)
  assert.deepEqual(raw['-NaBcDeFgHiJkLmNoP01'], legacy['-NaBcDeFgHiJkLmNoP01'], 'old records untouched')
  assert.equal(Object.keys(raw).length, 4)
  // down removes an old record by its push id
  const d = await runner.down(202501010001)
  assert.equal(d.executed.length, 3)
  assert.deepEqual(Object.keys(await h.rawGet(emu, ns, `${SHIFT}/schema_version`)), ['-NaBcDeFgHiJkLmNoP01'])
})

// A run from { users } with posts ok and a third script that writes `partial` then throws.
function failingProject(failingDown) {
  return project({
    'V202501010001_users.js': script(setAt('users', { u1: 'A' }) + ` return 'users'`, removeAt('users')),
    'V202501010002_posts.js': script(setAt('posts', { p1: 'P' }) + ` return 'posts'`, removeAt('posts')),
    'V202501010003_broken.js': script(setAt('partial', { x: 1 }) + ` throw new Error('boom in broken')`, failingDown),
  })
}

for (const [strategy, failingDown, expect] of [
  ['backup', removeAt('partial'), { posts: null, partial: null, history: [202501010001] }],
  ['down', removeAt('partial'), { posts: null, partial: null, history: [202501010001] }],
  ['both', `throw new Error('down also broken')`, { posts: null, partial: null, history: [202501010001] }],
  ['none', removeAt('partial'), { posts: { p1: 'P' }, partial: { x: 1 }, history: [202501010001, 202501010002] }],
]) {
  test(`failing script with rollbackStrategy ${strategy}`, async () => {
    const { runner, ns, dir } = await runnerFor(failingProject(failingDown), { config: { rollbackStrategy: strategy } })
    await runner.migrate(202501010001)
    await assert.rejects(runner.migrate(), (err) => {
      assert.equal(err.code, 'SCRIPT_FAILED', err.message)
      assert.match(err.message, /V202501010003_broken\.js/)
      assert.match(err.message, /boom in broken/)
      return true
    })
    assert.deepEqual(await h.rawGet(emu, ns, `${SHIFT}/users`), { u1: 'A' })
    assert.deepEqual(await h.rawGet(emu, ns, `${SHIFT}/posts`), expect.posts)
    assert.deepEqual(await h.rawGet(emu, ns, `${SHIFT}/partial`), expect.partial)
    assert.deepEqual(
      (await history(ns)).map((r) => r.timestamp),
      expect.history,
    )
    const backups = fs.existsSync(path.join(dir, 'backups')) ? fs.readdirSync(path.join(dir, 'backups')) : []
    if (strategy === 'down' || strategy === 'none') assert.equal(backups.length, 0, 'no backup taken for ' + strategy)
  })
}

test('a failing down() under rollbackStrategy down gives ROLLBACK_FAILED naming both causes', async () => {
  const { runner, ns } = await runnerFor(failingProject(`throw new Error('down also broken')`), { config: { rollbackStrategy: 'down' } })
  await assert.rejects(runner.migrate(), (err) => {
    assert.equal(err.code, 'ROLLBACK_FAILED', err.message)
    assert.match(err.message, /boom in broken/)
    assert.match(err.message, /down also broken/)
    return true
  })
  assert.ok(ns)
})

test('a script without up(), a syntax error, duplicate versions, bad targets: clear errors, nothing written', async () => {
  const cases = [
    [{ 'V202501010001_ok.js': script(setAt('ok', 1)), 'V202501010002_noup.js': 'module.exports = class { async down() {} }\n' }, {}, /V202501010002_noup\.js/],
    [{ 'V202501010001_ok.js': script(setAt('ok', 1)), 'V202501010002_syntax.js': 'module.exports = class { async up( { \n' }, {}, /V202501010002_syntax\.js/],
    [
      { 'V202501010001_a.js': script(setAt('a', 1)), 'V202501010001_b.js': script(setAt('b', 1)) },
      { duplicateTimestampMode: 'error' },
      /Duplicate migration timestamp detected: 202501010001/,
    ],
  ]
  for (const [files, config, re] of cases) {
    const { runner, ns } = await runnerFor(project(files), { config })
    await assert.rejects(runner.migrate(), (err) => {
      assert.equal(err.code, 'VALIDATION_FAILED', `${err.code}: ${err.message}`)
      assert.match(err.message, re)
      return true
    })
    assert.equal(await nsData(ns), null, `nothing written for ${Object.keys(files)}`)
  }
  const { runner, ns } = await runnerFor(project())
  for (const bad of ['abc', -1, 1.5]) {
    await assert.rejects(runner.migrate(bad), (err) => err.code === 'CONFIG_INVALID' && /target version/i.test(err.message))
  }
  await assert.rejects(runner.migrate(123), (err) => /target version/i.test(err.message) && /12-digit/.test(err.message))
  await assert.rejects(runner.down(), (err) => err.code === 'CONFIG_INVALID')
  assert.equal(await nsData(ns), null)
})

test('strict config: a misspelt key in a FirebaseConfig or a plain object is CONFIG_INVALID with a hint; nothing written', async () => {
  const dir = project()
  const ns = h.uniqueNs('strict')
  const base = { databaseUrl: emu.databaseUrl(ns), folder: path.join(dir, 'migrations') }
  const cfg = new pkg.FirebaseConfig(base)
  cfg.lockng = { enabled: true }
  const plain = { ...base, locking: { enabeld: true } }
  for (const [config, re] of [
    [cfg, /unknown setting `lockng`; did you mean `locking`\?/],
    [plain, /unknown setting `locking\.enabeld`; did you mean `locking\.enabled`\?/],
    [{ ...base, tableName: 'migrations/_lock' }, /collides with the migration lock/],
  ]) {
    await assert.rejects(FirebaseRunner.getInstance({ config, logger: () => {} }), (err) => {
      assert.equal(err.code, 'CONFIG_INVALID', err.message)
      assert.match(err.message, re)
      return true
    })
  }
  assert.throws(() => new pkg.FirebaseConfig({ locking: { timeout: 1e30 } }).validate(), /locking\.timeout is too large/)
  assert.equal(await nsData(ns), null)
})

test('validate() reports a missing up() and a load error per script', async () => {
  const { runner } = await runnerFor(
    project({
      'V202501010001_ok.js': script(setAt('ok', 1)),
      'V202501010002_noup.js': 'module.exports = { down: async () => {} }\n',
      'V202501010003_syntax.js': 'module.exports = class { async up( { \n',
    }),
  )
  const v = await runner.validate()
  const byName = Object.fromEntries(v.pending.map((p) => [p.name, p]))
  assert.equal(byName['V202501010001_ok.js'].valid, true)
  assert.equal(byName['V202501010002_noup.js'].valid, false)
  assert.ok(
    byName['V202501010002_noup.js'].issues.some((i) => /UP/.test(i.code)),
    JSON.stringify(byName['V202501010002_noup.js']),
  )
  assert.equal(byName['V202501010003_syntax.js'].valid, false)
})

test('dry run changes nothing and reports what would run', async () => {
  const { runner, ns, dir, logs } = await runnerFor(project())
  await runner.migrate(202501010001)
  const beforeData = await nsData(ns)
  const r = await runner.migrate(undefined, { dryRun: true })
  assert.equal(r.success, true)
  assert.equal(r.executed.length, 0)
  assert.deepEqual(await nsData(ns), beforeData)
  assert.ok(
    logs.some(([, m]) => /Would execute: 3 migration/.test(m)),
    JSON.stringify(logs),
  )
  assert.ok(
    logs.every(([l, m]) => ['error', 'warn', 'info', 'debug'].includes(l) && typeof m === 'string'),
    'logger gets (level, message)',
  )
  const { runner: dryCfg } = await runnerFor(dir, { ns, config: { dryRun: true } })
  const backupsBefore = fs.readdirSync(path.join(dir, 'backups')).length
  await dryCfg.migrate()
  await dryCfg.down(0).catch(() => {})
  assert.deepEqual(await nsData(ns), beforeData)
  assert.equal(fs.readdirSync(path.join(dir, 'backups')).length, backupsBefore, 'no backup file in dry run')
})

test('ESM import and CJS require expose the same API', async () => {
  const cjs = require('..')
  for (const name of ['FirebaseRunner', 'FirebaseConfig', 'EntityService', 'startEmulator', 'FirebaseLockingService', 'ServerValue', 'ExitCode']) {
    assert.ok(cjs[name], `cjs ${name}`)
    assert.equal(pkg[name], cjs[name], `esm ${name}`)
  }
  assert.equal(typeof cjs.FirebaseRunner.getInstance, 'function')
  const cfg = new cjs.FirebaseConfig()
  assert.equal(cfg.tableName, 'schema_version')
  assert.equal(cfg.folder, './migrations')
  // through the package name too, from a separate process
  const out = await h.runNode(
    [
      '--input-type=module',
      '-e',
      "import * as m from '@migration-script-runner/firebase'; const c = (await import('node:module')).createRequire(process.cwd() + '/x.js')('@migration-script-runner/firebase'); console.log(typeof m.FirebaseRunner.getInstance, typeof c.FirebaseRunner.getInstance, m.FirebaseRunner === c.FirebaseRunner)",
    ],
    { cwd: h.ROOT },
  )
  assert.equal(out.stdout.trim(), 'function function true', out.stderr)
})

test(
  'a .ts migration without tsx/ts-node on Node 20 fails with a clear error',
  { skip: Number(process.versions.node.split('.')[0]) >= 22 ? 'Node has type stripping' : false },
  async () => {
    const { runner, ns } = await runnerFor(project({ 'V202501010001_typed.ts': 'export default class { async up(db: any): Promise<string> { return "x" } }\n' }))
    await assert.rejects(runner.migrate(), (err) => {
      assert.match(err.message, /V202501010001_typed\.ts/)
      assert.match(err.message, /tsx/)
      assert.match(err.message, /ts-node/)
      return true
    })
    assert.equal(await nsData(ns), null)
  },
)

test('sync up(), up() returning undefined, ESM default export, plain object: all run and are recorded', async () => {
  const { runner, ns } = await runnerFor(
    project({
      'V202501010001_sync.js': `module.exports = class { up(db, info, handler) { return 'sync ' + info.name } }\n`,
      'V202501010002_undef.js': `module.exports = { async up(db, info, handler) { await db.database.ref(handler.cfg.buildPath('u')).set(1) } }\n`,
      'V202501010003_esm.mjs': `export default class { async up(db, info, handler) { await db.database.ref(handler.cfg.buildPath('e')).set(info.timestamp); return 'esm' } }\n`,
    }),
  )
  const r = await runner.migrate()
  assert.equal(r.executed.length, 3)
  const hist = await history(ns)
  checkRecords(hist, [202501010001, 202501010002, 202501010003])
  assert.equal(hist[0].result, 'sync V202501010001_sync.js')
  assert.ok(!('result' in hist[1]) || hist[1].result === null || hist[1].result === '')
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/e`), 202501010003)
})

test('beforeMigrate.js runs on every migrate and is not recorded', async () => {
  const { runner, ns } = await runnerFor(
    project({
      'beforeMigrate.js': `module.exports = class { async up(db, info, handler) { await db.database.ref(handler.cfg.buildPath('before')).transaction((n) => (n || 0) + 1); return 'prepared' } }\n`,
      'V202501010001_a.js': script(`const n = (await db.database.ref(handler.cfg.buildPath('before')).get()).val(); ` + setAt('seen', 'x').replace('"x"', 'n')),
    }),
  )
  await runner.migrate()
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/before`), 1)
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/seen`), 1, 'beforeMigrate ran before the migration')
  checkRecords(await history(ns), [202501010001])
  await runner.migrate()
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/before`), 2)
  assert.equal((await history(ns)).length, 1)
  assert.ok(!(await history(ns)).some((r) => /beforeMigrate/.test(r.name)))
})

test('db facade: push ids, transactions under contention, queries, snapshots, server values', async () => {
  const { runner, ns } = await runnerFor(project({}))
  const db = runner.getHandler().db.database
  const base = db.ref('facade')
  assert.equal(base.key, 'facade')
  assert.equal(base.child('a/b').parent.key, 'a')
  assert.equal(base.root.key, null)

  // push: time-ordered ids, awaitable, key known at once
  const keys = []
  for (let i = 0; i < 20; i++) {
    const ref = base.child('list').push({ i })
    keys.push(ref.key)
    await ref
  }
  assert.deepEqual([...keys].sort(), keys, 'push ids sort in creation order')
  assert.equal(new Set(keys).size, 20)
  const listSnap = await base.child('list').once('value')
  const order = []
  listSnap.forEach((c) => {
    order.push(c.val().i)
  })
  assert.deepEqual(order, [...Array(20).keys()])

  // transaction: 5 concurrent increments on one counter are exact
  const counter = base.child('counter')
  const results = await Promise.all([...Array(5)].map(() => counter.transaction((n) => (n || 0) + 1)))
  assert.ok(results.every((r) => r.committed))
  assert.equal((await counter.get()).val(), 5)
  const aborted = await counter.transaction(() => undefined)
  assert.equal(aborted.committed, false)
  assert.equal(aborted.snapshot.val(), 5)

  // queries
  await base.child('people').set({
    a: { name: 'Ann', age: 40, team: 'x' },
    b: { name: 'Ben', age: 25, team: 'y' },
    c: { name: 'Cid', age: 31, team: 'x' },
    d: { name: 'Dee', age: 19, team: 'x' },
  })
  const people = base.child('people')
  const byAge = await people.orderByChild('age').limitToFirst(3).once('value')
  const names = []
  byAge.forEach((c) => {
    names.push(c.child('name').val())
  })
  assert.deepEqual(names, ['Dee', 'Ben', 'Cid'])
  assert.equal(byAge.numChildren(), 3)
  const teamX = await people.orderByChild('team').equalTo('x').once('value')
  assert.deepEqual(Object.keys(teamX.val()).sort(), ['a', 'c', 'd'])
  const last = await people.orderByChild('age').limitToLast(1).get()
  assert.deepEqual(Object.keys(last.val()), ['a'])
  const range = await people.orderByChild('age').startAt(20).endAt(35).get()
  assert.deepEqual(Object.keys(range.val()).sort(), ['b', 'c'])
  const byKey = await people.orderByKey().startAt('b').limitToFirst(2).get()
  assert.deepEqual(Object.keys(byKey.val()), ['b', 'c'])

  // snapshots
  const snap = await people.once('value')
  assert.equal(snap.key, 'people')
  assert.equal(snap.exists(), true)
  assert.equal(snap.numChildren(), 4)
  assert.equal(snap.hasChild('a/name'), true)
  assert.equal(snap.hasChild('zzz'), false)
  assert.equal(snap.child('b').child('age').val(), 25)
  assert.equal(snap.child('b/age').key, 'age')
  assert.deepEqual(snap.toJSON(), snap.val())
  let visited = 0
  const stopped = snap.forEach(() => {
    visited += 1
    return visited === 2
  })
  assert.equal(stopped, true)
  assert.equal(visited, 2)
  const none = await base.child('nothing').get()
  assert.equal(none.exists(), false)
  assert.equal(none.val(), null)
  assert.equal(none.numChildren(), 0)

  // update (multi-path), remove, server values
  await base.update({ 'multi/a': 1, 'multi/b/c': 2 })
  assert.deepEqual(await h.rawGet(emu, ns, 'facade/multi'), { a: 1, b: { c: 2 } })
  await base.child('multi/a').remove()
  assert.deepEqual(await h.rawGet(emu, ns, 'facade/multi'), { b: { c: 2 } })
  const t0 = Date.now()
  await base.child('stamp').set({ at: ServerValue.TIMESTAMP, n: 10 })
  await base.child('stamp/n').set(ServerValue.increment(5))
  const stamp = await h.rawGet(emu, ns, 'facade/stamp')
  assert.equal(typeof stamp.at, 'number')
  assert.ok(Math.abs(stamp.at - t0) < 60000, `${stamp.at} vs ${t0}`)
  assert.equal(stamp.n, 15)
  // undefined throws at once, as in firebase-admin (see database.test.mjs)
  assert.throws(
    () => base.child('x').set(undefined),
    /set failed: value argument contains undefined in property 'smoke\.facade\.x'|set failed: value argument contains undefined in property 'facade\.x'/,
  )
})

test('EntityService CRUD; removeAll deletes the node', async () => {
  const { runner, ns } = await runnerFor(project({}))
  const db = runner.getHandler().db.database
  const svc = new EntityService(db, runner.getHandler().cfg.buildPath('entities'))
  const k1 = await svc.create({ name: 'one', kind: 'a' })
  const k2 = await svc.save({ name: 'two', kind: 'b' })
  await svc.set('fixed', { name: 'three', kind: 'a' })
  assert.notEqual(k1, k2)
  let all = await svc.getAll()
  assert.equal(all.length, 3)
  assert.ok(all.every((e) => typeof e.key === 'string' && !Object.keys(e).includes('key')))
  const one = await svc.get(k1)
  assert.equal(one.name, 'one')
  assert.equal(one.key, k1)
  one.name = 'uno'
  assert.equal(await svc.save(one), k1)
  const stored = await h.rawGet(emu, ns, `${SHIFT}/entities/${k1}`)
  assert.deepEqual(stored, { name: 'uno', kind: 'a' }, 'key is not written into the data')
  await svc.update('fixed', { extra: true })
  assert.deepEqual(await h.rawGet(emu, ns, `${SHIFT}/entities/fixed`), { name: 'three', kind: 'a', extra: true })
  const as = await svc.findAllBy('kind', 'a')
  assert.deepEqual(as.map((e) => e.key).sort(), [k1, 'fixed'].sort())
  const upd = await svc.updateAll((e) => {
    if (e.kind !== 'b') return false
    e.touched = 1
    return true
  })
  assert.deepEqual(upd.updated, [k2])
  assert.equal(upd.skipped.length, 2)
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/entities/${k2}/touched`), 1)
  const obj = await svc.getAllAsObject()
  assert.deepEqual(Object.keys(obj).sort(), [k1, k2, 'fixed'].sort())
  await svc.remove(k2)
  all = await svc.getAll()
  assert.equal(all.length, 2)
  await svc.removeByIds([k1])
  assert.deepEqual(
    (await svc.getAll()).map((e) => e.key),
    ['fixed'],
  )
  await svc.removeAll()
  assert.equal(await h.rawGet(emu, ns, `${SHIFT}/entities`), null)
  assert.equal(await h.rawGet(emu, ns, SHIFT), null, 'nothing left behind, not even ""')
  assert.deepEqual(await svc.getAll(), [])
})
