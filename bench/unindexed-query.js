'use strict'
// One side of the unindexed-query bench, in its own process (for its peak RSS):
// `node bench/unindexed-query.js <databaseUrl> <email> <rounds>` asks the scripts' `db` for
// `users` ordered by child `email`, equal to <email>, <rounds> times; prints { ms: [..], found }.
const { FirebaseRunner } = require('..')

const [databaseUrl, email, rounds] = process.argv.slice(2)

async function main() {
  const warnings = []
  const runner = await FirebaseRunner.getInstance({
    config: { databaseUrl, backupMode: 'manual', rollbackStrategy: 'none' },
    logger: (level, message) => {
      if (message.startsWith('Using an unspecified index')) warnings.push(message)
    },
  })
  const db = runner.getHandler().db.database
  const ms = []
  let found = []
  for (let i = 0; i < Number(rounds); i++) {
    const t0 = process.hrtime.bigint()
    const snap = await db.ref('users').orderByChild('email').equalTo(email).get()
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6)
    found = Object.keys(snap.val() || {})
  }
  process.stdout.write(`${JSON.stringify({ ms, found, warnings: warnings.length })}\n`)
  process.exit(0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
