// The msr-firebase CLI as a new user meets it: help/version, commands with --format json, the
// config loader and its precedence, bad inputs (clear message, exit code, database unchanged),
// create, SIGTERM mid-run, backups, firebase:* commands and the emulator command.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')

let emu
before(async () => {
  emu = await h.startEmulator({ host: '127.0.0.1', port: 0 })
})
after(async () => {
  await emu.stop()
})

/** A project dir (examples copied unless `files` given) and a namespace. */
function project(files) {
  return { dir: h.project(files, 'msr-cli-'), ns: h.uniqueNs('cli') }
}

const emuEnv = () => ({ FIREBASE_DATABASE_EMULATOR_HOST: emu.hostPort })
const urlFlag = (ns) => ['--database-url', emu.databaseUrl(ns)]

/** Run the CLI in `dir` against the emulator. */
function run(dir, args, env = {}) {
  return h.cli(args, { cwd: dir, env: { ...emuEnv(), ...env } })
}

async function nsData(ns) {
  return (await emu.export())[ns] ?? null
}

function json(out) {
  try {
    return JSON.parse(out.stdout)
  } catch (e) {
    throw new Error(`stdout is not JSON (${e.message}):\n${out.stdout}\nstderr:\n${out.stderr}`)
  }
}

const okScript = (node) => `module.exports = { async up(db, info, handler) { await db.database.ref(handler.cfg.buildPath('${node}')).set(true); return '${node}' } }\n`

test('--help, --version, unknown command, missing arguments', async () => {
  const help = await h.cli(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /Usage: msr-firebase/)
  assert.match(help.stdout, /Firebase Realtime Database Migration Runner/)
  for (const c of [
    'migrate',
    'down',
    'list',
    'validate',
    'backup',
    'lock:status',
    'lock:release',
    'firebase:info',
    'firebase:test-connection',
    'firebase:nodes',
    'firebase:backup-nodes',
    'create',
    'emulator',
  ]) {
    assert.ok(help.stdout.includes(c), `help lists ${c}`)
  }
  const version = await h.cli(['--version'])
  assert.equal(version.code, 0)
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/)
  assert.equal(version.stdout.trim(), require('../package.json').version)
  const migrateHelp = await h.cli(['migrate', '--help'])
  assert.match(migrateHelp.stdout, /Run pending migrations/)
  assert.match((await h.cli(['firebase:backup-nodes', '--help'])).stdout, /<nodes>/)

  const unknown = await h.cli(['bogus'])
  assert.notEqual(unknown.code, 0)
  assert.match(unknown.stderr, /bogus/)
  const down = await h.cli(['down'])
  assert.equal(down.code, 1)
  assert.match(down.stderr, /targetVersion/)
  const backup = await h.cli(['backup'])
  assert.notEqual(backup.code, 0)
  assert.match(backup.stderr + backup.stdout, /create/)
})

test('migrate / list / validate / down with --format json', async () => {
  const { dir, ns } = project()
  let out = await run(dir, ['validate', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  let v = json(out)
  assert.equal(v.pending.length, 4)
  assert.equal(v.errorCount, 0)

  out = await run(dir, ['migrate', '--dry-run', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stderr + out.stdout, /Would execute: 4 migration/)
  assert.equal(await nsData(ns), null, 'dry run wrote nothing')
  assert.ok(!fs.existsSync(path.join(dir, 'backups')), 'dry run took no backup')

  out = await run(dir, ['migrate', '202501010002', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  let r = json(out)
  assert.equal(r.success, true)
  assert.deepEqual(
    r.executed.map((e) => e.timestamp),
    [202501010001, 202501010002],
  )

  out = await run(dir, ['list', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  const l = json(out)
  assert.equal(l.executed, 2)
  assert.equal(l.pending, 2)
  assert.deepEqual(
    l.migrations.map((m) => m.status),
    ['executed', 'executed', 'pending', 'pending'],
  )

  out = await run(dir, ['up', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.equal(json(out).executed.length, 2)

  out = await run(dir, ['down', '202501010001', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  r = json(out)
  assert.deepEqual(
    r.executed.map((e) => e.timestamp),
    [202501010004, 202501010003, 202501010002],
  )
  const data = await nsData(ns)
  assert.deepEqual(Object.keys(data).sort(), ['schema_version', 'users'])
  assert.deepEqual(Object.keys(data.schema_version), ['v202501010001'])

  // table output
  out = await run(dir, ['list', ...urlFlag(ns)])
  assert.equal(out.code, 0)
  assert.match(out.stdout, /V202501010001_create_users\.js\s+executed/)
  assert.match(out.stdout, /1 executed, 3 pending/)
})

test('config files: object, function, promise, .mjs, .json, --config-file, MSR_CONFIG_FILE', async () => {
  const variants = [
    ['msr.config.js', (t) => `module.exports = { tableName: '${t}', shift: 'cfg' }`],
    ['msr.config.js', (t) => `module.exports = () => ({ tableName: '${t}', shift: 'cfg' })`],
    ['msr.config.js', (t) => `module.exports = Promise.resolve({ tableName: '${t}', shift: 'cfg' })`],
    ['msr.config.js', (t) => `module.exports = async () => ({ tableName: '${t}', shift: 'cfg' })`],
    ['msr.config.cjs', (t) => `module.exports = { tableName: '${t}', shift: 'cfg' }`],
    ['msr.config.mjs', (t) => `export default { tableName: '${t}', shift: 'cfg' }`],
    ['msr.config.json', (t) => JSON.stringify({ tableName: t, shift: 'cfg' })],
  ]
  for (const [i, [file, src]] of variants.entries()) {
    const { dir } = project(null)
    fs.writeFileSync(path.join(dir, file), src(`t${i}`))
    const out = await run(dir, ['firebase:info', '--format', 'json', '--database-url', emu.databaseUrl('x')])
    assert.equal(out.code, 0, `${file} #${i}: ${out.stderr}`)
    const info = json(out)
    assert.equal(info.tableName, `t${i}`, `${file} #${i}`)
    assert.equal(info.shift, 'cfg')
  }
  const { dir } = project(null)
  fs.mkdirSync(path.join(dir, 'conf'))
  fs.writeFileSync(path.join(dir, 'conf', 'a.js'), "module.exports = { tableName: 'from_flag_file' }")
  fs.writeFileSync(path.join(dir, 'conf', 'b.json'), '{"tableName": "from_env_file"}')
  fs.writeFileSync(path.join(dir, 'msr.config.js'), "module.exports = { tableName: 'from_default_file' }")
  const info = async (args, env) => json(await run(dir, ['firebase:info', '--format', 'json', ...args], env)).tableName
  assert.equal(await info([]), 'from_default_file')
  assert.equal(await info([], { MSR_CONFIG_FILE: 'conf/b.json' }), 'from_env_file')
  assert.equal(await info(['--config-file', 'conf/a.js'], { MSR_CONFIG_FILE: 'conf/b.json' }), 'from_flag_file')
  const missing = await run(dir, ['list', '--config-file', 'conf/nope.js'])
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /conf\/nope\.js/)
})

test('precedence: defaults < config file < MSR_* env < flags (where the records land)', async () => {
  const { dir, ns } = project({ 'V202501010001_a.js': okScript('a') })
  fs.writeFileSync(path.join(dir, 'msr.config.js'), `module.exports = { databaseUrl: '${emu.databaseUrl(ns)}', tableName: 'from_file', shift: 'p' }`)
  let out = await run(dir, ['migrate'])
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(Object.keys((await nsData(ns)).p).sort(), ['a', 'from_file'])
  out = await run(dir, ['migrate'], { MSR_TABLE_NAME: 'from_env' })
  assert.equal(out.code, 0, out.stderr)
  assert.ok((await nsData(ns)).p.from_env.v202501010001, 'env beats file')
  out = await run(dir, ['migrate', '--table-name', 'from_flag'], { MSR_TABLE_NAME: 'from_env' })
  assert.equal(out.code, 0, out.stderr)
  const p = (await nsData(ns)).p
  assert.ok(p.from_flag.v202501010001, 'flag beats env')
  assert.deepEqual(Object.keys(p).sort(), ['a', 'from_env', 'from_file', 'from_flag'])
  // without a file: defaults (root, schema_version)
  fs.rmSync(path.join(dir, 'msr.config.js'))
  const ns2 = h.uniqueNs('cli-def')
  out = await run(dir, ['migrate', ...urlFlag(ns2)])
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(Object.keys(await nsData(ns2)).sort(), ['a', 'schema_version'])
})

test('bad inputs: clear message, right exit code, database unchanged', async () => {
  const seed = { keep: { me: 1 } }
  const cases = [
    {
      what: 'config file that throws',
      files: { 'V202501010001_a.js': okScript('a') },
      config: "module.exports = () => { throw new Error('kaput in config') }",
      code: 2,
      re: [/msr\.config\.js/, /kaput in config/],
    },
    { what: 'no migrations folder', files: null, code: 2, re: [/Migration scripts folder not found/, /--folder/] },
    {
      what: 'script without up',
      files: { 'V202501010001_a.js': okScript('a'), 'V202501010002_noup.js': 'module.exports = { async down() {} }\n' },
      code: 2,
      re: [/V202501010002_noup\.js/, /up\(\)/],
    },
    {
      what: 'syntax error',
      files: { 'V202501010001_a.js': okScript('a'), 'V202501010002_bad.js': 'module.exports = {\n  async up() {\n    const x = ;\n  },\n}\n' },
      code: 2,
      re: [/V202501010002_bad\.js:3:15/, /SyntaxError/, /Unexpected token/, /failed to load/],
    },
    {
      what: 'syntax error in an ES module script',
      files: { 'V202501010001_a.js': okScript('a'), 'V202501010002_bad.mjs': 'export default {\n  async up() { let y = 1 2 },\n}\n' },
      code: 2,
      re: [/V202501010002_bad\.mjs:2:26/, /SyntaxError/],
    },
    // Strict configuration: a typo never turns the lock off; every layer is checked.
    {
      what: 'misspelt locking in the config file',
      files: { 'V202501010001_a.js': okScript('a') },
      config: 'module.exports = { lockng: { enabled: true } }',
      code: 2,
      re: [/msr\.config\.js/, /unknown setting `lockng`/, /did you mean `locking`\?/],
    },
    {
      what: 'misspelt locking.enabled in the config file',
      files: { 'V202501010001_a.js': okScript('a') },
      config: 'module.exports = { locking: { enabeld: true } }',
      code: 2,
      re: [/unknown setting `locking\.enabeld`/, /did you mean `locking\.enabled`\?/],
    },
    {
      what: 'misspelt key in MSR_LOCKING',
      files: { 'V202501010001_a.js': okScript('a') },
      env: { MSR_LOCKING: '{"enabeld": true}' },
      code: 2,
      re: [/MSR_LOCKING/, /did you mean `locking\.enabled`\?/],
    },
    {
      what: 'tableName sharing the lock node',
      files: { 'V202501010001_a.js': okScript('a') },
      env: { MSR_TABLE_NAME: 'migrations' },
      code: 2,
      re: [/tableName 'migrations' collides with the migration lock/, /schema_version/],
    },
    {
      what: 'a number too large for its field',
      files: { 'V202501010001_a.js': okScript('a') },
      config: 'module.exports = { locking: { enabled: true, timeout: 1e30 } }',
      code: 2,
      re: [/locking\.timeout is too large/, /at most 2147483647 ms/],
    },
    {
      what: 'a config module exporting null',
      files: { 'V202501010001_a.js': okScript('a') },
      config: 'module.exports = null',
      code: 2,
      re: [/msr\.config\.js exports null/, /export an object of settings/],
    },
    {
      what: 'a config function returning nothing',
      files: { 'V202501010001_a.js': okScript('a') },
      config: 'module.exports = () => {}',
      code: 2,
      re: [/msr\.config\.js exports null/],
    },
    {
      what: 'two scripts with one version (duplicateTimestampMode error)',
      files: { 'V202501010001_a.js': okScript('a'), 'V202501010001_b.js': okScript('b') },
      env: { MSR_DUPLICATE_TIMESTAMP_MODE: 'error' },
      code: 2,
      re: [/Duplicate migration timestamp detected: 202501010001/, /V202501010001_a\.js/, /V202501010001_b\.js/],
    },
    { what: 'bad target version', files: { 'V202501010001_a.js': okScript('a') }, args: ['migrate', '2025'], code: 2, re: [/Invalid target version "2025"/, /12-digit/] },
    { what: 'bad down target', files: { 'V202501010001_a.js': okScript('a') }, args: ['down', 'latest'], code: 2, re: [/Invalid target version "latest"/] },
  ]
  for (const c of cases) {
    const { dir, ns } = project(c.files)
    await h.rawPut(emu, ns, '', seed)
    if (c.config) fs.writeFileSync(path.join(dir, 'msr.config.js'), c.config)
    const before = await nsData(ns)
    const out = await run(dir, [...(c.args || ['migrate']), ...urlFlag(ns)], c.env)
    assert.equal(out.code, c.code, `${c.what}: exit ${out.code}\n${out.stderr}`)
    for (const re of c.re) assert.match(out.stderr, re, c.what)
    assert.deepEqual(await nsData(ns), before, `${c.what}: database unchanged`)
    assert.ok(!fs.existsSync(path.join(dir, 'backups')) || fs.readdirSync(path.join(dir, 'backups')).length === 0, `${c.what}: no backup`)
  }

  // a misnamed file is skipped with a warning naming it
  const { dir, ns } = project({ 'V2025_oops.js': okScript('oops'), 'V202501010001_a.js': okScript('a') })
  const out = await run(dir, ['migrate', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stderr, /V2025_oops\.js/)
  assert.match(out.stderr, /does not match/)
  assert.equal((await nsData(ns)).oops, undefined)
})

test('unreachable database and missing credentials: exit 7, message names the problem', async () => {
  const { dir } = project({ 'V202501010001_a.js': okScript('a') })
  const noEmu = { FIREBASE_DATABASE_EMULATOR_HOST: '' }
  const t0 = Date.now()
  let out = await run(dir, ['migrate', '--database-url', 'http://127.0.0.1:1?ns=x'], noEmu)
  assert.equal(out.code, 7, out.stderr)
  assert.match(out.stderr, /127\.0\.0\.1:1/)
  assert.match(out.stderr, /Could not reach the database/)
  // While it retries (riding out a short outage), it says so on stderr.
  assert.match(out.stderr, /⚠ Could not reach the database at 127\.0\.0\.1:1 \(.*refused.*\); retry \d/)
  assert.ok(Date.now() - t0 < 20000)

  out = await run(dir, ['migrate', '--database-url', 'https://x.firebaseio.com', '--credentials', './nope.json'], noEmu)
  assert.equal(out.code, 7, out.stderr)
  assert.match(out.stderr, /nope\.json/)
  assert.match(out.stderr, /not found/)
  // Nothing in the credentials chain (no gcloud file, a metadata host that refuses).
  const nothing = { ...noEmu, GOOGLE_APPLICATION_CREDENTIALS: '', CLOUDSDK_CONFIG: path.join(dir, 'no-gcloud'), GCE_METADATA_HOST: '127.0.0.1:1' }
  out = await run(dir, ['migrate', '--database-url', 'https://x.firebaseio.com'], nothing)
  assert.equal(out.code, 7, out.stderr)
  assert.match(out.stderr, /No Google credentials found/)
  out = await run(dir, ['migrate', '--database-url', 'not a url'], noEmu)
  assert.equal(out.code, 2, out.stderr)
  assert.match(out.stderr, /databaseUrl|database URL/i)
})

test('create add_roles writes a timestamped template that then migrates', async () => {
  const { dir, ns } = project(null)
  const out = await run(dir, ['create', 'add_roles'])
  assert.equal(out.code, 0, out.stderr)
  const files = fs.readdirSync(path.join(dir, 'migrations'))
  assert.equal(files.length, 1)
  assert.match(files[0], /^V\d{12}_add_roles\.js$/)
  assert.ok(out.stdout.includes(files[0]))
  const m = await run(dir, ['migrate', '--format', 'json', ...urlFlag(ns)])
  assert.equal(m.code, 0, m.stderr)
  assert.equal(json(m).executed[0].name, files[0])
  const mj = await run(dir, ['create', 'second', '--ext', 'mjs', '--format', 'json'])
  assert.match(json(mj).path, /_second\.mjs$/)
})

test('SIGTERM during migrate: the running script finishes and is recorded, nothing else starts, lock released', async () => {
  const { dir, ns } = project({
    'V202501010001_slow.js': `module.exports = { async up(db, info, handler) { process.stderr.write('SLOW-STARTED\\n'); await new Promise((r) => setTimeout(r, 1500)); await db.database.ref('slow').set(true); return 'slow' } }\n`,
    'V202501010002_next.js': okScript('next'),
  })
  fs.writeFileSync(path.join(dir, 'msr.config.js'), `module.exports = { databaseUrl: '${emu.databaseUrl(ns)}', locking: { enabled: true, timeout: 10000 } }`)
  const out = await h.cli(['migrate'], {
    cwd: dir,
    env: emuEnv(),
    onSpawn: (child) => {
      let sent = false
      child.stderr.on('data', (d) => {
        if (!sent && String(d).includes('SLOW-STARTED')) {
          sent = true
          setTimeout(() => child.kill('SIGTERM'), 200)
        }
      })
    },
  })
  assert.notEqual(out.code, 0, out.stderr)
  assert.match(out.stderr, /interrupted/i)
  const data = await nsData(ns)
  assert.equal(data.slow, true)
  assert.equal(data.next, undefined, 'no further script started')
  assert.deepEqual(Object.keys(data.schema_version), ['v202501010001'])
  assert.equal(data.migrations?._lock?.executorId, undefined, 'lock released')
  const status = await run(dir, ['lock:status', '--format', 'json'])
  assert.equal(status.code, 0, status.stderr)
  assert.equal(json(status).locked, false)
  // and the next run continues
  const again = await run(dir, ['migrate', '--format', 'json'])
  assert.equal(again.code, 0, again.stderr)
  assert.deepEqual(
    json(again).executed.map((e) => e.timestamp),
    [202501010002],
  )
})

test('backup create / list / restore', async () => {
  const { dir, ns } = project()
  assert.equal((await run(dir, ['migrate', ...urlFlag(ns)])).code, 0)
  let out = await run(dir, ['backup', 'create', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  const file = json(out).path
  assert.ok(fs.existsSync(file))
  out = await run(dir, ['backup', 'list', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.ok(json(out).some((b) => b.path === file))
  const before = await nsData(ns)
  await h.rawPut(emu, ns, 'users/user1/name', 'Mallory')
  await h.rawPut(emu, ns, 'intruder', { x: 1 })
  out = await run(dir, ['backup', 'restore', path.relative(dir, file), ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(await nsData(ns), before)
  out = await run(dir, ['backup', 'restore', 'backups/nope.json', ...urlFlag(ns)])
  assert.equal(out.code, 6, out.stderr)
  assert.match(out.stderr, /nope\.json/)
})

test('firebase:nodes and firebase:backup-nodes', async () => {
  const { dir, ns } = project()
  assert.equal((await run(dir, ['migrate', '--shift', 'app', ...urlFlag(ns)])).code, 0)
  let out = await run(dir, ['firebase:nodes', '--shift', 'app', '--format', 'json', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(json(out).nodes.sort(), ['comments', 'posts', 'schema_version', 'settings', 'users'])
  out = await run(dir, ['firebase:nodes', '--shift', 'app', ...urlFlag(ns)])
  assert.match(out.stdout, /Total: 5 nodes/)
  out = await run(dir, ['firebase:backup-nodes', 'users', 'missing', '--shift', 'app', ...urlFlag(ns)])
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stdout, /users: \d+ bytes/)
  assert.match(out.stdout, /missing: \(not found\)/)
  const dump = JSON.parse(out.stdout.slice(out.stdout.indexOf('{')))
  assert.equal(dump.users.user1.name, 'Alice')
  assert.equal(dump.missing, null)
})

test('emulator --port 0: prints URL and env line, applies firebase.json rules, stops on SIGINT, --export-on-exit writes the data and the rules', async () => {
  const dir = h.tmpDir('msr-emu-')
  const exportFile = path.join(dir, 'out.json')
  const rules = '{\n  // anyone may write hello; nobody reads secret\n  "rules": {"hello": {".write": true}, "secret": {".read": false}}\n}\n'
  fs.writeFileSync(path.join(dir, 'database.rules.json'), rules)
  fs.writeFileSync(path.join(dir, 'firebase.json'), JSON.stringify({ database: { rules: 'database.rules.json' } }))
  const child = spawn(process.execPath, [h.BIN, 'emulator', '--port', '0', '--export-on-exit', exportFile], { cwd: dir, env: { ...process.env, NO_COLOR: '1' } })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  const hostPort = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no emulator line: ${stdout} ${stderr}`)), 10000)
    child.stdout.on('data', (d) => {
      stdout += d
      const m = stdout.match(/export FIREBASE_DATABASE_EMULATOR_HOST=(127\.0\.0\.1:\d+)/)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
  })
  try {
    assert.match(stdout, new RegExp(`http://${hostPort.replace('.', '\\.')}`))
    assert.match(stdout, /Security Rules: .*database\.rules\.json \(every namespace\)/)
    const res = await fetch(`http://${hostPort}/hello.json?ns=emu`, { method: 'PUT', body: '{"a":1}' })
    assert.equal(res.status, 200)
    const denied = await fetch(`http://${hostPort}/secret.json?ns=emu`)
    assert.deepEqual([denied.status, await denied.json()], [401, { error: 'Permission denied' }])
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  }
  child.kill('SIGINT')
  const { code } = await exited
  assert.equal(code, 0, stderr)
  assert.match(stdout, /Emulator stopped/)
  const exported = JSON.parse(fs.readFileSync(exportFile, 'utf8'))
  assert.deepEqual(exported.emu, { hello: { a: 1 } })
  // A copy of the data: readable by its owner only.
  if (process.platform !== 'win32') assert.equal((fs.statSync(exportFile).mode & 0o777).toString(8), '600')
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'out.rules.json'), 'utf8')), { '*': rules })
  if (process.platform !== 'win32') assert.equal((fs.statSync(path.join(dir, 'out.rules.json')).mode & 0o777).toString(8), '600')
})

test('emulator --rules with a document that does not parse: exit 2 naming file, line and column', async () => {
  const dir = h.tmpDir('msr-emu-')
  fs.writeFileSync(path.join(dir, 'bad.json'), '{"rules": {\n  ".read": "auth.uid === $uid"\n}}\n')
  const out = await h.cli(['emulator', '--port', '0', '--rules', 'bad.json'], { cwd: dir })
  assert.equal(out.code, 2, out.stdout + out.stderr)
  assert.match(out.stderr, /Cannot start the emulator: .*bad\.json:2:26: Unknown variable '\$uid'\./)
})
