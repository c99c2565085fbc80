'use strict'
// Requests per operation against its floor (a stable figure, asserted in tests), and wall time
// at 0, 20 and 50 ms of emulator latency against the ideal (floor x latency), side by side in one
// run. `floors(emu)` returns the table's rows.

const fs = require('node:fs')
const path = require('node:path')
const { FirebaseRunner, FirebaseConfig } = require('..')

const LATENCIES = [0, 20, 50]

async function lever(emu, method, name, body) {
  const r = await fetch(`${emu.url}/.emulator/${name}`, { method, body: body === undefined ? undefined : JSON.stringify(body) })
  return r.json()
}

/** A folder of `n` migrations whose up() does nothing. */
function noOps(dir, n) {
  fs.mkdirSync(dir, { recursive: true })
  for (let i = 1; i <= n; i++) fs.writeFileSync(path.join(dir, `V${202501010000 + i}_noop.js`), 'module.exports = { up() {} }\n')
  return dir
}

let nsCounter = 0
async function runnerFor(emu, folder, extra = {}) {
  const config = new FirebaseConfig({
    databaseUrl: emu.databaseUrl(`bench-floor-${process.pid}-${nsCounter++}`),
    folder,
    backupMode: 'manual',
    rollbackStrategy: 'none',
    locking: { enabled: true, timeout: 600000 },
    ...extra,
  })
  return FirebaseRunner.getInstance({ config, logger: () => {} })
}

/**
 * Each operation: `prepare()` (not counted, not timed) returns `run` (counted and timed).
 * Rounds per latency: fewer at higher latency.
 */
function operations(emu, work) {
  const one = noOps(path.join(work, 'one'), 1)
  const hundred = noOps(path.join(work, 'hundred'), 100)
  return [
    {
      operation: 'migrate, nothing pending (locking on)',
      floor: 1,
      rounds: [10, 5, 5],
      prepare: async () => {
        const r = await runnerFor(emu, one)
        await r.migrate()
        return () => r.migrate()
      },
    },
    {
      operation: 'acquireLock (free lock)',
      floor: 1,
      rounds: [10, 5, 5],
      prepare: async () => {
        const r = await runnerFor(emu, one)
        const lock = r.getHandler().lockingService
        return () => lock.acquireLock('bench')
      },
    },
    {
      operation: 'releaseLock',
      floor: 1,
      rounds: [10, 5, 5],
      prepare: async () => {
        const r = await runnerFor(emu, one)
        const lock = r.getHandler().lockingService
        await lock.acquireLock('bench')
        return () => lock.releaseLock('bench')
      },
    },
    {
      operation: 'runExclusive (no-op work)',
      floor: 2,
      rounds: [10, 5, 5],
      prepare: async () => {
        const r = await runnerFor(emu, one)
        const lock = r.getHandler().lockingService
        return () => lock.runExclusive(async () => {})
      },
    },
    {
      operation: 'migrate 1 no-op migration',
      floor: 1 + 2 + 1,
      rounds: [5, 3, 3],
      prepare: async () => {
        const r = await runnerFor(emu, one)
        return () => r.migrate()
      },
    },
    {
      operation: 'migrate 100 no-op migrations',
      floor: 202,
      rounds: [3, 1, 1],
      prepare: async () => {
        const r = await runnerFor(emu, hundred)
        return () => r.migrate()
      },
    },
  ]
}

async function floors(emu, work) {
  const ops = operations(emu, work)
  const byOp = new Map(ops.map((o) => [o.operation, { operation: o.operation, floor: o.floor }]))
  for (const [li, latency] of LATENCIES.entries()) {
    for (const op of ops) {
      let requests = 0
      let ms = 0
      const rounds = op.rounds[li]
      for (let i = 0; i < rounds; i++) {
        await lever(emu, 'PUT', 'latency', { ms: 0 })
        const run = await op.prepare()
        await lever(emu, 'PUT', 'latency', { ms: latency })
        await lever(emu, 'DELETE', 'requests')
        const t0 = process.hrtime.bigint()
        await run()
        ms += Number(process.hrtime.bigint() - t0) / 1e6
        requests += (await lever(emu, 'GET', 'requests')).total
      }
      const row = byOp.get(op.operation)
      row.requests = requests / rounds
      const t = ms / rounds
      row[`ms @${latency}`] = Number(t.toFixed(1))
      if (latency > 0) row[`vs ideal @${latency}`] = Number((t / (op.floor * latency)).toFixed(2))
    }
  }
  await lever(emu, 'PUT', 'latency', { ms: 0 })
  const rows = [...byOp.values()]
  // Per migration under the lock: the difference between 100 and 1 migrations, per migration.
  const r1 = byOp.get('migrate 1 no-op migration')
  const r100 = byOp.get('migrate 100 no-op migrations')
  const per = { operation: 'per migration under the lock (100 vs 1, per migration)', floor: 2, requests: (r100.requests - r1.requests) / 99 }
  for (const latency of LATENCIES) {
    const t = (r100[`ms @${latency}`] - r1[`ms @${latency}`]) / 99
    per[`ms @${latency}`] = Number(t.toFixed(1))
    if (latency > 0) per[`vs ideal @${latency}`] = Number((t / (2 * latency)).toFixed(2))
  }
  rows.splice(rows.indexOf(r100), 0, per)
  return rows
}

module.exports = { floors, noOps }
