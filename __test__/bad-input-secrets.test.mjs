// Bad input, URLs and credentials family: a canary private key, token and URL password, given
// where they do not belong (a credentials object instead of its path, a token in the database
// URL, a password in it, a broken key file, a script whose error quotes them), never appear in
// any output of the failing command: text, --format json, --log-format json, and the library's
// err.message and logger lines. Each failing command leaves the database as it was.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')
const { FirebaseRunner } = require('..')

const shared = h.emulatorPerFile()

const KEY = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANcanaryKEYbodyBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7canaryKEYmore\n-----END PRIVATE KEY-----\n'
const TOKEN = 'canaryTOKEN9f8e7d'
const PASS = 'canaryPASS5c4b'
const CANARIES = ['canaryKEY', 'canaryTOKEN', 'canaryPASS', 'canaryKID']

function assertNoCanary(what, text) {
  for (const c of CANARIES) assert.ok(!text.includes(c), `${what}: ${c} leaked:\n${text}`)
}

const serviceAccount = (tokenUri) => ({
  type: 'service_account',
  project_id: 'canary-project',
  private_key_id: 'canaryKID0123',
  private_key: KEY,
  client_email: 'migrator@canary-project.iam.gserviceaccount.com',
  token_uri: tokenUri,
})

const leakyScript =
  'module.exports = { async up() { throw new Error(' +
  JSON.stringify(`cannot reach https://admin:${PASS}@db.example.com/users.json?auth=${TOKEN} (Authorization: Bearer ya29.${TOKEN}) with key ${KEY}`) +
  ') } }\n'

/** The bad inputs, each as the CLI gets it (`args`, `config`, extra files) and as the library does. */
function inputs(p) {
  return [
    {
      what: 'credentials object in the config file',
      config: "module.exports = { applicationCredentials: require('./sa.json') }",
      files: { 'sa.json': JSON.stringify(serviceAccount('http://127.0.0.1:1/token')) },
      code: 2,
      lib: { databaseUrl: p.url, applicationCredentials: serviceAccount('http://127.0.0.1:1/token') },
    },
    {
      what: 'token in the database URL',
      args: ['--database-url', `https://canary-db.firebaseio.com/?auth=${TOKEN}`],
      code: 2,
      lib: { databaseUrl: `https://canary-db.firebaseio.com/?auth=${TOKEN}` },
    },
    {
      what: 'password in the database URL',
      args: ['--database-url', `https://admin:${PASS}@canary-db.firebaseio.com`],
      code: 2,
      lib: { databaseUrl: `https://admin:${PASS}@canary-db.firebaseio.com` },
    },
    { what: 'access_token on an emulator URL', args: ['--database-url', `${p.url}&access_token=${TOKEN}`], code: 2, lib: { databaseUrl: `${p.url}&access_token=${TOKEN}` } },
    {
      what: 'a key file whose key is broken',
      args: ['--database-url', 'https://canary-db.firebaseio.com', '--credentials', 'broken.json'],
      files: { 'broken.json': JSON.stringify({ ...serviceAccount('http://127.0.0.1:1/token'), private_key: KEY.replace('MIIE', '!!!!') }) },
      code: 7,
      lib: (dir) => ({ databaseUrl: 'https://canary-db.firebaseio.com', applicationCredentials: path.join(dir, 'broken.json') }),
    },
    { what: 'a script whose error quotes them', migration: leakyScript, code: 3 },
  ]
}

test('a canary key, token and URL password never appear in the CLI output, whatever the format', async () => {
  const seed = await h.seeded(shared.emu, { prefix: 'sec' })
  for (const c of inputs(seed)) {
    for (const format of [[], ['--format', 'json'], ['--log-format', 'json']]) {
      const p = await h.seeded(shared.emu, { prefix: 'sec', config: c.config, files: c.migration ? { 'V202501010003_leak.js': c.migration } : {} })
      for (const [name, body] of Object.entries(c.files || {})) fs.writeFileSync(path.join(p.dir, name), body)
      // The script's run is allowed to change what it wrote before failing; the rollback restores it.
      const out = await h.refused(shared.emu, p.ns, { what: `${c.what} ${format.join(' ')}`, code: c.code }, () =>
        h.cli(['migrate', ...format, ...(c.args || [])], { cwd: p.dir, env: { FIREBASE_DATABASE_URL: p.url } }),
      )
      assertNoCanary(`${c.what} ${format.join(' ')}`, out.stdout + out.stderr)
      assert.match(out.stdout + out.stderr, /redacted|not its content|must not contain credentials|not a PEM private key|unexpected query parameter/, c.what)
      if (format[0] === '--format') assert.ok(JSON.parse(out.stdout).error, 'still one JSON document')
      if (format[0] === '--log-format') for (const l of out.stderr.split('\n').filter(Boolean)) JSON.parse(l)
    }
  }
})

test("a canary key, token and URL password never appear in the library's errors or log lines", async () => {
  const seed = await h.seeded(shared.emu, { prefix: 'seclib' })
  for (const c of inputs(seed)) {
    for (const logFormat of ['text', 'json']) {
      const p = await h.seeded(shared.emu, { prefix: 'seclib', files: c.migration ? { 'V202501010003_leak.js': c.migration } : {} })
      for (const [name, body] of Object.entries(c.files || {})) fs.writeFileSync(path.join(p.dir, name), body)
      const lines = []
      const base = { databaseUrl: p.url, folder: path.join(p.dir, 'migrations'), logFormat }
      const settings = { ...base, ...(typeof c.lib === 'function' ? c.lib(p.dir) : c.lib) }
      const err = await h.refused(
        shared.emu,
        p.ns,
        { what: `${c.what} (library, ${logFormat})`, code: c.code === 2 ? 'CONFIG_INVALID' : c.code === 7 ? 'AUTH_FAILED' : 'SCRIPT_FAILED' },
        async () => {
          const runner = await FirebaseRunner.getInstance({ config: settings, logger: (level, message) => lines.push(message) })
          return runner.migrate()
        },
      )
      assertNoCanary(`${c.what} (library, ${logFormat})`, `${err.message}\n${err.stack}\n${lines.join('\n')}`)
    }
  }
})
