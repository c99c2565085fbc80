'use strict'
// One side of the "read 100k children" bench, in its own process:
// `node bench/read.js facade|fetch <databaseUrl> <path> <rounds>` prints { ms: [..], children }.
const { FirebaseRunner } = require('..')

const [mode, databaseUrl, path, rounds] = process.argv.slice(2)

async function main() {
  let read
  if (mode === 'facade') {
    const runner = await FirebaseRunner.getInstance({ config: { databaseUrl, backupMode: 'manual', rollbackStrategy: 'none' }, logger: () => {} })
    const db = runner.getHandler().db.database
    read = async () => (await db.ref(path).get()).val()
  } else {
    const u = new URL(databaseUrl)
    read = async () => (await fetch(`${u.origin}/${path}.json?ns=${u.searchParams.get('ns')}`)).json()
  }
  const ms = []
  let children = 0
  for (let i = 0; i < Number(rounds); i++) {
    const t0 = process.hrtime.bigint()
    const v = await read()
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6)
    children = Object.keys(v).length
  }
  process.stdout.write(`${JSON.stringify({ ms, children })}\n`)
  process.exit(0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
