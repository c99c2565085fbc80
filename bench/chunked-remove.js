'use strict'
// One side of the chunked-delete bench, in its own process (for its peak RSS):
// `node bench/chunked-remove.js <databaseUrl>` removes `users` through the scripts' `db`;
// prints { ms, chunked } (chunked: the write.chunked log line's requests, or 0 for one DELETE).
const { FirebaseRunner } = require('..')

const [databaseUrl] = process.argv.slice(2)

async function main() {
  let chunked = 0
  const runner = await FirebaseRunner.getInstance({
    config: { databaseUrl, backupMode: 'manual', rollbackStrategy: 'none' },
    logger: (level, message) => {
      const m = /deleted in chunks, (\d+) requests/.exec(message)
      if (m) chunked = Number(m[1])
    },
  })
  const db = runner.getHandler().db.database
  const t0 = process.hrtime.bigint()
  await db.ref('users').remove()
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  const left = (await db.ref('users').get()).exists()
  process.stdout.write(`${JSON.stringify({ ms, chunked, left })}\n`)
  process.exit(0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
