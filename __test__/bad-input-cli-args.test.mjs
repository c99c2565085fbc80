// Bad input, CLI arguments family: empty values that would mean "everything" (an unset variable
// in a manifest), targets, limits and file arguments, each refused before the first request with
// the documented exit code and the database exactly as it was. Also what the CLI writes: a
// rollback says what it did (text and --format json), and backup and --keep files are private.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const h = require('./helpers.cjs')

const shared = h.emulatorPerFile()

const run = h.cliIn

test('empty values, bad targets and bad limits are refused with the documented exit code', async () => {
  const cases = [
    // 2: validation or configuration error
    { what: '--folder ""', args: ['migrate', '--folder', ''], code: 2, re: [/command-line flags/, /folder is empty/] },
    { what: '--shift ""', args: ['migrate', '--shift', ''], code: 2, re: [/shift "" would put the migrations at the database root/] },
    { what: '--database-url ""', args: ['migrate', '--database-url', ''], code: 2, re: [/databaseUrl is empty/] },
    { what: '--credentials ""', args: ['migrate', '--credentials', ''], code: 2, re: [/applicationCredentials is empty/] },
    { what: '--config-file ""', args: ['migrate', '--config-file', ''], code: 2, re: [/--config-file is empty/] },
    { what: 'migrate ""', args: ['migrate', ''], code: 2, re: [/Invalid target version ""/, /12-digit/] },
    { what: 'down ""', args: ['down', ''], code: 2, re: [/Invalid target version ""/, /or 0 to roll back everything/] },
    { what: 'down with a non-executed version', args: ['down', '202501010000'], code: 2, re: [/Cannot roll back to version 202501010000/] },
    { what: '--script-timeout 0', args: ['migrate', '--script-timeout', '0'], code: 2, re: [/scriptTimeout must be at least 1 ms/] },
    { what: '--backup-mode manual (rollback backup)', args: ['migrate', '--backup-mode', 'manual'], code: 2, re: [/takes no backup/] },
    // 1: bad arguments
    { what: 'down --steps 0', args: ['down', '--steps', '0'], code: 1, re: [/--steps/] },
    { what: '--config-timeout 0', args: ['migrate', '--config-timeout', '0'], code: 1, re: [/--config-timeout/] },
    { what: 'a negative target', args: ['migrate', '-5'], code: 1, re: [/unexpected argument '-5'/] },
    { what: 'an unknown flag', args: ['migrate', '--dryrun'], code: 1, re: [/--dryrun/, /--dry-run/] },
  ]
  const p = await h.seeded(shared.emu, { prefix: 'args' })
  for (const c of cases) await h.refused(shared.emu, p.ns, c, () => run(p, c.args))
  // Same codes under --format json, as one JSON object.
  const out = await h.refused(shared.emu, p.ns, { what: 'json', code: 2, re: [/"exitCode": 2/] }, () => run(p, ['migrate', '--folder', '', '--format', 'json']))
  assert.equal(JSON.parse(out.stdout).error.code, 'CONFIG_INVALID')
  // A usage error under --format json keeps clap's fix, not only its first line.
  const usage = await h.refused(shared.emu, p.ns, { what: 'json usage', code: 1 }, () => run(p, ['migrate', '--dryrun', '--format', 'json']))
  assert.match(JSON.parse(usage.stdout).error.message, /unexpected argument '--dryrun' found; tip: a similar argument exists: '--dry-run'/)
})

test('emulator --export-on-exit to a place it cannot write is refused before it starts (its data would be lost at exit)', async () => {
  const dir = h.tmpDir('msr-emu-bad-')
  for (const [target, re] of [
    [path.join(dir, 'no', 'such', 'folder', 'data.json'), /the folder .* does not exist/],
    [dir, /it is a folder/],
  ]) {
    const out = await h.cli(['emulator', '--port', '0', '--export-on-exit', target], { cwd: dir, timeoutMs: 10000 })
    assert.equal(out.code, 2, out.stderr)
    assert.match(out.stderr, /Cannot export the emulator's data to/)
    assert.match(out.stderr, re)
    assert.doesNotMatch(out.stdout, /listening/)
  }
})

test('a rollback says what it did, in the log and under --format json', async () => {
  const failing = "module.exports = { async up(db, info, h) { await db.database.ref(h.cfg.buildPath('half')).set(true); throw new Error('kaput') } }\n"
  // rollbackStrategy none: nothing undone, and it says so (never "succeeded").
  let p = await h.seeded(shared.emu, { prefix: 'rb', files: { 'V202501010003_fail.js': failing }, config: "module.exports = { rollbackStrategy: 'none' }" })
  let out = await run(p, ['migrate', '--format', 'json', '--backup-mode', 'manual'])
  assert.equal(out.code, 3, out.stderr)
  let rb = JSON.parse(out.stdout).rollback
  assert.deepEqual([rb.strategy, rb.success, rb.undone], ['none', true, false])
  assert.match(rb.done, /nothing was undone \(rollbackStrategy is 'none'\): the database may still hold part of V202501010003_fail\.js's changes/)
  assert.match(out.stderr, /Rollback \(none\) done in .*: nothing was undone/)
  assert.doesNotMatch(out.stderr, /succeeded/)
  assert.equal((await h.dump(shared.emu, p.ns)).half, true, 'as it said: the partial write stays')

  // backup (the default): the backup taken before the run is restored, and it says which.
  p = await h.seeded(shared.emu, { prefix: 'rb', files: { 'V202501010003_fail.js': failing } })
  const before = await h.dump(shared.emu, p.ns)
  out = await run(p, ['migrate', '--format', 'json', '--log-format', 'json'])
  assert.equal(out.code, 3, out.stderr)
  rb = JSON.parse(out.stdout).rollback
  assert.deepEqual([rb.strategy, rb.success, rb.undone], ['backup', true, true])
  assert.match(rb.restoredFrom, /backups\/backup-.*\.json$/)
  assert.match(rb.done, /^restored the backup .*backups\/backup-/)
  const line = out.stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .find((l) => l.event === 'rollback.done')
  assert.equal(line.undone, true)
  assert.equal(line.restoredFrom, rb.restoredFrom)
  assert.deepEqual(await h.dump(shared.emu, p.ns), before, 'restored')
})

test('backup files and --keep files are private (0600), a backup folder it creates 0700', { skip: process.platform === 'win32' }, async () => {
  const mode = (f) => fs.statSync(f).mode & 0o777
  const p = await h.seeded(shared.emu, { prefix: 'mode' })
  let out = await run(p, ['backup', 'create', '--format', 'json'])
  assert.equal(out.code, 0, out.stderr)
  const file = JSON.parse(out.stdout).path
  assert.equal(mode(file).toString(8), '600')
  assert.equal(mode(path.dirname(file)).toString(8), '700')
  // The backup migrate takes before a run too (into a nested folder it creates).
  out = await run(p, ['migrate'], { MSR_BACKUP: '{"folder": "./deep/backups"}' })
  assert.equal(out.code, 0, out.stderr)
  const [taken] = fs.readdirSync(path.join(p.dir, 'deep', 'backups'))
  assert.equal(mode(path.join(p.dir, 'deep', 'backups', taken)).toString(8), '600')
  assert.equal(mode(path.join(p.dir, 'deep')).toString(8), '700')
  // rehearse --keep writes the rehearsed data as a backup file.
  fs.writeFileSync(path.join(p.dir, 'migrations', 'V202501010003_c.js'), h.nodeScript('c'))
  out = await run(p, ['rehearse', '--from-backup', file, '--keep', 'kept.json'])
  assert.equal(out.code, 0, out.stderr)
  assert.equal(mode(path.join(p.dir, 'kept.json')).toString(8), '600')
})
