'use strict'
// The unindexed-query half of `npm run bench`: a query the database refuses for want of an index
// (`orderByChild('email').equalTo(x)` on BENCH_UNINDEXED_USERS users, default 100k, rules without
// `.indexOn`), answered on the client by the scripts' `db` (queries.unindexed: 'fallback'), vs
// the same query on an indexed copy. One emulator process holds both namespaces; each side runs
// in its own process (its peak RSS), in alternating order, ROUNDS queries each. Then the
// fallback again under a 16 MB response limit, where it reads the node in pages by key.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { writeImport, startEmulatorProcess, side, mb, ratio } = require('./big.js')

const ROUNDS = 3
const SIDE = path.join(__dirname, 'unindexed-query.js')
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function putRules(emu, ns, rules) {
  const res = await fetch(`${emu.url}/.settings/rules.json?ns=${ns}`, { method: 'PUT', headers: { Authorization: 'Bearer owner' }, body: JSON.stringify(rules) })
  if (res.status !== 200) throw new Error(`PUT rules of ${ns}: ${res.status} ${await res.text()}`)
}

/** Requests to `/users` since the counts were reset (the runner's own reads left out). */
async function userRequests(emu) {
  const c = await emu.lever('GET', 'requests')
  return Object.entries(c.byPath)
    .filter(([k]) => /^GET \/users(\/|$)/.test(k))
    .reduce((n, [, v]) => n + v, 0)
}

async function query(emu, ns, email) {
  const { out, peakKb } = await side(emu, [SIDE, emu.db(ns), email, String(ROUNDS)])
  return { ms: median(out.ms), peakKb, found: out.found, warnings: out.warnings, requests: (await userRequests(emu)) / ROUNDS }
}

async function unindexedCost() {
  const users = Number(process.env.BENCH_UNINDEXED_USERS || 100_000)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-bench-unindexed-'))
  const rows = []
  try {
    const file = path.join(dir, 'import.json')
    await writeImport(file, { indexed: users, bare: users })
    const bytes = fs.statSync(file).size / 2
    const emu = await startEmulatorProcess(file)
    fs.rmSync(file)
    try {
      await putRules(emu, 'indexed', { rules: { '.read': true, '.write': true, users: { '.indexOn': ['email'] } } })
      await putRules(emu, 'bare', { rules: { '.read': true, '.write': true } })
      const email = `user${Math.floor(users / 2)}@example.com`
      const s = { indexed: [], bare: [] }
      for (const order of [
        ['indexed', 'bare'],
        ['bare', 'indexed'],
      ]) {
        for (const ns of order) s[ns].push(await query(emu, ns, email))
      }
      const pick = (xs, k) => median(xs.map((x) => x[k]))
      const [ix, fb] = [s.indexed, s.bare]
      if (JSON.stringify(ix[0].found) !== JSON.stringify(fb[0].found) || ix[0].found.length !== 1) throw new Error(`different answers: ${ix[0].found} vs ${fb[0].found}`)
      rows.push({
        figure: `indexed query, ${users} users (${mb(bytes / 1024)} MB)`,
        value: `${pick(ix, 'ms').toFixed(1)} ms, ${pick(ix, 'requests')} request(s), client peak ${mb(pick(ix, 'peakKb'))} MB`,
        ratio: '1x',
      })
      rows.push({
        figure: 'unindexed, answered on the client (one GET)',
        value: `${pick(fb, 'ms').toFixed(1)} ms, ${pick(fb, 'requests')} request(s), client peak ${mb(pick(fb, 'peakKb'))} MB, ${fb[0].warnings} warning(s)`,
        ratio: `${ratio(pick(fb, 'ms'), pick(ix, 'ms'))}x time, ${ratio(pick(fb, 'peakKb'), pick(ix, 'peakKb'))}x peak RSS`,
      })
      const { responseBytes } = await emu.lever('GET', 'limits')
      await emu.lever('PUT', 'limits', { responseBytes: 16 * 1024 * 1024 })
      const paged = [await query(emu, 'bare', email), await query(emu, 'bare', email)]
      await emu.lever('PUT', 'limits', { responseBytes })
      if (JSON.stringify(paged[0].found) !== JSON.stringify(ix[0].found)) throw new Error(`different answers when paged: ${paged[0].found}`)
      rows.push({
        figure: 'unindexed, 16 MB response limit (pages by key)',
        value: `${pick(paged, 'ms').toFixed(1)} ms, ${pick(paged, 'requests')} request(s), client peak ${mb(pick(paged, 'peakKb'))} MB`,
        ratio: `${ratio(pick(paged, 'ms'), pick(ix, 'ms'))}x time, ${ratio(pick(paged, 'peakKb'), pick(ix, 'peakKb'))}x peak RSS`,
      })
    } finally {
      await emu.stop()
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

module.exports = { unindexedCost }

if (require.main === module) {
  unindexedCost().then(
    (rows) => console.table(rows),
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
}
