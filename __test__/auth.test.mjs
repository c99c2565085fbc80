// Production identity against fakes: the CLI and the library get their token the way they would
// on Google Cloud (a key file's token_uri, the metadata server of the guide's Kubernetes example,
// gcloud's application-default file, an external account's STS exchange), send it to an
// emulator that requires exactly that token (the MSR_FIREBASE_EMULATOR_AUTH=credentials seam),
// stay inside their own paths under least-privilege rules, and never print a secret.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')
const { startFakeGoogle, SUBJECT_TOKEN, USER, KEY_PEM } = require('./fake-google.cjs')
const { FirebaseRunner, FirebaseConfig } = require('..')

let emu
let google
before(async () => {
  emu = await h.startEmulator({ host: '127.0.0.1', port: 0 })
  google = await startFakeGoogle()
})
after(async () => {
  await h.lever(emu, 'POST', 'reset')
  await emu.stop()
  await google.close()
})

/** Every secret in play: none may appear in any output. */
const SECRETS = () => [google.token, 'SECRET', KEY_PEM.split('\n')[1], USER.refresh_token, USER.client_secret, SUBJECT_TOKEN]

function assertNoSecret(text) {
  for (const s of SECRETS()) assert.ok(!text.includes(s), `secret ${JSON.stringify(s.slice(0, 12))}… in:\n${text}`)
}

/** A clean environment: nothing but what the test gives (no credentials, no gcloud file). */
function prodEnv(dir, extra = {}) {
  return {
    FIREBASE_DATABASE_EMULATOR_HOST: '',
    FIREBASE_DATABASE_URL: '',
    GOOGLE_APPLICATION_CREDENTIALS: '',
    MSR_FIREBASE_EMULATOR_AUTH: 'credentials',
    HOME: dir,
    CLOUDSDK_CONFIG: path.join(dir, 'gcloud'),
    GCE_METADATA_HOST: '127.0.0.1:1',
    ...extra,
  }
}

async function requireToken(token) {
  await h.lever(emu, 'PUT', 'auth', { tokens: token ? [token] : [] })
}

test("the guide's Kubernetes example: only DATABASE_URL set, the token comes from the metadata server", async () => {
  const dir = h.project(undefined, 'msr-auth-')
  const ns = h.uniqueNs('k8s')
  google.token = 'ya29.SECRET-workload-identity'
  await requireToken(google.token)
  const before = google.calls.metadata || 0
  try {
    const env = prodEnv(dir, { DATABASE_URL: emu.databaseUrl(ns), GCE_METADATA_HOST: google.host, MSR_LOCKING_ENABLED: 'true' })
    const out = await h.cli(['migrate', '--log-level', 'debug'], { cwd: dir, env })
    assert.equal(out.code, 0, out.stderr)
    const history = (await emu.export())[ns].schema_version
    assert.equal(Object.keys(history).length, 4)
    assert.equal((google.calls.metadata || 0) - before, 1, 'one token for the whole run (cached)')
    assertNoSecret(out.stdout + out.stderr)
  } finally {
    await requireToken(null)
  }
})

test('key file -> token endpoint -> Authorization header -> accepted request -> migrate; a refused token is named by identity', async () => {
  const dir = h.project(undefined, 'msr-auth-')
  const ns = h.uniqueNs('key')
  fs.writeFileSync(path.join(dir, 'key.json'), JSON.stringify(google.serviceAccount()))
  google.token = 'ya29.SECRET-from-key'
  await requireToken(google.token)
  try {
    const env = prodEnv(dir, { DATABASE_URL: emu.databaseUrl(ns) })
    let out = await h.cli(['migrate', '--credentials', 'key.json', '--log-level', 'debug'], { cwd: dir, env })
    assert.equal(out.code, 0, out.stderr)
    assert.equal(Object.keys((await emu.export())[ns].schema_version).length, 4)
    assertNoSecret(out.stdout + out.stderr)
    // The database refuses the token the key gets: an error naming the service account (and
    // never the token); a token fetched just now is not fetched again.
    await requireToken('ya29.SECRET-something-else')
    const calls = google.calls['jwt-bearer']
    out = await h.cli(['list', '--credentials', 'key.json', '--log-level', 'debug'], { cwd: dir, env })
    assert.equal(out.code, 7, out.stderr)
    assert.match(out.stderr, /migrations@test-project\.iam\.gserviceaccount\.com/)
    assert.equal(google.calls['jwt-bearer'] - calls, 1)
    assertNoSecret(out.stdout + out.stderr)
  } finally {
    await requireToken(null)
  }
})

test("gcloud's application-default file and an external account: each gets its token, no secret printed", async () => {
  const dir = h.project(undefined, 'msr-auth-')
  fs.mkdirSync(path.join(dir, 'gcloud'))
  fs.writeFileSync(path.join(dir, 'gcloud', 'application_default_credentials.json'), JSON.stringify(google.authorizedUser()))
  fs.writeFileSync(path.join(dir, 'subject-token'), SUBJECT_TOKEN)
  fs.writeFileSync(path.join(dir, 'wif.json'), JSON.stringify(google.externalAccount(path.join(dir, 'subject-token'))))
  google.token = 'ya29.SECRET-adc'
  await requireToken(google.token)
  try {
    let ns = h.uniqueNs('gcloud')
    const user = google.calls.refresh_token || 0
    let out = await h.cli(['migrate', '--log-level', 'debug'], { cwd: dir, env: prodEnv(dir, { DATABASE_URL: emu.databaseUrl(ns) }) })
    assert.equal(out.code, 0, out.stderr)
    assert.equal((google.calls.refresh_token || 0) - user, 1)
    assertNoSecret(out.stdout + out.stderr)

    ns = h.uniqueNs('wif')
    const sts = google.calls.sts || 0
    out = await h.cli(['migrate', '--log-level', 'debug'], {
      cwd: dir,
      env: prodEnv(dir, { DATABASE_URL: emu.databaseUrl(ns), GOOGLE_APPLICATION_CREDENTIALS: 'wif.json' }),
    })
    assert.equal(out.code, 0, out.stderr)
    assert.equal((google.calls.sts || 0) - sts, 1)
    assertNoSecret(out.stdout + out.stderr)
  } finally {
    await requireToken(null)
  }
})

test('no credentials anywhere: exit 7, every step tried is listed with its fix, within seconds', async () => {
  const dir = h.project(undefined, 'msr-auth-')
  const out = await h.cli(['migrate'], { cwd: dir, env: prodEnv(dir, { DATABASE_URL: 'https://example-db.firebaseio.com', MSR_FIREBASE_EMULATOR_AUTH: '' }) })
  assert.equal(out.code, 7, out.stderr)
  for (const step of [
    '1. applicationCredentials / --credentials: not set',
    '2. GOOGLE_APPLICATION_CREDENTIALS: not set',
    "3. gcloud's application-default credentials:",
    '4. the metadata server at 127.0.0.1:1',
    'gcloud auth application-default login',
  ]) {
    assert.ok(out.stderr.includes(step), `${step} missing from:\n${out.stderr}`)
  }
})

// ---- least privilege: rules that grant exactly {shift} ----

test('with every node but {shift} denied: migrate, list, down, lock:status, lock:release --force, backup create|restore work', async () => {
  const dir = h.project(undefined, 'msr-auth-')
  const ns = h.uniqueNs('lp')
  await h.rawPut(emu, ns, 'other', { secret: 1 })
  await h.lever(emu, 'PUT', 'allow', { ns, paths: ['app'] })
  await h.lever(emu, 'DELETE', 'requests')
  try {
    const env = { FIREBASE_DATABASE_EMULATOR_HOST: emu.hostPort, MSR_LOCKING_ENABLED: 'true' }
    const run = (args) => h.cli([...args, '--shift', 'app', '--database-url', emu.databaseUrl(ns)], { cwd: dir, env })
    for (const args of [['migrate'], ['list'], ['down', '202501010002'], ['lock:status'], ['lock:release', '--force'], ['migrate']]) {
      const out = await run(args)
      assert.equal(out.code, 0, `${args.join(' ')}:\n${out.stdout}\n${out.stderr}`)
    }
    let out = await run(['backup', 'create', '--format', 'json'])
    assert.equal(out.code, 0, out.stderr)
    const file = JSON.parse(out.stdout).path
    out = await run(['backup', 'restore', file])
    assert.equal(out.code, 0, out.stderr)
    const counts = await h.lever(emu, 'GET', 'requests')
    const outside = Object.keys(counts.byPath).filter((k) => !/^[A-Z]+ \/app(\/|$)/.test(k))
    assert.deepEqual(outside, [], 'no request outside {shift}')
    assert.deepEqual((await emu.export())[ns].other, { secret: 1 })
    // And the emulator really denies the root: the old connection check would have failed here.
    const res = await fetch(`${emu.url}/.json?ns=${ns}&shallow=true`)
    assert.equal(res.status, 401)
  } finally {
    await h.lever(emu, 'PUT', 'allow', { ns, paths: [] })
  }
})

test("getInstance with locking on and the lock path denied rejects with the guide's exact text", async () => {
  const ns = h.uniqueNs('lockdeny')
  await h.lever(emu, 'PUT', 'deny', { ns, paths: ['migrations/_lock'] })
  try {
    const config = new FirebaseConfig({ databaseUrl: emu.databaseUrl(ns), locking: { enabled: true }, folder: h.project(undefined, 'msr-auth-') + '/migrations' })
    await assert.rejects(FirebaseRunner.getInstance({ config }), (e) => {
      assert.equal(e.message, 'Failed to initialize lock storage at migrations/_lock: PERMISSION_DENIED')
      assert.equal(e.code, 'PERMISSION_DENIED')
      return true
    })
    // Without locking the same runner starts: nothing else it reads is denied.
    config.locking = { enabled: false }
    const runner = await FirebaseRunner.getInstance({ config })
    assert.ok(runner)
  } finally {
    await h.lever(emu, 'PUT', 'deny', { ns, paths: [] })
  }
})

test("the least-privilege rules of docs/locking.md, evaluated: the migrator's auth migrates under the lock, any other auth is refused at the lock path", async () => {
  const dir = h.project(undefined, 'msr-auth-')
  const rulesFile = path.join(dir, 'database.rules.json')
  fs.writeFileSync(
    rulesFile,
    `{
  // docs/locking.md's rules: the migrator, and only under {shift}; plus the index the example
  // migration's orderByChild('post') query needs (the service refuses it without one).
  "rules": { "app": { ".read": "auth.uid === 'migrator'", ".write": "auth.uid === 'migrator'",
                      "comments": { ".indexOn": ["post"] } } }
}`,
  )
  const ns = h.uniqueNs('rules')
  const ruled = await h.startEmulator({ rules: { [ns]: rulesFile } })
  try {
    const config = (uid) =>
      new FirebaseConfig({
        databaseUrl: ruled.databaseUrl(ns),
        shift: 'app',
        databaseAuthVariableOverride: { uid },
        locking: { enabled: true },
        folder: path.join(dir, 'migrations'),
        backup: { folder: path.join(dir, 'backups') },
        logLevel: 'error',
      })
    const runner = await FirebaseRunner.getInstance({ config: config('migrator') })
    const result = await runner.migrate()
    assert.equal(result.success, true)
    assert.equal(Object.keys((await ruled.export())[ns].app.schema_version).length, 4)
    await assert.rejects(FirebaseRunner.getInstance({ config: config('intruder') }), (e) => {
      assert.equal(e.message, 'Failed to initialize lock storage at app/migrations/_lock: PERMISSION_DENIED')
      return true
    })
    // The rules are this namespace's: another one of the same emulator is open.
    const other = await FirebaseRunner.getInstance({ config: { ...config('intruder').toJSON(), databaseUrl: ruled.databaseUrl(h.uniqueNs('open')) } })
    assert.ok(other)
  } finally {
    await ruled.stop()
  }
})

test('databaseAuthVariableOverride reaches the database as auth_variable_override', async () => {
  const ns = h.uniqueNs('override')
  const dir = h.project(undefined, 'msr-auth-')
  const config = new FirebaseConfig({
    databaseUrl: emu.databaseUrl(ns),
    databaseAuthVariableOverride: { uid: 'migrator' },
    folder: path.join(dir, 'migrations'),
    backup: { folder: path.join(dir, 'backups') },
    logLevel: 'error',
  })
  const runner = await FirebaseRunner.getInstance({ config })
  await runner.migrate()
  const seen = await h.lever(emu, 'GET', 'auth')
  assert.deepEqual(seen.lastOverride, { uid: 'migrator' })
  await assert.rejects(FirebaseRunner.getInstance({ config: { ...config.toJSON(), databaseAuthVariableOverride: 'migrator' } }), /databaseAuthVariableOverride/)
})
