// Bad input, environment family: `MSR_*` variables. An unknown name is refused like an unknown
// config key (with the closest known name: a misspelt lock variable must never run without the
// lock), bad values name the variable, and an empty variable counts as unset. Each refusal exits
// 2 with the database exactly as it was (one migration executed, one pending).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')

const shared = h.emulatorPerFile()

const run = (p, env, args = ['migrate']) => h.cliIn(p, args, env)

test('unknown MSR_* names and bad MSR_* values are refused, naming the variable and the fix', async () => {
  const cases = [
    {
      what: 'misspelt lock switch',
      env: { MSR_LOCKING_ENABLE: 'true' },
      re: [/unknown environment variable MSR_LOCKING_ENABLE/, /did you mean MSR_LOCKING_ENABLED\?/, /without the lock/],
    },
    { what: 'misspelt folder', env: { MSR_FOLDR: './migrations' }, re: [/MSR_FOLDR/, /did you mean MSR_FOLDER\?/] },
    { what: 'a name that is no setting', env: { MSR_COLOUR: 'blue' }, re: [/MSR_COLOUR/, /not a setting of msr-firebase/, /MSR_LOCKING_ENABLED/] },
    { what: 'a value that is no number', env: { MSR_LOCKING_TIMEOUT: 'ten minutes' }, re: [/MSR_LOCKING_TIMEOUT must be a whole number of ms/] },
    { what: 'a value that is no boolean', env: { MSR_LOCKING_ENABLED: 'sure' }, re: [/MSR_LOCKING_ENABLED must be true or false/] },
    { what: 'a misspelt key in MSR_LOCKING', env: { MSR_LOCKING: '{"enabeld": true}' }, re: [/MSR_LOCKING/, /did you mean `locking\.enabled`\?/] },
    { what: 'a shift at the root', env: { MSR_SHIFT: '/' }, re: [/environment \(MSR_\* variables\)/, /database root/] },
    {
      what: 'a contradiction across variables',
      env: { MSR_BACKUP_MODE: 'manual', MSR_ROLLBACK_STRATEGY: 'backup' },
      re: [/environment \(MSR_\* variables\)/, /takes no backup/],
    },
    { what: 'a missing MSR_CONFIG_FILE', env: { MSR_CONFIG_FILE: 'nope.js' }, re: [/Config file not found: .*nope\.js \(given by MSR_CONFIG_FILE\)/] },
  ]
  for (const c of cases) {
    const p = await h.seeded(shared.emu, { prefix: 'env' })
    await h.refused(shared.emu, p.ns, { ...c, code: 2 }, () => run(p, c.env))
  }
  // A config file named by MSR_CONFIG_FILE must be a JS or TypeScript module or JSON.
  const p = await h.seeded(shared.emu, { prefix: 'env' })
  fs.writeFileSync(path.join(p.dir, 'msr.yaml'), 'locking: { enabled: true }\n')
  await h.refused(shared.emu, p.ns, { what: 'yaml', code: 2, re: [/msr\.yaml \(given by MSR_CONFIG_FILE\)/, /JS or TypeScript module or JSON/] }, () =>
    run(p, { MSR_CONFIG_FILE: 'msr.yaml' }),
  )
})

test('an empty MSR_* variable counts as unset (as documented): the default applies', async () => {
  const p = await h.seeded(shared.emu, { prefix: 'envempty' })
  const out = await run(p, { MSR_FOLDER: '', MSR_SHIFT: '', MSR_CONFIG_FILE: '', MSR_LOCKNG: '' }, ['list', '--format', 'json'])
  assert.equal(out.code, 0, out.stderr)
  const list = JSON.parse(out.stdout)
  assert.deepEqual([list.executed, list.pending], [1, 1], 'the default folder and the root: the seeded history')
})
