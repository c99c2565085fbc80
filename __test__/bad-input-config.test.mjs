// Bad input, config family: config files and the values in them. Each case is refused before the
// first request with exit 2 (a signal: 3), a message naming the input, what is wrong and the fix,
// and the database exactly as it was (one migration executed, one pending: a bad input that got
// through would run it). Also: which config file is read (msr.config.ts through the TypeScript
// loaders), which are ignored, and config modules that hang or end the process.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')

const shared = h.emulatorPerFile()

const run = (p, args = ['migrate'], env = {}) => h.cliIn(p, args, env)

test('config values that would widen the run, contradict each other or cannot work are refused', async () => {
  const cases = [
    { what: 'empty folder', config: "module.exports = { folder: '' }", re: [/folder is empty/, /working directory/, /'\.\/migrations'/] },
    { what: 'empty shift', config: "module.exports = { shift: '' }", re: [/shift "" would put the migrations at the database root/, /Leave shift unset/] },
    { what: 'shift of the root', config: "module.exports = { shift: '/' }", re: [/shift "\/"/] },
    { what: 'empty databaseUrl', config: "module.exports = { databaseUrl: '' }", re: [/databaseUrl is empty/, /FIREBASE_DATABASE_URL/] },
    { what: 'empty backup folder', config: "module.exports = { backup: { folder: '' } }", re: [/backup\.folder is empty/] },
    { what: 'empty executor id', config: "module.exports = { locking: { enabled: true, executorId: '' } }", re: [/locking\.executorId is empty/] },
    {
      what: 'manual backups with the backup rollback',
      config: "module.exports = { backupMode: 'manual', rollbackStrategy: 'backup' }",
      re: [/backupMode 'manual' takes no backup/, /rollbackStrategy to 'down'/],
    },
    { what: 'manual backups with the default rollback', config: "module.exports = { backupMode: 'manual' }", re: [/the default rollbackStrategy is 'backup'/] },
    { what: 'create_only with both', config: "module.exports = { backupMode: 'create_only', rollbackStrategy: 'both' }", re: [/never restores one/] },
    { what: 'a file pattern without a version group', config: 'module.exports = { filePatterns: [/^V\\d{12}_.*\\.js$/] }', re: [/filePatterns\[0\]/, /no capturing group/] },
    { what: 'a misspelt lock setting', config: 'module.exports = { lockng: { enabled: true } }', re: [/did you mean `locking`\?/] },
    { what: 'a Map of settings', config: "module.exports = new Map([['locking', { enabled: true }]])", re: [/got a Map/, /Object\.fromEntries/] },
    {
      what: 'a class instance',
      config: 'class Settings { get locking() { return { enabled: true } } }\nmodule.exports = new Settings()',
      re: [/got an instance of Settings/, /plain object/],
    },
    { what: 'an array', config: 'module.exports = [{ locking: { enabled: true } }]', re: [/got an array/] },
    {
      what: 'process.exit() while loading',
      config: "process.exit(0)\nmodule.exports = { folder: './migrations' }",
      re: [/called process\.exit\(0\)/, /config module must export its settings/],
    },
    { what: 'process.exit() in the exported function', config: 'module.exports = async () => { process.exit(0) }', re: [/called process\.exit\(0\)/] },
  ]
  for (const c of cases) {
    const p = await h.seeded(shared.emu, { config: c.config, prefix: 'cfg' })
    await h.refused(shared.emu, p.ns, { ...c, code: 2, re: [/msr\.config\.js/, ...c.re] }, () => run(p))
  }
})

test('a config file with a name or extension msr-firebase does not read is refused, never skipped', async () => {
  for (const name of ['msr.conf.js', 'msr-config.json', 'msr.config.yaml']) {
    const p = await h.seeded(shared.emu, { prefix: 'cfgname' })
    fs.writeFileSync(path.join(p.dir, name), name.endsWith('.js') ? 'module.exports = { locking: { enabled: true } }' : '{}')
    await h.refused(shared.emu, p.ns, { what: name, code: 2, re: [new RegExp(name.replace(/\./g, '\\.')), /msr\.config\.js/, /--config-file/] }, () => run(p))
  }
  // Named explicitly, a config file must be a JS or TypeScript module or JSON.
  const p = await h.seeded(shared.emu, { prefix: 'cfgname' })
  fs.writeFileSync(path.join(p.dir, 'settings.yaml'), 'folder: ./elsewhere\n')
  await h.refused(shared.emu, p.ns, { what: 'yaml config file', code: 2, re: [/settings\.yaml/, /JS or TypeScript module or JSON/] }, () =>
    run(p, ['migrate', '--config-file', 'settings.yaml']),
  )
})

test('msr.config.ts is read through the project TypeScript loader; the file used is logged at debug, the ones ignored at warn', async () => {
  const p = await h.seeded(shared.emu, { prefix: 'cfgts' })
  // The project's loader (tsx's register API), reduced to what this config needs: type
  // annotations stripped. It is what a `.ts` migration would load through too.
  const tsx = path.join(p.dir, 'node_modules', 'tsx', 'cjs')
  fs.mkdirSync(tsx, { recursive: true })
  fs.writeFileSync(
    path.join(tsx, 'api.js'),
    "const fs = require('node:fs')\nexports.register = () => { require.extensions['.ts'] = (m, f) => m._compile(fs.readFileSync(f, 'utf8').replace(/: string/g, ''), f) }\n",
  )
  fs.writeFileSync(path.join(p.dir, 'msr.config.ts'), "const table: string = 'ts_history'\nmodule.exports = { tableName: table }\n")
  fs.writeFileSync(path.join(p.dir, 'msr.conf.js'), 'module.exports = {}\n')
  const out = await run(p, ['list', '--format', 'json', '--log-level', 'debug'])
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stderr, /Using config file .*msr\.config\.ts/)
  assert.match(out.stderr, /Ignoring .*msr\.conf\.js: not a config file name msr-firebase reads; .*msr\.config\.ts is read instead/)
  // The ts config's table: nothing recorded there yet, so both migrations are pending.
  assert.equal(JSON.parse(out.stdout).pending, 2)
  // At the default level only the warning shows.
  const plain = await run(p, ['list'])
  assert.doesNotMatch(plain.stderr, /Using config file/)
  assert.match(plain.stderr, /Ignoring .*msr\.conf\.js/)
})

test('a config module that never settles: refused at its deadline, and stopped by the first SIGTERM', async () => {
  const config = "process.stderr.write('config loading\\n')\nmodule.exports = new Promise(() => {})\n"
  let p = await h.seeded(shared.emu, { config, prefix: 'cfghang' })
  const started = Date.now()
  await h.refused(shared.emu, p.ns, { what: 'deadline', code: 2, re: [/did not finish loading within 0\.5 s/, /--config-timeout/] }, () =>
    run(p, ['migrate', '--config-timeout', '500']),
  )
  assert.ok(Date.now() - started < 10000, 'it ended at its deadline')

  // A module that blocks its thread: the deadline still ends the command, and the process.
  p = await h.seeded(shared.emu, { config: 'while (true) {}\n', prefix: 'cfghang' })
  await h.refused(shared.emu, p.ns, { what: 'a synchronous loop', code: 2, re: [/did not finish loading within 0\.5 s/] }, () => run(p, ['migrate', '--config-timeout', '500']))

  p = await h.seeded(shared.emu, { config, prefix: 'cfghang' })
  let killedAt = 0
  const out = await h.refused(shared.emu, p.ns, { what: 'SIGTERM', code: 3, re: [/Stopped by a signal while loading config file/, /nothing was done/] }, () =>
    h.cli(['migrate'], {
      cwd: p.dir,
      env: { FIREBASE_DATABASE_URL: p.url },
      timeoutMs: 20000,
      onSpawn: (child) =>
        child.stderr.on('data', (d) => {
          if (!killedAt && String(d).includes('config loading')) {
            killedAt = Date.now()
            child.kill('SIGTERM')
          }
        }),
    }),
  )
  assert.equal(out.signal, null, 'it exited on its own after the first SIGTERM')
  assert.ok(killedAt > 0 && Date.now() - killedAt < 5000, 'it stopped promptly')
})
