// The `db.database` facade against firebase-admin's documented behaviour (the Realtime Database
// reference docs for Reference, Query and DataSnapshot, and firebase-admin's own argument
// checks), and the helpers for big collections: children() pages and bulkWriter() batches.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')
const { FirebaseRunner, ServerValue } = await import('../index.mjs')

let emu
before(async () => {
  emu = await h.startEmulator({ host: '127.0.0.1', port: 0 })
})
after(async () => {
  await emu.stop()
})

async function setup(files = {}) {
  const dir = h.project(files, 'msr-db-')
  const ns = h.uniqueNs('db')
  const logs = []
  const runner = await FirebaseRunner.getInstance({
    config: { databaseUrl: emu.databaseUrl(ns), folder: path.join(dir, 'migrations'), backupMode: 'manual', rollbackStrategy: 'none' },
    logger: (lvl, msg) => logs.push([lvl, msg]),
  })
  return { runner, db: runner.getHandler().db.database, ns, logs }
}

async function counts() {
  return h.lever(emu, 'GET', 'requests')
}
const resetCounts = () => h.lever(emu, 'DELETE', 'requests')

function users(n) {
  const out = {}
  for (let i = 0; i < n; i++) out[`u${String(i).padStart(4, '0')}`] = { name: `User ${i}`, n: i }
  return out
}

test('the paging loop orderByKey().startAfter(last).limitToFirst(n), limitToFirst without orderBy and endBefore work in a migration script', async () => {
  const migration = `module.exports = class {
    async up(db, info, handler) {
      const ref = db.database.ref('users')
      const seen = []
      let last = null
      for (;;) {
        let q = ref.orderByKey()
        if (last !== null) q = q.startAfter(last)
        const snap = await q.limitToFirst(100).once('value')
        if (!snap.exists()) break
        snap.forEach((child) => { seen.push(child.key); last = child.key })
      }
      const first3 = Object.keys((await ref.limitToFirst(3).get()).val())
      const last2 = Object.keys((await ref.limitToLast(2).get()).val())
      const before = []
      ;(await ref.orderByKey().endBefore('u0010').limitToLast(3).get()).forEach((c) => { before.push(c.key) })
      const adults = await ref.orderByChild('n').startAfter(997).get()
      await db.database.ref('report').set({ count: seen.length, unique: new Set(seen).size, sorted: seen.every((k, i) => i === 0 || seen[i - 1] < k), first3, last2, before, adults: Object.keys(adults.val()) })
      return 'paged'
    }
  }\n`
  const { runner, ns } = await setup({ 'V202501010001_page.js': migration })
  await h.rawPut(emu, ns, 'users', users(1000))
  const result = await runner.migrate()
  assert.equal(result.success, true, JSON.stringify(result.errors))
  assert.deepEqual(await h.rawGet(emu, ns, 'report'), {
    count: 1000,
    unique: 1000,
    sorted: true,
    first3: ['u0000', 'u0001', 'u0002'],
    last2: ['u0998', 'u0999'],
    before: ['u0007', 'u0008', 'u0009'],
    adults: ['u0998', 'u0999'],
  })
})

test('ref.toString() is the absolute URL-encoded location; toJSON and refFromURL round-trip it (firebase-admin Reference docs)', async () => {
  const { db, ns } = await setup()
  const base = `${emu.url}`
  assert.equal(db.ref().toString(), `${base}/?ns=${ns}`)
  assert.equal(db.ref('users/alice').toString(), `${base}/users/alice?ns=${ns}`)
  assert.equal(db.ref('a b/ü').toString(), `${base}/a%20b/%C3%BC?ns=${ns}`)
  assert.equal(db.ref('users').orderByKey().limitToFirst(2).toString(), `${base}/users?ns=${ns}`)
  assert.equal(JSON.stringify({ at: db.ref('x/y') }), JSON.stringify({ at: `${base}/x/y?ns=${ns}` }))
  const back = db.refFromURL(db.ref('a b/ü').toString())
  assert.equal(back.key, 'ü')
  assert.equal(back.parent.key, 'a b')
  assert.ok(back.isEqual(db.ref('a b/ü')))
  assert.throws(() => db.refFromURL('https://other.firebaseio.com/a'), /refFromURL: Host name does not match the current database: \(found other\.firebaseio\.com but expected/)
  assert.throws(() => db.refFromURL(`${base}/a?ns=someone-else`), /Host name does not match/)
  assert.equal(db.ref(db.ref('p/q')).key, 'q', 'ref(reference) as in firebase-admin')
})

test("invalid keys throw at ref() and child(), with firebase-admin's message", async () => {
  const { db } = await setup()
  for (const bad of ['a.b', 'x/$y', 'h#sh', 'a[0]', 'b]', 'c\u0001']) {
    assert.throws(
      () => db.ref(bad),
      (e) =>
        e.code === 'INVALID_PATH' &&
        e.message.startsWith(`child failed: path argument was an invalid path = "${bad}". Paths must be non-empty strings and can't contain ".", "#", "$", "[", or "]"`),
      bad,
    )
    assert.throws(() => db.ref('ok').child(bad), /child failed: path argument was an invalid path/, bad)
  }
  assert.throws(() => db.ref('k'.repeat(769)), /768 bytes/)
  assert.throws(() => db.ref(Array(32).fill('d').join('/')), /32 levels/)
  assert.equal(db.ref('/a//b/').toString(), db.ref('a/b').toString())
  const snap = await db.ref('nothing').get()
  assert.throws(() => snap.child('a.b'), /invalid path/)
})

test("set/update with undefined (and other data RTDB cannot store) throw synchronously with firebase-admin's messages", async () => {
  const { db, ns } = await setup()
  const ref = db.ref('people/p1')
  // firebase-admin: `Reference.set failed: value argument contains undefined in property 'people.p1.age'`
  assert.throws(() => ref.set({ name: 'x', age: undefined }), { message: "set failed: value argument contains undefined in property 'people.p1.age'" })
  assert.throws(() => ref.set(undefined), { message: "set failed: value argument contains undefined in property 'people.p1'" })
  assert.throws(() => db.ref().set(undefined), { message: 'set failed: value argument contains undefined ' })
  assert.throws(() => ref.update({ 'a/b': undefined }), { message: "update failed: values argument contains undefined in property 'people.p1.a.b'" })
  assert.throws(() => ref.update('nope'), { message: 'update failed: values argument  must be an object containing the children to replace.' })
  assert.throws(() => ref.update({ a: 1, 'a/b': 2 }), { message: 'update failed: values argument contains a path /a that is ancestor of another path /a/b' })
  assert.throws(() => ref.set({ n: NaN }), { message: "set failed: value argument contains NaN in property 'people.p1.n'" })
  assert.throws(() => ref.set({ f() {} }), /set failed: value argument contains a function in property 'people\.p1\.f'/)
  assert.throws(() => ref.set({ 'a.b': 1 }), /set failed: value argument  contains an invalid key \(a\.b\) in property 'people\.p1'/)
  assert.throws(() => ref.set({ '.priority': 1, v: 2 }), /priorities are not supported/)
  assert.equal(await h.rawGet(emu, ns, 'people'), null, 'nothing was written')
  // Null deletes, Dates are JSON (toJSON), as with firebase-admin's JSON semantics here.
  await ref.set({ at: new Date(0), gone: null })
  assert.deepEqual(await h.rawGet(emu, ns, 'people/p1'), { at: '1970-01-01T00:00:00.000Z' })
})

test('db.database.ServerValue, snapshot.val() fresh on every call, exists() without parsing, toJSON', async () => {
  const { db, ns } = await setup()
  assert.equal(db.ServerValue, ServerValue)
  await db.ref('s').set({ t: db.ServerValue.TIMESTAMP, n: 1, list: [1, 2] })
  await db.ref('s/n').set(db.ServerValue.increment(2))
  const snap = await db.ref('s').get()
  const a = snap.val()
  a.n = 99
  a.list.push(3)
  const b = snap.val()
  assert.notEqual(a, b, 'a new object every call, as firebase-admin')
  assert.equal(b.n, 3)
  assert.deepEqual(b.list, [1, 2])
  assert.equal(snap.child('n').val(), 3)
  assert.deepEqual(snap.toJSON(), b)
  assert.equal(typeof b.t, 'number')
  assert.equal((await db.ref('missing').get()).exists(), false)
  assert.deepEqual(await h.rawGet(emu, ns, 's/list'), [1, 2])
})

test('what is not offered throws a clear error naming the alternative', async () => {
  const { db } = await setup()
  const ref = db.ref('x')
  const notOffered = (fn, re) => assert.throws(fn, (e) => e.code === 'NOT_SUPPORTED' && re.test(e.message))
  notOffered(() => ref.on('value', () => {}), /once\("value"\)/)
  notOffered(() => ref.onDisconnect(), /set\(\), update\(\) or remove\(\)/)
  notOffered(() => ref.setPriority(1), /orderByChild/)
  notOffered(() => ref.setWithPriority(1, 2), /orderByChild/)
  notOffered(() => ref.orderByPriority(), /orderByChild/)
  notOffered(() => ref.orderByChild('n').startAt(1, 'k'), /key argument/)
  await assert.rejects(ref.once('child_added'), (e) => e.code === 'NOT_SUPPORTED' && /once\('value'\)/.test(e.message))
  // Query misuse, as firebase-admin words it.
  assert.throws(() => ref.orderByKey().orderByValue(), { message: "orderByValue: You can't combine multiple orderBy calls." })
  assert.throws(
    () => ref.orderByKey().startAt(1),
    /When ordering by key, the argument passed to startAt\(\), startAfter\(\), endAt\(\), endBefore\(\), or equalTo\(\) must be a string/,
  )
  assert.throws(() => ref.limitToFirst(0), { message: 'limitToFirst: First argument must be a positive integer.' })
  assert.throws(() => ref.limitToFirst(1).limitToLast(1), { message: 'limitToLast: Limit was already set (by another call to limitToFirst or limitToLast).' })
  assert.throws(() => ref.orderByKey().startAt('a').startAfter('b'), /startAfter: Starting point was already set/)
  assert.throws(() => ref.orderByChild('$key'), { message: 'orderByChild: "$key" is invalid.  Use orderByKey() instead.' })
  await assert.rejects(ref.startAt('a').get(), /need orderByKey\(\), orderByChild\(\) or orderByValue\(\)/)
})

test('children(): every child once in key order, one page per request, two pages in memory at most', async () => {
  const { db, ns } = await setup()
  await h.rawPut(emu, ns, 'users', users(2500))
  await resetCounts()
  const seen = []
  for await (const child of db.ref('users').children({ pageSize: 1000 })) {
    seen.push(child.key)
    assert.equal(child.child('n').val(), seen.length - 1)
  }
  assert.equal(seen.length, 2500)
  assert.ok(seen.every((k, i) => i === 0 || seen[i - 1] < k))
  assert.equal((await counts()).total, 3, '3 pages (the last short)')
  // Stopping early leaves no stray read behind.
  let n = 0
  for await (const page of db.ref('users').children({ pageSize: 300 }).pages()) {
    n += page.length
    if (n >= 600) break
  }
  assert.equal(n, 600)
  const empty = []
  for await (const c of db.ref('nothing').children()) empty.push(c)
  assert.equal(empty.length, 0)
  assert.throws(() => db.ref('users').children({ pageSize: 0 }), /pageSize must be a positive integer/)
})

test('bulkWriter(): entries packed into multi-path PATCHes within the budget, in order where paths overlap, progress to the runner logger', async () => {
  const { db, ns, logs } = await setup()
  await h.rawPut(emu, ns, 'users', users(3000))
  await resetCounts()
  const writer = db.bulkWriter({ maxEntries: 500, inFlight: 3, logEveryMs: 1 })
  for await (const user of db.ref('users').children({ pageSize: 1000 })) {
    await writer.update(user.ref, { plan: user.child('n').val() % 2 ? 'pro' : 'free' })
  }
  // Overlapping writes keep their order: the later one wins.
  await writer.set('flags/x', { a: 1 })
  await writer.set('flags/x/a', 2)
  await writer.delete('users/u0000')
  const stats = await writer.close()
  assert.deepEqual(stats.writes, 3003)
  const c = await counts()
  assert.equal(c.byMethod.PATCH, stats.batches)
  assert.equal(stats.batches, 8, '3000 entries in batches of 500, then the overlapping ones')
  const data = (await emu.export())[ns]
  assert.equal(Object.keys(data.users).length, 2999)
  assert.equal(data.users.u0001.plan, 'pro')
  assert.equal(data.users.u0002.plan, 'free')
  assert.deepEqual(data.flags, { x: { a: 2 } })
  assert.ok(
    logs.some(([lvl, msg]) => lvl === 'info' && /^BulkWriter: 3,003 writes in 8 batches \([\d.]+ MB, [\d,]+ writes\/s\), done$/.test(msg)),
    JSON.stringify(logs.slice(-3)),
  )
  // A byte budget: 100-byte batches.
  const small = db.bulkWriter({ maxBytes: 100 })
  for (let i = 0; i < 10; i++) await small.set(`b/k${i}`, 'x'.repeat(30))
  assert.equal((await small.close()).batches, 5)
  // Bad data throws at the call; a failed batch makes the next call throw and close reject.
  const w = db.bulkWriter({ maxEntries: 1 })
  assert.throws(() => w.set('a', { b: undefined }), /BulkWriter\.set failed: value argument contains undefined in property 'a\.b'/)
  await h.lever(emu, 'PUT', 'deny', { paths: [''] })
  try {
    await w.set('z/1', 1)
    await assert.rejects(w.flush(), /BulkWriter: a batch of 1 writes \(from \/z\/1\) failed after 0 writes/)
    assert.throws(() => w.set('z/2', 2), /BulkWriter: a batch of 1 writes/)
  } finally {
    await h.lever(emu, 'DELETE', 'deny')
  }
})
