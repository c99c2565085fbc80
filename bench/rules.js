'use strict'
// The Security Rules half of `npm run bench`: what evaluating rules costs a write. One emulator
// process holds two namespaces of BENCH_RULES_USERS users each (default BENCH_USERS, 1M): one
// with a typical rules file (per-user .write with auth.uid === $uid, .validate on the record and
// two of its fields, two .indexOn), one without rules. The same writes — each user replacing
// their own record, as that user (auth_variable_override), CONCURRENCY in flight — go to both
// in alternating rounds, so the two figures are measured side by side under the same load.
// Goal: writes/s without rules at most 1.3x writes/s with rules.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { writeImport, startEmulatorProcess, ratio } = require('./big.js')

const RULES = `{
  // A typical rules file: each user writes their own record, records are checked, queries indexed.
  "rules": {
    "users": {
      ".indexOn": ["email", "age"],
      "$uid": {
        ".read": "auth != null && auth.uid === $uid",
        ".write": "auth != null && auth.uid === $uid",
        ".validate": "newData.hasChildren(['name', 'email'])",
        "email": { ".validate": "newData.isString() && newData.val().matches(/^[^@]+@[^@]+$/)" },
        "age": { ".validate": "newData.isNumber() && newData.val() >= 0" }
      }
    }
  }
}
`
const CONCURRENCY = 16
const ROUNDS = 3

const key = (i) => `u${String(i).padStart(7, '0')}`

/** `count` writes of users from `from`, each as that user; resolves the wall time in ms. */
async function writes(emu, ns, from, count) {
  let next = 0
  const t0 = process.hrtime.bigint()
  const worker = async () => {
    while (next < count) {
      const i = from + next++
      const uid = key(i)
      const body = JSON.stringify({ name: `User ${i}`, email: `user${i}@example.com`, age: 18 + (i % 60), city: 'Oslo', round: from })
      const auth = encodeURIComponent(JSON.stringify({ uid }))
      const res = await fetch(`${emu.url}/users/${uid}.json?ns=${ns}&print=silent&auth_variable_override=${auth}`, { method: 'PUT', body })
      if (res.status !== 204) throw new Error(`PUT ${ns}/users/${uid}: ${res.status} ${await res.text()}`)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return Number(process.hrtime.bigint() - t0) / 1e6
}

async function rulesCost() {
  const users = Number(process.env.BENCH_RULES_USERS || process.env.BENCH_USERS || 1_000_000)
  const perRound = Math.min(20_000, Math.floor(users / ROUNDS))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-bench-rules-'))
  const rows = []
  try {
    const file = path.join(dir, 'import.json')
    await writeImport(file, { ruled: users, open: users })
    const emu = await startEmulatorProcess(file)
    fs.rmSync(file)
    try {
      const res = await fetch(`${emu.url}/.settings/rules.json?ns=ruled`, { method: 'PUT', headers: { Authorization: 'Bearer owner' }, body: RULES })
      if (res.status !== 200) throw new Error(`PUT rules: ${res.status} ${await res.text()}`)
      // A denied write proves the rules are on.
      const denied = await fetch(`${emu.url}/users/${key(0)}.json?ns=ruled&auth_variable_override=${encodeURIComponent('{"uid":"someone-else"}')}`, {
        method: 'PUT',
        body: '{"name":"x","email":"x@y"}',
      })
      if (denied.status !== 401) throw new Error(`a write to another user's record was not refused: ${denied.status}`)
      await writes(emu, 'open', 0, 1000) // warm-up
      await writes(emu, 'ruled', 0, 1000)
      const ms = { open: 0, ruled: 0 }
      for (let r = 0; r < ROUNDS; r++) {
        const from = r * perRound
        for (const ns of r % 2 ? ['ruled', 'open'] : ['open', 'ruled']) ms[ns] += await writes(emu, ns, from, perRound)
      }
      const n = perRound * ROUNDS
      const perSec = (t) => Math.round(n / (t / 1000))
      rows.push({ figure: `writes without rules (${users} users, ${n} PUTs of a user's own record, ${CONCURRENCY} in flight)`, value: `${perSec(ms.open)} writes/s`, ratio: '' })
      rows.push({
        figure: '  the same writes under a typical rules file (.write by $uid, 3 .validate, 2 .indexOn)',
        value: `${perSec(ms.ruled)} writes/s`,
        ratio: `${ratio(ms.ruled, ms.open)}x the time (goal <= 1.3)`,
      })
    } finally {
      await emu.stop()
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

module.exports = { rulesCost }

if (require.main === module) {
  rulesCost().then(
    (rows) => console.table(rows),
    (e) => {
      console.error(e)
      process.exitCode = 1
    },
  )
}
