// Production's write-size limits and Cloud Functions triggers as a run meets them: every write of
// a run with writes.disableTriggers sends disableTriggers=true (bulkWriter({ disableTriggers })
// per writer), restores send it by default (--restore-triggers lets them fire), a script's
// remove() of a node over the write-size limit deletes it in chunks (write.chunked in the log),
// and a set() over it fails clearly with the data unchanged. The emulator's journal is the
// request log the assertions read.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import fs from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')
const { FirebaseRunner } = await import('../index.mjs')

h.clearDatabaseEnv()
const shared = h.emulatorPerFile()

/** The writes (non-GET requests) the journal saw in `ns`, in order: `{ method, path, disableTriggers, status }`. */
async function writesIn(ns) {
  const j = await h.lever(shared.emu, 'GET', 'journal')
  return j.entries.filter((e) => e.ns === ns && e.method !== 'GET')
}

function users(n) {
  const out = {}
  for (let i = 0; i < n; i++) out[`u${String(i).padStart(4, '0')}`] = { name: `user ${String(i).padStart(4, '0')}`, n: 1000 + i }
  return out
}

// Writes of every kind through the scripts' db, and a bulkWriter with the run's setting.
const WRITES = `module.exports = class {
  async up(db) {
    const d = db.database
    await d.ref('a').set({ x: 1 })
    await d.ref('a').update({ y: 2, 'z/w': 3 })
    await d.ref('list').push({ n: 1 })
    await d.ref('a/x').remove()
    await d.ref('count').transaction((n) => (n || 0) + 1)
    const w = d.bulkWriter()
    for (let i = 0; i < 3; i++) await w.set('bulk/' + i, i)
    await w.close()
  }
}
`
// One bulkWriter that says the opposite of the run's setting.
const OVERRIDE = (disable) => `module.exports = class {
  async up(db) {
    const w = db.database.bulkWriter({ disableTriggers: ${disable} })
    for (let i = 0; i < 3; i++) await w.set('other/' + i, i)
    await w.close()
  }
}
`

async function run(disableTriggers) {
  const dir = h.project({ 'V202501010001_writes.js': WRITES, 'V202501010002_override.js': OVERRIDE(!disableTriggers) }, 'msr-writes-')
  const ns = h.uniqueNs('trig')
  const runner = await FirebaseRunner.getInstance({
    config: {
      databaseUrl: shared.emu.databaseUrl(ns),
      folder: path.join(dir, 'migrations'),
      backupMode: 'manual',
      rollbackStrategy: 'none',
      locking: { enabled: true },
      writes: { disableTriggers },
    },
    logger: () => {},
  })
  await h.lever(shared.emu, 'PUT', 'journal')
  const result = await runner.migrate()
  assert.equal(result.success, true, JSON.stringify(result))
  const writes = await writesIn(ns)
  await h.lever(shared.emu, 'DELETE', 'journal')
  return { writes, data: await h.rawGet(shared.emu, ns) }
}

test('writes.disableTriggers: every write of the run sends disableTriggers=true (scripts, bulkWriter, lock, history) but a bulkWriter({ disableTriggers: false }); off, none but a bulkWriter({ disableTriggers: true })', async () => {
  for (const disable of [true, false]) {
    const { writes, data } = await run(disable)
    assert.deepEqual(data.a, { y: 2, z: { w: 3 } })
    assert.deepEqual(data.other, [0, 1, 2])
    // The lock (acquire, renewals, release), both history records, the scripts' writes of every
    // kind and both writers' PATCHes.
    const seen = writes.map((w) => `${w.method} ${w.path}`)
    for (const k of [
      /^PUT \/a$/,
      /^PATCH \/a$/,
      /^PUT \/list\//,
      /^DELETE \/a\/x$/,
      /^PUT \/count$/,
      /^PATCH \/$/,
      /^PUT \/migrations\/_lock$/,
      /^PUT \/schema_version\/v202501010002$/,
    ]) {
      assert.ok(
        seen.some((w) => k.test(w)),
        `${k} in ${seen.join(', ')}`,
      )
    }
    const odd = writes.filter((w) => w.disableTriggers !== disable)
    assert.equal(odd.length, 1, JSON.stringify(writes, null, 1))
    assert.equal(odd[0].method, 'PATCH') // the override writer's one batch
    assert.equal(odd[0].path, '/')
  }
})

test('bulkWriter({ disableTriggers }) must be true or false', async () => {
  const ns = h.uniqueNs('trig')
  const runner = await FirebaseRunner.getInstance({ config: { databaseUrl: shared.emu.databaseUrl(ns), folder: h.tmpDir() }, logger: () => {} })
  const db = runner.getHandler().db.database
  assert.throws(
    () => db.bulkWriter({ disableTriggers: 'yes' }),
    (e) => e.code === 'CONFIG_INVALID' && /disableTriggers must be true or false/.test(e.message),
  )
})

test('restores fire no triggers by default: a rollback restore and backup restore send disableTriggers=true on every write; --restore-triggers lets them fire', async () => {
  const FAIL = `module.exports = class { async up(db) { await db.database.ref('scratch/x').set(1); throw new Error('boom') } }\n`
  const dir = h.project({ 'V202501010001_fail.js': FAIL }, 'msr-writes-')
  const ns = h.uniqueNs('restore')
  await h.rawPut(shared.emu, ns, '', { users: users(20), config: { x: 1 } })
  const before = await h.rawGet(shared.emu, ns)
  const env = { FIREBASE_DATABASE_URL: shared.emu.databaseUrl(ns) }
  await h.lever(shared.emu, 'PUT', 'journal')
  const failed = await h.cli(['migrate', '--backup-mode', 'full'], { cwd: dir, env })
  assert.equal(failed.code, 3, failed.stderr)
  assert.deepEqual(await h.rawGet(shared.emu, ns), before, 'the rollback restored the backup')
  let writes = await writesIn(ns)
  // The script's write fires triggers as any write of a run without the setting; the restore's
  // (PATCHes at the restored path, clearing scratch among them) do not.
  assert.deepEqual(
    writes.filter((w) => w.path.startsWith('/scratch')).map((w) => [w.method, w.disableTriggers]),
    [['PUT', false]],
  )
  const restore = writes.filter((w) => w.path === '/')
  assert.ok(restore.length >= 1, JSON.stringify(writes))
  assert.ok(
    restore.every((w) => w.method === 'PATCH' && w.disableTriggers),
    JSON.stringify(restore),
  )

  const file = path.join(dir, 'backups', fs.readdirSync(path.join(dir, 'backups'))[0])
  for (const [flags, disabled] of [
    [[], true],
    [['--restore-triggers'], false],
  ]) {
    await h.rawPut(shared.emu, ns, 'config/x', 2)
    await h.rawPut(shared.emu, ns, 'extra', { a: 1 })
    await h.lever(shared.emu, 'PUT', 'journal')
    const r = await h.cli(['backup', 'restore', file, ...flags], { cwd: dir, env })
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(await h.rawGet(shared.emu, ns), before)
    writes = await writesIn(ns)
    assert.ok(writes.length >= 1)
    assert.ok(
      writes.every((w) => w.disableTriggers === disabled),
      `${flags.join(' ') || 'default'}: ${JSON.stringify(writes)}`,
    )
  }
  await h.lever(shared.emu, 'DELETE', 'journal')
})

test("a script's remove() of a node over the write-size limit deletes it in chunks (write.chunked in the log); set() over it fails with WRITE_TOO_BIG naming its size and the bulk helpers, the data unchanged", async () => {
  const REMOVE = `module.exports = class { async up(db) { await db.database.ref('big').remove() } }\n`
  const SET = `module.exports = class { async up(db) { await db.database.ref('big2').set({ replaced: true }) } }\n`
  const dir = h.project({ 'V202501010001_remove.js': REMOVE }, 'msr-writes-')
  const ns = h.uniqueNs('big')
  await h.rawPut(shared.emu, ns, '', { big: users(2000), big2: users(2000), keep: 1 })
  // Writes may change 20 kB (the database's default), 4 kB under writeSizeLimit=tiny.
  await h.lever(shared.emu, 'PUT', 'write-size-limit', { default: 'small', ns, budgets: { tiny: 4000, small: 20000 } })
  try {
    const env = { FIREBASE_DATABASE_URL: shared.emu.databaseUrl(ns) }
    await h.lever(shared.emu, 'PUT', 'journal')
    const r = await h.cli(['migrate', '--log-format', 'json'], { cwd: dir, env })
    assert.equal(r.code, 0, r.stderr)
    const data = await h.rawGet(shared.emu, ns)
    assert.equal(data.big, undefined, 'the node is gone')
    assert.deepEqual(data.big2, users(2000))
    const bigWrites = (await writesIn(ns)).filter((w) => w.path === '/big')
    // The DELETE refused, then PATCHes of null under tiny: 500, 250 and 125 children refused, 62
    // accepted, the other 1,938 at 62 a chunk. Plus the one shallow listing.
    assert.deepEqual([bigWrites[0].method, bigWrites[0].status, bigWrites.length, bigWrites.filter((w) => w.status === 400).length], ['DELETE', 400, 37, 4])
    assert.ok(bigWrites.slice(1).every((w) => w.method === 'PATCH' && w.writeSizeLimit === 'tiny'))
    const lines = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
    const chunked = lines.filter((l) => l.event === 'write.chunked')
    assert.equal(chunked.length, 1, r.stderr)
    assert.equal(chunked[0].path, '/big')
    assert.equal(chunked[0].requests, 38) // 37 writes and the listing
    assert.match(chunked[0].message, /\/big was too big to delete in one request/)

    fs.writeFileSync(path.join(dir, 'migrations', 'V202501010002_set.js'), SET)
    // No rollback: the data it would restore is itself more than one write may change here.
    const s = await h.cli(['migrate'], { cwd: dir, env: { ...env, MSR_ROLLBACK_STRATEGY: 'none' } })
    assert.equal(s.code, 3, s.stderr)
    for (const part of ['WRITE_TOO_BIG', 'set() of /big2', '/big2 holds 2,000 children', 'db.bulkWriter()', 'ref.children()', 'remove()']) {
      assert.ok(s.stderr.includes(part), `${part} in ${s.stderr}`)
    }
    assert.deepEqual((await h.rawGet(shared.emu, ns)).big2, users(2000), 'the data is unchanged')
  } finally {
    await h.lever(shared.emu, 'DELETE', 'write-size-limit')
    await h.lever(shared.emu, 'DELETE', 'journal')
  }
})
