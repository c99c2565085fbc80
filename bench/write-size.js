'use strict'
// The write-size half of `npm run bench`: what the write-size estimate costs a write. One emulator
// process holds two namespaces of BENCH_WRITE_SIZE_USERS users each (default BENCH_USERS, 1M):
// one under the `large` limit (each write's body plus the subtree it replaces counted against
// 60 MB), one `unlimited` (nothing counted). The same writes — each replacing one user's record
// with a PUT, and multi-path PATCHes of 100 users' fields, CONCURRENCY in flight — go to both in
// alternating rounds, so the figures are measured side by side under the same load. Goal: the
// limited writes within 1.05x the time of the unlimited ones. Then what a refusal costs: a DELETE
// of all users (refused; the count stops at the budget) under `large` and under `tiny`.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { writeImport, startEmulatorProcess, ratio } = require('./big.js')

const CONCURRENCY = 16
const ROUNDS = 3
const TOO_BIG = 'WRITE_TOO_BIG'

const key = (i) => `u${String(i).padStart(7, '0')}`

/** `count` requests made by `make(i)` ({ method, path, body }), CONCURRENCY in flight; ms. */
async function run(emu, ns, count, make) {
  let next = 0
  const t0 = process.hrtime.bigint()
  const worker = async () => {
    while (next < count) {
      const { method, at, body } = make(next++)
      const res = await fetch(`${emu.url}/${at}.json?ns=${ns}&print=silent`, { method, body, headers: { Authorization: 'Bearer owner' } })
      if (res.status !== 204) throw new Error(`${method} ${ns}/${at}: ${res.status} ${await res.text()}`)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return Number(process.hrtime.bigint() - t0) / 1e6
}

const puts = (from) => (n) => {
  const i = from + n
  return {
    method: 'PUT',
    at: `users/${key(i)}`,
    body: JSON.stringify({ name: `User ${i}`, email: `user${i}@example.com`, age: 18 + (i % 60), city: 'Oslo', round: from }),
  }
}

const patches = (from) => (n) => {
  const body = {}
  for (let j = 0; j < 100; j++) body[`${key(from + n * 100 + j)}/plan`] = `p${from}`
  return { method: 'PATCH', at: 'users', body: JSON.stringify(body) }
}

/** A refused DELETE of every user: { ms, error }. */
async function refusedDelete(emu, ns, query) {
  const t0 = process.hrtime.bigint()
  const res = await fetch(`${emu.url}/users.json?ns=${ns}${query}`, { method: 'DELETE', headers: { Authorization: 'Bearer owner' } })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  const text = await res.text()
  if (res.status !== 400 || !text.includes(TOO_BIG)) throw new Error(`DELETE ${ns}/users${query} was not refused as too big: ${res.status} ${text}`)
  return ms
}

async function writeSizeCost() {
  const users = Number(process.env.BENCH_WRITE_SIZE_USERS || process.env.BENCH_USERS || 1_000_000)
  const perRound = Math.min(20_000, Math.floor(users / ROUNDS))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-bench-write-size-'))
  const rows = []
  try {
    const file = path.join(dir, 'import.json')
    await writeImport(file, { limited: users, open: users })
    const emu = await startEmulatorProcess(file)
    fs.rmSync(file)
    try {
      await emu.lever('PUT', 'write-size-limit', { default: 'large', ns: 'limited' })
      await run(emu, 'open', 1000, puts(0)) // warm-up
      await run(emu, 'limited', 1000, puts(0))
      const ms = { put: { open: 0, limited: 0 }, patch: { open: 0, limited: 0 } }
      const patchCount = Math.max(1, Math.floor(perRound / 100))
      for (let r = 0; r < ROUNDS; r++) {
        const from = r * perRound
        for (const ns of r % 2 ? ['limited', 'open'] : ['open', 'limited']) {
          ms.put[ns] += await run(emu, ns, perRound, puts(from))
          ms.patch[ns] += await run(emu, ns, patchCount, patches(from))
        }
      }
      const perSec = (n, t) => Math.round(n / (t / 1000))
      const n = perRound * ROUNDS
      const np = patchCount * ROUNDS
      rows.push({ figure: `unlimited: PUTs of a user's record (${users} users, ${n} PUTs, ${CONCURRENCY} in flight)`, value: `${perSec(n, ms.put.open)} writes/s`, ratio: '' })
      rows.push({
        figure: '  the same PUTs under `large` (body + the record each replaces, counted)',
        value: `${perSec(n, ms.put.limited)} writes/s`,
        ratio: `${ratio(ms.put.limited, ms.put.open)}x the time (goal <= 1.05)`,
      })
      rows.push({ figure: `unlimited: multi-path PATCHes of 100 users' fields (${np} PATCHes)`, value: `${perSec(np, ms.patch.open)} PATCHes/s`, ratio: '' })
      rows.push({
        figure: '  the same PATCHes under `large` (each path counted)',
        value: `${perSec(np, ms.patch.limited)} PATCHes/s`,
        ratio: `${ratio(ms.patch.limited, ms.patch.open)}x the time (goal <= 1.05)`,
      })
      // Refusals: `tiny` (1 MB) always; `large` (60 MB) when the users are more than that (about
      // 240 bytes each: from ~270k users), else that DELETE would succeed.
      const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
      const bytes = JSON.parse(await (await fetch(`${emu.url}/.emulator/write-size-limit`)).text()).budgets
      const tiny = []
      for (let i = 0; i < 5; i++) tiny.push(await refusedDelete(emu, 'limited', '&writeSizeLimit=tiny'))
      rows.push({
        figure: `DELETE of all ${users} users with writeSizeLimit=tiny: refused (WRITE_TOO_BIG), the count stopped at ${bytes.tiny} bytes`,
        value: `${median(tiny).toFixed(1)} ms`,
        ratio: '',
      })
      if (users * 240 > bytes.large) {
        const large = []
        for (let i = 0; i < 5; i++) large.push(await refusedDelete(emu, 'limited', ''))
        rows.push({ figure: `  the same DELETE under \`large\`: refused, the count stopped at ${bytes.large} bytes`, value: `${median(large).toFixed(1)} ms`, ratio: '' })
      }
    } finally {
      await emu.stop()
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

module.exports = { writeSizeCost }

if (require.main === module) {
  writeSizeCost().then(
    (rows) => console.table(rows),
    (e) => {
      console.error(e)
      process.exitCode = 1
    },
  )
}
