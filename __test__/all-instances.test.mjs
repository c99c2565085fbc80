// --all-instances --project <id>: the set of databases from the project's instances, listed by a
// fake of the Firebase Realtime Database Management API on loopback (MSR_FIREBASE_MANAGEMENT_API),
// with the emulator's namespaces as the instances. Real CLI processes.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')
const { startFakeGoogle } = require('./fake-google.cjs')

h.clearDatabaseEnv()
const shared = h.emulatorPerFile()
let google
before(async () => {
  google = await startFakeGoogle()
})
after(async () => {
  await google.close()
})

const PROJECT = 'shop-prod'

/** A project with two migrations and no database in its config, the key file of the fake. */
function project(config = {}) {
  const dir = h.project({ 'V202501010001_a.js': h.nodeScript('a'), 'V202501010002_b.js': h.nodeScript('b') }, 'msr-instances-')
  fs.writeFileSync(path.join(dir, 'msr.config.json'), JSON.stringify({ locking: { enabled: true }, ...config }))
  const key = path.join(dir, 'key.json')
  fs.writeFileSync(key, JSON.stringify(google.serviceAccount()))
  return { dir, env: { GOOGLE_APPLICATION_CREDENTIALS: key, MSR_FIREBASE_MANAGEMENT_API: google.base } }
}

const instance = (ns, type = 'USER_DATABASE', state = 'ACTIVE') => ({
  name: `projects/123456/locations/europe-west1/instances/${ns}`,
  project: 'projects/123456',
  databaseUrl: shared.emu.databaseUrl(ns),
  type,
  state,
})

test('migrate --all-instances: every active data instance of the project migrated, the disabled one untouched', async () => {
  const nss = [h.uniqueNs('main'), h.uniqueNs('shard'), h.uniqueNs('shard'), h.uniqueNs('off')]
  google.project = PROJECT
  google.pageSize = 2
  google.instances = [instance(nss[0], 'DEFAULT_DATABASE'), instance(nss[1]), instance(nss[3], 'USER_DATABASE', 'DISABLED'), instance(nss[2])]
  const listed = google.calls.instances || 0
  const p = project()
  const out = await h.cli(['migrate', '--all-instances', '--project', PROJECT, '--format', 'json'], { cwd: p.dir, env: p.env })
  assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}`)
  const doc = JSON.parse(out.stdout)
  assert.deepEqual(
    doc.databases.map((d) => [d.name, d.status]),
    nss.slice(0, 3).map((ns) => [ns, 'succeeded']),
  )
  for (const ns of nss.slice(0, 3)) {
    const d = await h.dump(shared.emu, ns)
    assert.equal(d.a, true, ns)
    assert.equal(d.b, true, ns)
    assert.deepEqual(Object.keys(d.schema_version).sort(), ['v202501010001', 'v202501010002'], ns)
  }
  assert.equal(await h.dump(shared.emu, nss[3]), null, 'the disabled instance is not touched')
  assert.match(out.stderr, new RegExp(`Instance ${nss[3]} skipped: state DISABLED`), out.stderr)
  assert.equal(google.calls.instances - listed, 2, 'two pages of two')
  assert.doesNotMatch(`${out.stdout}${out.stderr}`, /ya29|SECRET/)
})

test('--all-instances refused: another project (403, the role to grant), a config naming databases, no --project (usage, exit 1)', async () => {
  google.project = PROJECT
  google.instances = [instance(h.uniqueNs('shard'))]
  const p = project()
  const denied = await h.cli(['list', '--all-instances', '--project', 'shop-staging'], { cwd: p.dir, env: p.env })
  assert.equal(denied.code, 7, `${denied.stdout}\n${denied.stderr}`)
  assert.match(denied.stderr, /project shop-staging was refused .*HTTP 403/)
  assert.match(denied.stderr, /roles\/firebasedatabase\.viewer/)
  assert.match(denied.stderr, /migrations@test-project\.iam\.gserviceaccount\.com/)
  assert.doesNotMatch(`${denied.stdout}${denied.stderr}`, /ya29|SECRET/)

  const ns = h.uniqueNs('named')
  const named = project({ databaseUrls: [shared.emu.databaseUrl(ns)] })
  const listed = google.calls.instances || 0
  const both = await h.cli(['migrate', '--all-instances', '--project', PROJECT], { cwd: named.dir, env: named.env })
  assert.equal(both.code, 2, `${both.stdout}\n${both.stderr}`)
  assert.match(both.stderr, /--all-instances runs on the instances of --project, but the configuration names databases too/)
  assert.equal(google.calls.instances || 0, listed, 'nothing listed')
  assert.equal(await h.dump(shared.emu, ns), null, 'nothing ran')

  const bare = await h.cli(['migrate', '--all-instances'], { cwd: p.dir, env: p.env })
  assert.equal(bare.code, 1, `${bare.stdout}\n${bare.stderr}`)
  assert.match(bare.stderr, /required arguments were not provided:\s+--project <id>/)
})
