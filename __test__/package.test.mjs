// The published shape: `npm pack` gives a tarball that installs into an empty project, where
// ESM import, CJS require and `npx msr-firebase --version` work.
import test from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const ROOT = path.join(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..')
const pkg = require('../package.json')

test('npm pack installs into an empty project and works there (ESM, CJS, bin)', { timeout: 120000 }, () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-pack-'))
  const tgz = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', out], { cwd: ROOT, encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop()
  const app = path.join(out, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  execFileSync('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', path.join(out, tgz)], { cwd: app, stdio: 'pipe' })
  const cjs = execFileSync(process.execPath, ['-e', "const m = require('@migration-script-runner/firebase'); console.log(typeof m.FirebaseRunner, typeof m.FirebaseConfig, typeof m.startEmulator)"], { cwd: app, encoding: 'utf8' })
  assert.equal(cjs.trim(), 'function function function')
  const esm = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', "import { FirebaseRunner, FirebaseConfig, EntityService } from '@migration-script-runner/firebase'; console.log(typeof FirebaseRunner, new FirebaseConfig().tableName, typeof EntityService)"],
    { cwd: app, encoding: 'utf8' },
  )
  assert.equal(esm.trim(), 'function schema_version function')
  const version = execFileSync('npx', ['--offline', 'msr-firebase', '--version'], { cwd: app, encoding: 'utf8' })
  assert.equal(version, `${pkg.version}\n`)
  fs.rmSync(out, { recursive: true, force: true })
})
