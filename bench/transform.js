'use strict'
// One side of the "add a field to every user" bench, in its own process:
// `node bench/transform.js helpers|fetch <databaseUrl> <path> <field>` prints { ms, writes }.
// - helpers: the recipe of docs/scripts.md (ref.children() + db.bulkWriter()).
// - fetch: the same job by hand with fetch(): key-ordered pages of 1000, multi-path PATCHes of
//   10,000 paths, 4 in flight.
const { FirebaseRunner } = require('..')

const [mode, databaseUrl, path, field] = process.argv.slice(2)

async function helpers() {
  const runner = await FirebaseRunner.getInstance({ config: { databaseUrl, backupMode: 'manual', rollbackStrategy: 'none' }, logger: () => {} })
  const db = runner.getHandler().db.database
  const writer = db.bulkWriter()
  for await (const user of db.ref(path).children({ pageSize: 1000 })) {
    await writer.update(user.ref, { [field]: 'free' })
  }
  return (await writer.close()).writes
}

async function plainFetch() {
  const u = new URL(databaseUrl)
  const ns = u.searchParams.get('ns')
  const url = (p, q = '') => `${u.origin}/${p}.json?ns=${ns}${q}`
  const q = (o) =>
    Object.entries(o)
      .map(([k, v]) => `&${k}=${encodeURIComponent(JSON.stringify(v))}`)
      .join('')
  let last = null
  let batch = {}
  let n = 0
  let writes = 0
  const inFlight = new Set()
  const send = async (body) => {
    const res = await fetch(url('', '&print=silent'), { method: 'PATCH', body: JSON.stringify(body) })
    if (!res.ok) throw new Error(`PATCH: ${res.status} ${await res.text()}`)
  }
  const flush = async () => {
    if (n === 0) return
    const p = send(batch).finally(() => inFlight.delete(p))
    inFlight.add(p)
    writes += n
    batch = {}
    n = 0
    if (inFlight.size >= 4) await Promise.race(inFlight)
  }
  for (;;) {
    const params = last === null ? { orderBy: '$key', limitToFirst: 1000 } : { orderBy: '$key', startAt: last, limitToFirst: 1001 }
    const res = await fetch(url(path, q(params)))
    const page = await res.json()
    const keys = Object.keys(page || {})
      .filter((k) => k !== last)
      .sort()
    if (keys.length === 0) break
    for (const k of keys) {
      batch[`${path}/${k}/${field}`] = 'free'
      n += 1
      if (n >= 10000) await flush()
    }
    last = keys[keys.length - 1]
  }
  await flush()
  await Promise.all(inFlight)
  return writes
}

async function main() {
  const t0 = process.hrtime.bigint()
  const writes = mode === 'helpers' ? await helpers() : await plainFetch()
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  process.stdout.write(`${JSON.stringify({ ms, writes })}\n`)
  process.exit(0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
