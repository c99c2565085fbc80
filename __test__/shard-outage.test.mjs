// Many databases, one of them down: an outage on one database (the emulator's outage lever on its
// namespace only) is ridden out there, within its lease, while the other databases of the run
// finish their own work during it. Real CLI process; the outage is ended by the test once the
// others are done, so nothing here depends on timing.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')

h.clearDatabaseEnv()
const shared = h.emulatorPerFile()

/** Sets `node`; on the namespace `down`, then starts an outage there (until the test ends it). */
const script = (node, down) =>
  `module.exports = {
  async up(db, info, h) {
    await db.database.ref(h.cfg.buildPath('${node}')).set(true)
    ${
      down
        ? `const u = new URL(h.cfg.databaseUrl)
    if (u.searchParams.get('ns') === '${down}') {
      await fetch(u.origin + '/.emulator/outage', { method: 'PUT', body: JSON.stringify({ ms: 600000, mode: '500', ns: '${down}' }) })
    }`
        : ''
    }
  },
}\n`

const history = async (ns) => Object.keys((await h.dump(shared.emu, ns))?.schema_version ?? {}).sort()

test('an outage on one database is ridden out there; the others finish their work meanwhile', async () => {
  const nss = [h.uniqueNs('shard'), h.uniqueNs('down'), h.uniqueNs('shard')]
  const down = nss[1]
  const dir = h.project({ 'V202501010001_a.js': script('a', down), 'V202501010002_b.js': script('b'), 'V202501010003_c.js': script('c') }, 'msr-outage-')
  fs.writeFileSync(
    path.join(dir, 'msr.config.json'),
    JSON.stringify({ databaseUrls: nss.map((ns) => shared.emu.databaseUrl(ns)), locking: { enabled: true, timeout: 60000 }, concurrency: 3 }),
  )
  const all = ['v202501010001', 'v202501010002', 'v202501010003']
  const run = h.startCli(['migrate', '--format', 'json'], { cwd: dir })
  // The others complete while the one database is down (bounded wait, loopback).
  let others = false
  for (let i = 0; i < 600 && !others; i++) {
    await new Promise((r) => setTimeout(r, 50))
    others = (await history(nss[0])).length === 3 && (await history(nss[2])).length === 3
  }
  assert.ok(others, `the other databases finished during the outage\n${run.err()}`)
  const during = await h.lever(shared.emu, 'GET', 'outage')
  assert.ok(during.namespaces[down]?.remainingMs > 0, `the outage was still on when they finished: ${JSON.stringify(during)}`)
  assert.ok((await history(down)).length < 3, 'the database that is down has not finished')
  await h.lever(shared.emu, 'DELETE', 'outage')
  const out = await run.exited
  assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}`)
  const doc = JSON.parse(out.stdout)
  assert.deepEqual(
    doc.databases.map((d) => [d.name, d.status, d.executed]),
    nss.map((ns) => [ns, 'succeeded', 3]),
  )
  for (const ns of nss) assert.deepEqual(await history(ns), all, `${ns}: history complete, each migration once`)
  // The one that was down needed more requests than the others (its retries), nothing else did.
  const req = Object.fromEntries(doc.databases.map((d) => [d.name, d.requests]))
  assert.equal(req[nss[0]], req[nss[2]], JSON.stringify(req))
  assert.ok(req[down] > req[nss[0]], JSON.stringify(req))
  const lock = (await h.dump(shared.emu, down)).migrations?._lock
  assert.ok(!lock || !lock.executorId, 'its lock given back')
})
