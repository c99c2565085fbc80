// Many databases in one run: the emulator's namespaces as the instances of a sharded database.
// Real CLI processes: pods started at once on every database, one database failing (the others
// migrated, it rolled back with its lock released), failFast, one JSON document over the set.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')

h.clearDatabaseEnv()
const shared = h.emulatorPerFile()

/** A migration that adds one entry under runs/<name> (a second run would add a second) and sets `node`; on `bad` it throws. */
const script = (name, node, bad) =>
  `module.exports = {
  async up(db, info, h) {
    await db.database.ref(h.cfg.buildPath('runs/${name}')).push(true)
    ${bad ? `if (h.cfg.databaseUrl.endsWith('ns=${bad}')) throw new Error('boom on ${bad} only')` : ''}
    await db.database.ref(h.cfg.buildPath('${node}')).set(true)
  },
  async down(db, info, h) { await db.database.ref(h.cfg.buildPath('${node}')).remove() },
}\n`

/** A project with three migrations (the second throws on namespace `bad`), over `n` fresh namespaces. */
function fleet(n, { bad, config = {} } = {}) {
  const nss = Array.from({ length: n }, () => h.uniqueNs('shard'))
  const badNs = bad === undefined ? undefined : nss[bad]
  const dir = h.project(
    {
      'V202501010001_a.js': script('a', 'a'),
      'V202501010002_b.js': script('b', 'b', badNs),
      'V202501010003_c.js': script('c', 'c'),
    },
    'msr-many-',
  )
  const cfg = { databaseUrls: nss.map((ns) => shared.emu.databaseUrl(ns)), locking: { enabled: true }, ...config }
  fs.writeFileSync(path.join(dir, 'msr.config.json'), JSON.stringify(cfg))
  return { dir, nss, badNs }
}

const run = (dir, args) => h.cli(args, { cwd: dir })

function json(out) {
  try {
    return JSON.parse(out.stdout)
  } catch (e) {
    throw new Error(`stdout is not JSON (${e.message}):\n${out.stdout}\nstderr:\n${out.stderr}`)
  }
}

/** Entries under runs/<m> per migration, the history's records, the lock's holder. */
async function state(ns) {
  const d = (await h.dump(shared.emu, ns)) ?? {}
  const runs = Object.fromEntries(Object.entries(d.runs ?? {}).map(([k, v]) => [k, Object.keys(v).length]))
  const lock = d.migrations?._lock
  return { runs, history: Object.keys(d.schema_version ?? {}).sort(), held: Boolean(lock && lock.executorId), data: d }
}

test('5 databases, 3 pending migrations, 4 pods at once on each: every migration once per database, one report over the 5', async () => {
  const { dir, nss } = fleet(5)
  const pods = [run(dir, ['migrate']), run(dir, ['migrate']), run(dir, ['migrate']), run(dir, ['migrate', '--format', 'json', '--concurrency', '5'])]
  const outs = await Promise.all(pods)
  for (const o of outs) assert.equal(o.code, 0, `${o.stdout}\n${o.stderr}`)
  for (const ns of nss) {
    const s = await state(ns)
    assert.deepEqual(s.runs, { a: 1, b: 1, c: 1 }, `${ns}: each migration ran once`)
    assert.deepEqual(s.history, ['v202501010001', 'v202501010002', 'v202501010003'], `${ns}: history complete`)
    assert.equal(s.held, false, `${ns}: lock given back`)
  }
  // Every pod's report lists the 5; between them the 15 migrations ran once.
  const text = outs[0].stdout
  for (const ns of nss) assert.match(text, new RegExp(`── ${ns} \\(`), text)
  assert.match(text, /5 of 5 database\(s\) succeeded/)
  const doc = json(outs[3])
  assert.deepEqual(
    doc.databases.map((d) => d.name),
    nss,
  )
  assert.equal(doc.summary.databases, 5)
  assert.equal(doc.summary.exitCode, 0)
  for (const d of doc.databases) {
    assert.equal(d.status, 'succeeded')
    assert.equal(d.databaseUrl, shared.emu.databaseUrl(d.name))
    assert.ok(d.result && d.requests > 0, JSON.stringify(d))
  }
  let executed = 0
  for (const o of outs.slice(0, 3)) executed += (o.stdout.match(/^ {2}- V2025/gm) ?? []).length
  executed += doc.databases.reduce((n, d) => n + d.executed, 0)
  assert.equal(executed, 15, 'the pods ran 15 migrations between them')
  // Nothing left: one request per database (the history read), as a single run.
  const again = json(await run(dir, ['migrate', '--format', 'json']))
  assert.deepEqual(
    again.databases.map((d) => [d.requests, d.executed]),
    nss.map(() => [1, 0]),
  )
  assert.equal(again.summary.requests, 5)
  // Log lines name their database.
  const logged = await run(dir, ['migrate', '--database', nss[2], '--log-level', 'debug', '--log-format', 'json'])
  assert.equal(logged.code, 0, logged.stderr)
  const lines = logged.stderr
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
  assert.ok(
    lines.some((l) => l.database === nss[2]),
    logged.stderr,
  )
  assert.ok(
    lines.every((l) => l.database === undefined || l.database === nss[2]),
    logged.stderr,
  )
})

test('one database failing: the other 4 migrated, it rolled back with its lock released, exit 3, the summary names it', async () => {
  const { dir, nss, badNs } = fleet(5, { bad: 2 })
  const out = await run(dir, ['migrate'])
  assert.equal(out.code, 3, `${out.stdout}\n${out.stderr}`)
  assert.match(out.stderr, new RegExp(`4 of 5 database\\(s\\) succeeded; failed: ${badNs} \\(exit 3\\)`))
  assert.match(out.stderr, /boom on/)
  for (const ns of nss.filter((n) => n !== badNs)) {
    const s = await state(ns)
    assert.deepEqual(s.history.length, 3, `${ns} migrated`)
    assert.equal(s.data.c, true)
  }
  const s = await state(badNs)
  assert.deepEqual(s.history, [], 'nothing recorded on the failed one')
  assert.equal(s.data.a, undefined, 'the backup restored: the first migration undone')
  assert.equal(s.held, false, 'its lock released')
  const lock = json(await run(dir, ['lock:status', '--database', badNs, '--format', 'json']))
  assert.deepEqual(
    lock.databases.map((d) => [d.name, d.result.locked]),
    [[badNs, false]],
  )
  // Picking: one database, an unknown one, the commands that need one named.
  const listed = json(await run(dir, ['list', '--format', 'json', '--database', badNs, '--database', nss[0]]))
  assert.deepEqual(
    listed.databases.map((d) => [d.name, d.pending]),
    [
      [nss[0], 0],
      [badNs, 3],
    ],
  )
  const unknown = await run(dir, ['list', '--database', 'nope'])
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /--database "nope" is not a database of this configuration; the databases of the set are: /)
  const release = await run(dir, ['lock:release', '--force'])
  assert.equal(release.code, 1)
  assert.match(release.stderr, /lock:release --force acts on one database: name it with --database <name>/)
})

test('failFast: after a failure no later database starts; --format json is one document', async () => {
  const { dir, nss, badNs } = fleet(4, { bad: 1, config: { failFast: true, concurrency: 1 } })
  const out = await run(dir, ['migrate', '--format', 'json'])
  assert.equal(out.code, 3, out.stderr)
  const doc = json(out)
  assert.deepEqual(
    doc.databases.map((d) => d.status),
    ['succeeded', 'failed', 'not_started', 'not_started'],
  )
  assert.equal(doc.databases[1].name, badNs)
  assert.match(doc.databases[1].error.message, /boom on/)
  assert.deepEqual(doc.summary.failed, [badNs])
  assert.deepEqual(doc.summary.notStarted, nss.slice(2))
  assert.equal(doc.summary.exitCode, 3)
  for (const ns of nss.slice(2)) assert.deepEqual(await state(ns), { runs: {}, history: [], held: false, data: {} }, `${ns} never touched`)
  assert.equal((await state(nss[0])).history.length, 3)
})

test('failFast: a database already running finishes its current migration, then stops with its lock released', async () => {
  const [bad, busy] = [h.uniqueNs('shard'), h.uniqueNs('shard')]
  const dir = h.project({}, 'msr-many-')
  const failed = path.join(dir, 'failed-marker')
  const on = (ns) => `h.cfg.databaseUrl.endsWith('ns=${ns}')`
  // the busy database's first migration goes on until the bad one has failed, and then some
  const first = `module.exports = { async up(db, info, h) {
    if (${on(busy)}) {
      for (let i = 0; i < 400 && !require('fs').existsSync(${JSON.stringify(failed)}); i++) await new Promise((r) => setTimeout(r, 50))
      await new Promise((r) => setTimeout(r, 3000))
    }
    await db.database.ref(h.cfg.buildPath('a')).set(true)
  } }\n`
  const second = `module.exports = { async up(db, info, h) {
    if (${on(bad)}) { require('fs').writeFileSync(${JSON.stringify(failed)}, ''); throw new Error('boom on the bad one') }
    await db.database.ref(h.cfg.buildPath('b')).set(true)
  } }\n`
  fs.writeFileSync(path.join(dir, 'migrations', 'V202501010001_a.js'), first)
  fs.writeFileSync(path.join(dir, 'migrations', 'V202501010002_b.js'), second)
  fs.writeFileSync(path.join(dir, 'migrations', 'V202501010003_c.js'), script('c', 'c'))
  const cfg = { databaseUrls: [bad, busy].map((ns) => shared.emu.databaseUrl(ns)), locking: { enabled: true }, failFast: true, concurrency: 2 }
  fs.writeFileSync(path.join(dir, 'msr.config.json'), JSON.stringify(cfg))
  const out = await run(dir, ['migrate', '--format', 'json'])
  assert.equal(out.code, 3, out.stderr)
  const doc = json(out)
  assert.deepEqual(
    doc.databases.map((d) => [d.name, d.status]),
    [
      [bad, 'failed'],
      [busy, 'stopped'],
    ],
  )
  const s = await state(busy)
  assert.deepEqual(s.history, ['v202501010001'], 'the running migration finished and was recorded, no later one started')
  assert.equal(s.data.a, true)
  assert.equal(s.data.b, undefined)
  assert.equal(s.held, false, 'its lock given back')
  assert.equal((await state(bad)).held, false)
})

test('JS API: getInstance with databases runs each database and resolves per database; getHandler(name); hooks get the database', async () => {
  const { FirebaseRunner } = require('..')
  const { dir, nss, badNs } = fleet(3, { bad: 1 })
  const seen = []
  const hooks = { onComplete: (result, ctx) => seen.push(['complete', ctx.database]), onMigrationError: (script, err, ctx) => seen.push(['error', ctx.database]) }
  const runner = await FirebaseRunner.getInstance({
    config: {
      databaseUrls: nss.map((ns) => shared.emu.databaseUrl(ns)),
      folder: path.join(dir, 'migrations'),
      backup: { folder: path.join(dir, 'backups') },
      locking: { enabled: true },
    },
    hooks,
    logger: () => {},
  })
  assert.deepEqual(runner.databases, nss)
  const run = await runner.migrate()
  assert.deepEqual(
    run.databases.map((d) => [d.name, d.status, d.executed]),
    [
      [nss[0], 'succeeded', 3],
      [badNs, 'failed', 1],
      [nss[2], 'succeeded', 3],
    ],
  )
  assert.equal(run.databases[1].error.code, 'SCRIPT_FAILED')
  assert.equal(run.databases[1].error.exitCode, 3)
  assert.match(run.databases[1].error.message, /boom on/)
  assert.equal(run.databases[0].result.executed.length, 3)
  assert.ok(run.databases.every((d) => d.requests > 0 && d.databaseUrl === shared.emu.databaseUrl(d.name)))
  assert.deepEqual(run.summary.failed, [badNs])
  assert.equal(run.summary.exitCode, 3)
  assert.deepEqual(
    seen.sort(),
    [
      ['complete', nss[0]],
      ['complete', nss[2]],
      ['error', badNs],
    ].sort(),
  )
  assert.ok(fs.readdirSync(path.join(dir, 'backups', badNs)).length > 0, 'each database backs up into its own folder')
  // One database's handler: its own lock service and settings.
  const handler = runner.getHandler(badNs)
  assert.equal(handler.cfg.databaseUrl, shared.emu.databaseUrl(badNs))
  assert.equal(await handler.lockingService.getLockStatus(), null)
  assert.throws(() => runner.getHandler(), /this runner has 3 databases/)
  const listed = await runner.list({ databases: [nss[0], badNs] })
  assert.deepEqual(
    listed.databases.map((d) => [d.name, d.result.pending]),
    [
      [nss[0], 0],
      [badNs, 3],
    ],
  )
  const down = await runner.down(null, { steps: 1, databases: nss[0] })
  assert.deepEqual(
    down.databases.map((d) => [d.name, d.status, d.executed]),
    [[nss[0], 'succeeded', 1]],
  )
  assert.deepEqual((await state(nss[0])).history.length, 2)
  const rehearsed = await runner.rehearse({ databases: [nss[0]] })
  assert.deepEqual(
    rehearsed.databases.map((d) => [d.name, d.status, d.result.success, d.result.migrations.length]),
    [[nss[0], 'succeeded', true, 1]],
  )
  assert.deepEqual((await state(nss[0])).history.length, 2, 'a rehearsal only reads')
})

test('backup create and firebase:info over the set: a backup per database in its own folder, one JSON document', async () => {
  const { dir, nss } = fleet(2)
  for (const ns of nss) await h.rawPut(shared.emu, ns, 'data', { owner: ns })
  const backup = await run(dir, ['backup', 'create', '--format', 'json'])
  assert.equal(backup.code, 0, backup.stderr)
  const doc = json(backup)
  assert.deepEqual(
    doc.databases.map((d) => d.name),
    nss,
  )
  for (const ns of nss) {
    const files = fs.readdirSync(path.join(dir, 'backups', ns))
    assert.equal(files.length, 1, `${ns}: one backup in its folder`)
    assert.match(fs.readFileSync(path.join(dir, 'backups', ns, files[0]), 'utf8'), new RegExp(`"owner":\\s*"${ns}"`))
  }
  const rehearsed = json(await run(dir, ['rehearse', '--format', 'json']))
  assert.deepEqual(
    rehearsed.databases.map((d) => [d.name, d.status, d.result.migrations.length]),
    nss.map((n) => [n, 'succeeded', 3]),
  )
  const info = json(await run(dir, ['firebase:info', '--format', 'json']))
  assert.deepEqual(
    info.databases.map((d) => [d.name, d.status]),
    nss.map((n) => [n, 'succeeded']),
  )
  const restore = await run(dir, ['backup', 'restore', 'x.json'])
  assert.equal(restore.code, 1)
  assert.match(restore.stderr, /backup restore acts on one database: name it with --database <name>/)
})
