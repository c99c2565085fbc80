'use strict'
// The rehearsal figures of `npm run bench`: `msr-firebase rehearse` of two migrations that touch
// every user, over a subtree of N users (BENCH_REHEARSE_USERS, default 1M: ~240 MB of JSON) read
// from an emulator process standing in for production, side by side with the same migrations
// run directly (`msr-firebase migrate`) against a copy of the same data in the same emulator:
// wall time and peak RSS of each CLI process, the rehearsal's peak per byte of data and against
// what a direct run needs (its client plus one copy's emulator store, which grows as the scripts'
// writes unpack it), and what production received (reads only). Both namespaces have the same
// Security Rules (an index and a `.validate` on every user's new fields), so the rehearsal runs
// under production's rules — read from production, loaded into its copy, each changed user
// checked against `.validate` — and the direct run meets the same rules.
//
// The two sides take turns, BENCH_REHEARSE_RUNS times each (default 3; each direct run on a copy
// of its own): a single pair of runs on a small shared machine varies by 10-20% from one run to
// the next (the scripts' own speed), so the ratio is taken of the best run of each side, and of
// the medians, with every run's time shown.
//
// Standalone: `node bench/rehearse.js`.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { writeImport, node, startEmulatorProcess, status, mb, ratio } = require('./big.js')

const BIN = path.join(__dirname, '..', 'bin', 'msr-firebase.js')

const addPlan = `module.exports = class AddPlan {
  async up(db) {
    const writer = db.database.bulkWriter()
    for await (const user of db.database.ref('users').children({ pageSize: 1000 })) {
      if (!user.hasChild('plan')) await writer.update(user.ref, { plan: 'free' })
    }
    const { writes } = await writer.close()
    return 'plan on ' + writes
  }
}
`
const renameCity = `module.exports = class RenameCity {
  async up(db) {
    const writer = db.database.bulkWriter()
    for await (const user of db.database.ref('users').children({ pageSize: 1000 })) {
      const city = user.child('city').val()
      if (city !== null) await writer.update(user.ref, { town: city, city: null })
    }
    const { writes } = await writer.close()
    return 'renamed on ' + writes
  }
}
`

const RULES = JSON.stringify({
  rules: {
    '.read': 'auth != null',
    '.write': 'auth != null',
    users: { '.indexOn': ['city'], $uid: { plan: { '.validate': 'newData.isString()' }, town: { '.validate': 'newData.isString()' } } },
  },
})

async function putRules(emu, ns) {
  const res = await fetch(`${emu.url}/.settings/rules.json?ns=${ns}`, { method: 'PUT', headers: { authorization: 'Bearer owner' }, body: RULES })
  if (res.status !== 200) throw new Error(`rules: ${res.status} ${await res.text()}`)
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 1000))

function project(dir, name) {
  const cwd = path.join(dir, name)
  fs.mkdirSync(path.join(cwd, 'migrations'), { recursive: true })
  fs.writeFileSync(path.join(cwd, 'migrations', 'V202501010001_add_plan.js'), addPlan)
  fs.writeFileSync(path.join(cwd, 'migrations', 'V202501010002_rename_city.js'), renameCity)
  fs.writeFileSync(path.join(cwd, 'msr.config.js'), "module.exports = { folder: './migrations', locking: { enabled: true } }\n")
  return cwd
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`
const best = (runs) => Math.min(...runs.map((r) => r.ms))
const median = (runs) => {
  const ms = runs.map((r) => r.ms).sort((a, b) => a - b)
  return ms.length % 2 ? ms[(ms.length - 1) / 2] : (ms[ms.length / 2 - 1] + ms[ms.length / 2]) / 2
}
const times = (runs) => runs.map((r) => seconds(r.ms)).join(', ')

async function rehearsal() {
  const users = Number(process.env.BENCH_REHEARSE_USERS || process.env.BENCH_USERS || 1_000_000)
  const runs = Math.max(1, Number(process.env.BENCH_REHEARSE_RUNS || 3))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-bench-rehearse-'))
  const rows = []
  try {
    const file = path.join(dir, 'import.json')
    const directs = Array.from({ length: runs }, (_, i) => `direct${i}`)
    await writeImport(file, Object.fromEntries([['prod', users], ...directs.map((ns) => [ns, users])]))
    const dataBytes = (fs.statSync(file).size - 30) / (runs + 1)
    const emu = await startEmulatorProcess(file)
    fs.rmSync(file)
    try {
      for (const ns of ['prod', ...directs]) await putRules(emu, ns)
      const rehearsals = []
      const direct = []
      let report
      let seen
      let emuBefore
      let emuAfter
      for (let i = 0; i < runs; i++) {
        await emu.lever('DELETE', 'requests')
        const rehearsed = await node([BIN, 'rehearse', '--format', 'json', '--database-url', emu.db('prod')], { cwd: project(dir, `rehearse${i}`) })
        report = JSON.parse(rehearsed.stdout)
        seen = await emu.lever('GET', 'requests')
        if (!report.success) throw new Error(`the rehearsal failed: ${JSON.stringify(report.error)}`)
        if (report.rules?.origin !== undefined && report.rules.origin !== 'production')
          throw new Error(`the rehearsal ran without production's rules: ${JSON.stringify(report.rules)}`)
        rehearsals.push(rehearsed)
        // The emulator's memory once it has been quiet for a second (it gives free memory back
        // when the traffic stops), before and after the (first) direct run.
        await settle()
        if (i === 0) emuBefore = status(emu.pid).rssKb
        direct.push(await node([BIN, 'migrate', '--database-url', emu.db(directs[i])], { cwd: project(dir, directs[i]) }))
        await settle()
        if (i === 0) emuAfter = status(emu.pid).rssKb
      }
      const peakKb = Math.max(...rehearsals.map((r) => r.peakKb))
      const t = report.totals
      rows.push({
        figure: `rehearse, ${users} users (${mb(dataBytes / 1024)} MB of JSON), 2 migrations`,
        value: `${times(rehearsals)}; peak RSS ${mb(peakKb)} MB`,
        ratio: `${ratio(peakKb * 1024, dataBytes)}x the data (peak)`,
      })
      rows.push({
        figure: '  the same 2 migrations run directly (migrate)',
        value: `${times(direct)}; peak RSS ${mb(Math.max(...direct.map((r) => r.peakKb)))} MB`,
        ratio: `rehearsal ${ratio(best(rehearsals), best(direct))}x the time (best runs), ${ratio(median(rehearsals), median(direct))}x (medians)`,
      })
      rows.push({
        figure: '  the emulator process (all copies) before -> after migrate',
        value: `${mb(emuBefore)} -> ${mb(emuAfter)} MB`,
        // The data changed as much as the rehearsal found (the same migrations over the same
        // data): the growth against that change (goal <= 1.5x).
        ratio: `the run grew the store by ${mb(emuAfter - emuBefore)} MB: ${ratio((emuAfter - emuBefore) * 1024, t.bytesAfter - t.bytesBefore)}x the ${mb((t.bytesAfter - t.bytesBefore) / 1024)} MB the data grew`,
      })
      rows.push({
        figure: '  what the rehearsal found',
        value: `+${t.added} -${t.removed} ~${t.changed} values; ${mb(t.bytesBefore / 1024)} -> ${mb(t.bytesAfter / 1024)} MB`,
        ratio: `${report.migrations.map((m) => `${m.durationMs} ms`).join(' + ')} in scripts`,
      })
      rows.push({
        figure: "  under production's rules",
        value: report.rules ? `${report.rules.origin} (${report.rules.requests} request)` : 'none',
        ratio: report.rules ? `${report.warnings} warning(s)` : '',
      })
      rows.push({
        figure: '  what production received (one rehearsal)',
        value: `${seen.total} request(s): ${JSON.stringify(seen.byMethod)}`,
        ratio: report.source.snapshot ? 'one GET (a snapshot)' : 'a walk in pages',
      })
    } finally {
      await emu.stop()
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

module.exports = { rehearsal }

if (require.main === module) {
  rehearsal().then(
    (rows) => console.table(rows),
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
}
