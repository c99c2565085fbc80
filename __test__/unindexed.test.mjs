// Queries the database refuses for want of an index (`Index not defined`): a migration whose
// script runs `orderByChild('email').equalTo(x)` on a node the rules do not index succeeds with
// firebase-admin's warning and the same answer as the indexed query (queries.unindexed:
// 'fallback', the default); with 'error' it fails naming the `.indexOn` to add; a rehearsal lists
// the query with the line to add.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')
const shared = h.emulatorPerFile()

// Emails of every kind RTDB orders: missing, a boolean, numbers, strings (ties by key), an object.
const USERS = {
  u1: { email: 'bob@x.io', n: 1 },
  u2: { email: 'amy@x.io', n: 2 },
  u3: { n: 3 },
  u4: { email: 'bob@x.io', n: 4 },
  u5: { email: 7, n: 5 },
  u6: { email: true, n: 6 },
  u7: { email: { first: 'bob' }, n: 7 },
  10: { email: 'bob@x.io', n: 10 },
}

// Asks the same questions of the node without an index (`users`) and of its indexed copy
// (`indexed_users`), twice each, and writes the answers (keys in order, values) next to them.
const FIND_BOB = `module.exports = { async up(db, info, h) {
  const ask = async (node, q) => {
    const snap = await q(db.database.ref(h.cfg.buildPath(node))).once('value')
    const keys = []
    snap.forEach((c) => { keys.push(c.key) })
    return { keys, value: snap.val() }
  }
  const questions = {
    bob: (r) => r.orderByChild('email').equalTo('bob@x.io'),
    lastTwo: (r) => r.orderByChild('email').limitToLast(2),
    fromSeven: (r) => r.orderByChild('email').startAt(7).endAt('bob@x.io').limitToFirst(3),
  }
  const found = {}
  for (const [name, q] of Object.entries(questions)) {
    found[name] = await ask('users', q)
    found[name + 'Again'] = await ask('users', q)
    found[name + 'Indexed'] = await ask('indexed_users', q)
  }
  await db.database.ref(h.cfg.buildPath('found')).set(JSON.stringify(found))
} }
`

const RULES = { rules: { '.read': true, '.write': true, app: { indexed_users: { '.indexOn': ['email'] } } } }

async function putRules(emu, ns, rules) {
  const res = await fetch(`${emu.url}/.settings/rules.json?ns=${ns}`, {
    method: 'PUT',
    headers: { authorization: 'Bearer owner' },
    body: JSON.stringify(rules),
  })
  assert.equal(res.status, 200, await res.text())
}

/** A project with FIND_BOB pending, against a namespace with the rules above and the users. */
async function setUp() {
  const emu = shared.emu
  const dir = h.project({ 'V202501010001_find_bob.js': FIND_BOB }, 'msr-unindexed-')
  fs.writeFileSync(path.join(dir, 'msr.config.js'), `module.exports = { folder: './migrations', shift: 'app' }\n`)
  const ns = h.uniqueNs('unindexed')
  await h.rawPut(emu, ns, 'app', { users: USERS, indexed_users: USERS })
  await putRules(emu, ns, RULES)
  return { dir, ns, url: emu.databaseUrl(ns) }
}

const run = (p, args, env = {}) => h.cli(args, { cwd: p.dir, env: { FIREBASE_DATABASE_URL: p.url, ...env } })

const WARNING =
  'Using an unspecified index. Your data will be downloaded and filtered on the client. Consider adding ".indexOn": "email" at /app/users to your security rules for better performance.'

test('migrate: an unindexed orderByChild().equalTo() answers as the indexed query does, with one warning in firebase-admin words', async () => {
  const p = await setUp()
  const out = await run(p, ['migrate', '--log-format', 'json'])
  assert.equal(out.code, 0, out.stdout + out.stderr)
  const lines = out.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
  const notices = lines.filter((l) => l.event === 'query.unindexed')
  assert.deepEqual(
    notices.map(({ level, message, path: at, child, indexOn }) => ({ level, message, path: at, child, indexOn })),
    [{ level: 'warn', message: WARNING, path: '/app/users', child: 'email', indexOn: '".indexOn": "email"' }],
    'one warning for the location and child, however many queries',
  )
  const found = JSON.parse(await h.rawGet(shared.emu, p.ns, 'app/found'))
  assert.deepEqual(found.bob.keys, ['10', 'u1', 'u4'])
  for (const q of ['bob', 'lastTwo', 'fromSeven']) {
    assert.deepEqual(found[q], found[q + 'Indexed'], q)
    assert.deepEqual(found[q + 'Again'], found[q + 'Indexed'], q)
  }
  assert.deepEqual(found.lastTwo.keys, ['u4', 'u7'])
  assert.deepEqual(found.fromSeven.keys, ['u5', 'u2', '10'])

  // The text log says the same words.
  const p2 = await setUp()
  const text = await run(p2, ['migrate'])
  assert.equal(text.code, 0, text.stdout + text.stderr)
  assert.equal(text.stderr.split(WARNING).length - 1, 1, text.stderr)
})

test('queries.unindexed error (flag, MSR_QUERIES_UNINDEXED, config): the migration fails naming the .indexOn to add and where; nothing written', async () => {
  for (const how of ['flag', 'env', 'config']) {
    const p = await setUp()
    if (how === 'config') {
      fs.writeFileSync(path.join(p.dir, 'msr.config.js'), `module.exports = { folder: './migrations', shift: 'app', queries: { unindexed: 'error' } }\n`)
    }
    const before = await h.rawGet(shared.emu, p.ns, 'app')
    const out = await run(p, ['migrate', ...(how === 'flag' ? ['--unindexed-queries', 'error'] : [])], how === 'env' ? { MSR_QUERIES_UNINDEXED: 'error' } : {})
    assert.equal(out.code, 3, `${how}: ${out.stdout}${out.stderr}`)
    assert.match(out.stderr, /V202501010001_find_bob\.js/, how)
    assert.match(
      out.stderr,
      /The query on \/app\/users ordered by child "email" needs an index the database's rules do not define: add "\.indexOn": "email" at \/app\/users to the rules/,
      how,
    )
    assert.doesNotMatch(out.stderr, /Using an unspecified index/, how)
    assert.deepEqual(await h.rawGet(shared.emu, p.ns, 'app'), before, `${how}: the database changed`)
  }
  const p = await setUp()
  const before = await h.rawGet(shared.emu, p.ns, 'app')
  const flag = await run(p, ['migrate', '--unindexed-queries', 'sometimes'])
  assert.equal(flag.code, 1, flag.stderr)
  assert.match(flag.stderr, /invalid value 'sometimes' for '--unindexed-queries <fallback\|error>'/)
  const env = await run(p, ['migrate'], { MSR_QUERIES_UNINDEXED: 'sometimes' })
  assert.equal(env.code, 2, env.stderr)
  assert.match(env.stderr, /MSR_QUERIES_UNINDEXED must be one of: fallback, error \(got "sometimes"\)/)
  assert.deepEqual(await h.rawGet(shared.emu, p.ns, 'app'), before)
})

test('rehearse lists the query that needed the fallback, with the .indexOn line to add', async () => {
  const p = await setUp()
  const before = await h.rawGet(shared.emu, p.ns, 'app')
  const out = await run(p, ['rehearse', '--format', 'json'])
  assert.equal(out.code, 0, out.stdout + out.stderr)
  const r = JSON.parse(out.stdout)
  assert.equal(r.success, true, out.stdout)
  assert.equal(r.rules.origin, 'production')
  assert.deepEqual(r.migrations[0].findings.unindexed, [{ path: '/app/users', child: 'email', indexOn: '".indexOn": "email"' }])
  assert.equal(r.warnings, 1)
  assert.deepEqual(await h.rawGet(shared.emu, p.ns, 'app'), before, 'production untouched')

  const text = await run(p, ['rehearse'])
  assert.equal(text.code, 0, text.stdout + text.stderr)
  assert.match(text.stdout, /! a query on \/app\/users ordered by email needs an index \(answered on the client, slow in production\): add "\.indexOn": "email" at \/app\/users/)
})
