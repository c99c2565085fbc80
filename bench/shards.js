'use strict'
// Many databases in one run: 20 databases (the emulator's namespaces) at 50 ms of latency, 10
// no-op migrations each, `msr-firebase migrate` over the set with concurrency 1, 4 and 20, side by
// side in one run: the run's time against the ideal (the per-database request floor x latency x
// ceil(20 / concurrency): databases run `concurrency` at a time, each its own floor of requests
// one after another), requests per database against the floor, and the CLI process's peak
// memory against a run on one database. `shards()` returns the table's rows.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { startEmulator } = require('..')
const { noOps } = require('./floors.js')
const { node } = require('./big.js')

const BIN = path.join(__dirname, '..', 'bin', 'msr-firebase.js')
const DATABASES = Number(process.env.BENCH_SHARDS || 20)
const MIGRATIONS = 10
const LATENCY = 50
/** Requests of a locked `migrate` of N pending migrations: the history read, the lock taken, 2 per migration (a proof of ownership, the record), the lock given back (bench/floors.js). */
const FLOOR = 2 * MIGRATIONS + 2

async function lever(emu, method, name, body) {
  const r = await fetch(`${emu.url}/.emulator/${name}`, { method, body: body === undefined ? undefined : JSON.stringify(body) })
  return r.json()
}

/** `msr-firebase migrate --format json` in `dir`, with its peak RSS (KB) and the wall time of the process. */
async function migrate(dir, args) {
  const r = await node([BIN, 'migrate', '--format', 'json', ...args], { cwd: dir, env: { MSR_LOG_LEVEL: 'error' } })
  return { doc: JSON.parse(r.stdout), wallMs: r.ms, rssKb: r.peakKb }
}

/** A project over `n` fresh namespaces (`databaseUrls`; one: `databaseUrl`). */
function project(emu, work, folder, n, tag) {
  const dir = fs.mkdtempSync(path.join(work, `${tag}-`))
  const urls = Array.from({ length: n }, (_, i) => emu.databaseUrl(`bench-${tag}-${process.pid}-${i}`))
  const config = {
    folder,
    backupMode: 'manual',
    rollbackStrategy: 'none',
    locking: { enabled: true, timeout: 600000 },
    ...(n === 1 ? { databaseUrl: urls[0] } : { databaseUrls: urls }),
  }
  fs.writeFileSync(path.join(dir, 'msr.config.json'), JSON.stringify(config))
  return dir
}

async function shards() {
  const emu = await startEmulator()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-bench-shards-'))
  const folder = noOps(path.join(work, 'migrations'), MIGRATIONS)
  await lever(emu, 'PUT', 'latency', { ms: LATENCY })
  const rows = []
  try {
    // One database, the reference for memory (and its own floor).
    await lever(emu, 'DELETE', 'requests')
    const one = await migrate(project(emu, work, folder, 1, 'one'), [])
    rows.push({
      run: `1 database`,
      'requests / database': (await lever(emu, 'GET', 'requests')).total,
      floor: FLOOR,
      'ms (run)': '-',
      'ms (process)': Math.round(one.wallMs),
      'ideal ms': FLOOR * LATENCY,
      'vs ideal': Number((one.wallMs / (FLOOR * LATENCY)).toFixed(2)) + ' (process)',
      'peak RSS MB': Number((one.rssKb / 1024).toFixed(1)),
      'RSS vs 1 db': 1,
    })
    for (const concurrency of [1, 4, 20]) {
      await lever(emu, 'DELETE', 'requests')
      const r = await migrate(project(emu, work, folder, DATABASES, `c${concurrency}`), ['--concurrency', String(concurrency)])
      const served = (await lever(emu, 'GET', 'requests')).total
      const { summary, databases } = r.doc
      const failed = databases.filter((d) => d.status !== 'succeeded')
      if (failed.length) throw new Error(`not every database succeeded: ${JSON.stringify(failed)}`)
      const executed = databases.reduce((a, d) => a + (d.executed ?? 0), 0)
      if (executed !== DATABASES * MIGRATIONS) throw new Error(`executed ${executed}, expected ${DATABASES * MIGRATIONS}`)
      const ideal = FLOOR * LATENCY * Math.ceil(DATABASES / concurrency)
      rows.push({
        run: `${DATABASES} databases, concurrency ${concurrency}`,
        'requests / database': Number((served / DATABASES).toFixed(1)),
        floor: FLOOR,
        'ms (run)': summary.durationMs,
        'ms (process)': Math.round(r.wallMs),
        'ideal ms': ideal,
        'vs ideal': Number((summary.durationMs / ideal).toFixed(2)),
        'peak RSS MB': Number((r.rssKb / 1024).toFixed(1)),
        'RSS vs 1 db': Number((r.rssKb / one.rssKb).toFixed(2)),
      })
    }
  } finally {
    await lever(emu, 'PUT', 'latency', { ms: 0 })
    await emu.stop()
    fs.rmSync(work, { recursive: true, force: true })
  }
  return rows
}

module.exports = { shards }

if (require.main === module) {
  shards()
    .then((rows) => console.table(rows))
    .catch((e) => {
      console.error(e)
      process.exit(1)
    })
}
