#!/usr/bin/env node
'use strict'
// npm run bench: HTTP requests per operation (a stable figure) and timings (machine-dependent)
// for the lock and a full migrate, against the embedded emulator; then the big-data figures
// (bench/big.js), as ratios measured side by side.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { startEmulator, FirebaseRunner, FirebaseConfig } = require('..')

async function counts(emu) {
  const r = await fetch(`${emu.url}/.emulator/requests`)
  return (await r.json()).total
}
async function resetCounts(emu) {
  await fetch(`${emu.url}/.emulator/requests`, { method: 'DELETE' })
}

async function measure(emu, name, fn, rounds = 20) {
  let requests = 0
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < rounds; i++) {
    await resetCounts(emu)
    await fn(i)
    requests += await counts(emu)
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / rounds
  return { operation: name, requestsPerOp: requests / rounds, msPerOp: Number(ms.toFixed(2)) }
}

async function main() {
  const emu = await startEmulator()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-bench-'))
  fs.cpSync(path.join(__dirname, '..', 'examples', 'migrations'), path.join(work, 'migrations'), { recursive: true })
  process.chdir(work)
  const rows = []
  const runnerFor = async (ns, extra = {}) => {
    const config = new FirebaseConfig({ databaseUrl: emu.databaseUrl(ns), folder: './migrations', backupMode: 'manual', locking: { enabled: true, timeout: 60000 }, ...extra })
    return FirebaseRunner.getInstance({ config, logger: () => {} })
  }
  const runner = await runnerFor('bench-lock')
  const lock = runner.getHandler().lockingService
  rows.push(
    await measure(emu, 'acquireLock (free)', async () => {
      await lock.acquireLock('bench')
      await lock.forceReleaseLock()
    }),
  )
  rows[rows.length - 1].note = 'includes forceReleaseLock'
  await lock.acquireLock('holder')
  rows.push(await measure(emu, 'acquireLock (held by another)', () => lock.acquireLock('other')))
  rows.push(await measure(emu, 'verifyLockOwnership', () => lock.verifyLockOwnership('holder')))
  rows.push(await measure(emu, 'getLockStatus', () => lock.getLockStatus()))
  await lock.forceReleaseLock()
  rows.push(await measure(emu, 'runExclusive (no-op work)', () => lock.runExclusive(async (l) => l.check())))
  let n = 0
  rows.push(
    await measure(
      emu,
      'migrate 4 scripts (locked, no backup)',
      async () => {
        const r = await runnerFor(`bench-migrate-${n++}`)
        await r.migrate()
      },
      10,
    ),
  )
  rows.push(await measure(emu, 'migrate with nothing pending', () => runner.migrate(), 10))
  console.table(rows)
  await emu.stop()
  fs.rmSync(work, { recursive: true, force: true })
  if (process.env.BENCH_BIG !== '0') {
    console.log('\nBig data (BENCH_USERS users, default 1000000; BENCH_BIG=0 skips this part):')
    console.table(await require('./big.js').bigData())
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
