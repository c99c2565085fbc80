// Bad input, library API family: the arguments of FirebaseRunner, its lockingService and
// startEmulator are checked as strictly as the CLI checks its flags (the checks live in the core):
// unknown option names are refused with a "did you mean" (a misspelt dryRun must never run for
// real), values have the kind and range of their flag, executor ids are non-empty strings, and a
// config that is neither a FirebaseConfig nor a plain object is refused. Each rejects with
// CONFIG_INVALID (or the runner's own code) and leaves the database as it was.
import { test } from 'node:test'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')
const { FirebaseRunner, FirebaseConfig, startEmulator } = require('..')

const shared = h.emulatorPerFile()

const quiet = () => {}

test('getInstance: unknown options and configs that are no settings object are refused', async () => {
  const p = await h.seeded(shared.emu, { prefix: 'libcfg' })
  const folder = path.join(p.dir, 'migrations')
  const cases = [
    { what: 'misspelt config', options: { confg: { databaseUrl: p.url, folder } }, re: [/getInstance\(\): unknown option `confg`; did you mean `config`\?/] },
    { what: 'a Map', options: { config: new Map([['databaseUrl', p.url]]) }, re: [/got a Map/, /Object\.fromEntries/] },
    {
      what: 'a class instance',
      options: {
        config: new (class Settings {
          databaseUrl = p.url
        })(),
      },
      re: [/got an instance of Settings/],
    },
    { what: 'a string', options: { config: 'msr.config.js' }, re: [/got a string/] },
    { what: 'a Map given to FirebaseConfig', make: () => new FirebaseConfig(new Map()), re: [/new FirebaseConfig\(settings\)/, /got a Map/] },
    { what: 'an empty folder', options: { config: { databaseUrl: p.url, folder: '' } }, re: [/folder is empty/] },
    { what: 'manual backups with the backup rollback', options: { config: { databaseUrl: p.url, folder, backupMode: 'manual' } }, re: [/takes no backup/] },
  ]
  for (const c of cases) {
    await h.refused(shared.emu, p.ns, { ...c, code: 'CONFIG_INVALID' }, async () => {
      if (c.make) return c.make()
      const runner = await FirebaseRunner.getInstance({ ...c.options, logger: quiet })
      return runner.migrate()
    })
  }
})

test('migrate, down, rehearse and the lock: arguments are checked in the core, nothing runs on a bad one', async () => {
  const p = await h.seeded(shared.emu, { prefix: 'libargs' })
  const runner = await FirebaseRunner.getInstance({
    config: { databaseUrl: p.url, folder: path.join(p.dir, 'migrations'), locking: { enabled: true } },
    logger: quiet,
  })
  const lock = runner.getHandler().lockingService
  const cases = [
    { what: 'misspelt dryRun', call: () => runner.migrate(undefined, { dryrun: true }), re: [/migrate\(\): unknown option `dryrun`; did you mean `dryRun`\?/] },
    { what: 'negative retry count', call: () => runner.migrate(undefined, { retryAttempts: -1 }), re: [/retryAttempts must be a whole number of attempts, 0 or more/] },
    { what: 'fractional retry count', call: () => runner.migrate(undefined, { retryAttempts: 1.5 }), re: [/retryAttempts must be a whole number/] },
    { what: 'negative wait', call: () => runner.migrate(undefined, { waitTimeout: -100 }), re: [/waitTimeout must be a whole number of ms/] },
    { what: 'a wait flag that is no boolean', call: () => runner.migrate(undefined, { wait: 'yes' }), re: [/wait must be true or false/] },
    { what: 'options that are no object', call: () => runner.migrate(undefined, 'dry'), re: [/options must be an object/] },
    { what: 'a bad target', call: () => runner.migrate('latest'), re: [/Invalid target version "latest"/] },
    { what: 'zero steps', call: () => runner.down(null, { steps: 0 }), re: [/steps must be 1 or more/] },
    { what: 'negative steps', call: () => runner.down(null, { steps: -2 }), re: [/steps must be 1 or more/] },
    { what: 'neither a version nor steps', call: () => runner.down(), re: [/down needs the version to roll back to/, /steps: N/] },
    { what: 'a version and steps', call: () => runner.down(202501010001, { steps: 1 }), re: [/a version or a number of steps, not both/] },
    { what: 'a version no migration has', call: () => runner.down(202501010000), code: 'VALIDATION_FAILED', re: [/Cannot roll back to version 202501010000/, /202501010001/] },
    { what: 'misspelt keep', call: () => runner.rehearse({ kep: 'out.json' }), re: [/rehearse\(\): unknown option `kep`; did you mean `keep`\?/] },
    { what: 'negative examples', call: () => runner.rehearse({ examples: -1 }), re: [/examples must be a whole number/] },
    { what: 'an empty executor id', call: () => lock.acquireLock(''), re: [/acquireLock\(\): the executor id must be a non-empty string/] },
    { what: 'no executor id', call: () => lock.acquireLock(), re: [/got nothing/] },
    { what: 'a blank executor id to release', call: () => lock.releaseLock('  '), re: [/releaseLock\(\)/] },
    { what: 'runExclusive with an empty executor id', call: () => lock.runExclusive(async () => 1, { executorId: '' }), re: [/runExclusive\(\): the executor id/] },
    { what: 'runExclusive with a misspelt option', call: () => lock.runExclusive(async () => 1, { waitTimout: 5 }), re: [/did you mean `waitTimeout`\?/] },
    { what: 'runExclusive with negative retries', call: () => lock.runExclusive(async () => 1, { retryAttempts: -3 }), re: [/retryAttempts must be a whole number/] },
    { what: 'runExclusive without work', call: () => lock.runExclusive(), re: [/needs a function/] },
  ]
  for (const c of cases) await h.refused(shared.emu, p.ns, { code: 'CONFIG_INVALID', ...c }, c.call)
})

test('startEmulator: a port out of range or a misspelt option is refused, never clamped or ignored', async () => {
  for (const [options, re] of [
    [{ port: 70000 }, /port must be a port number, 0 to 65535 \(got 70000/],
    [{ port: -1 }, /0 to 65535/],
    [{ prot: 9000 }, /unknown option `prot`; did you mean `port`\?/],
  ]) {
    await h.refused(shared.emu, 'none', { what: JSON.stringify(options), code: 'CONFIG_INVALID', re }, () => startEmulator(options))
  }
})
