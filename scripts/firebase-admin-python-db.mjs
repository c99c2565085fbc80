// Run firebase-admin-python's RTDB integration suite (integration/test_db.py, unchanged) in its
// emulator mode against this project's embedded emulator, as its upstream CI runs it against
// Google's emulator. Fetches and installs nothing.
//
//   node scripts/firebase-admin-python-db.mjs <checkout> [pytest args...]
//
// <checkout> is a checkout of github.com/firebase/firebase-admin-python with a venv made once:
//   python3 -m venv <checkout>/venv && <checkout>/venv/bin/pip install -r <checkout>/requirements.txt
// The emulator is the built addon's (`npm run build:debug` or `npm run build` first), started on
// port 0; pytest gets FIREBASE_DATABASE_EMULATOR_HOST, which makes the suite use the project id
// `fake-project-id` (namespace `fake-project-id`) and `Authorization: Bearer owner`.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const [checkout, ...pytestArgs] = process.argv.slice(2)
if (!checkout) {
  console.error('usage: node scripts/firebase-admin-python-db.mjs <firebase-admin-python checkout> [pytest args...]')
  process.exit(2)
}
const pytest = path.join(path.resolve(checkout), 'venv', 'bin', 'pytest')
if (!fs.existsSync(pytest)) {
  console.error(`${pytest} not found: make the venv first (python3 -m venv venv && venv/bin/pip install -r requirements.txt)`)
  process.exit(2)
}

const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'msr-firebase.js')
const emulator = spawn(process.execPath, [bin, 'emulator', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
const hostPort = await new Promise((resolve, reject) => {
  let out = ''
  emulator.stdout.on('data', (d) => {
    out += d
    const m = /FIREBASE_DATABASE_EMULATOR_HOST=(\S+)/.exec(out)
    if (m) resolve(m[1])
  })
  emulator.on('exit', (code) => reject(new Error(`the emulator exited (${code}) before listening:\n${out}`)))
})
console.log(`emulator at ${hostPort}: pytest integration/test_db.py ${pytestArgs.join(' ')}`)
const run = spawn(pytest, ['integration/test_db.py', ...pytestArgs], {
  cwd: path.resolve(checkout),
  env: { ...process.env, FIREBASE_DATABASE_EMULATOR_HOST: hostPort },
  stdio: 'inherit',
})
const code = await new Promise((resolve) => run.on('exit', (c) => resolve(c ?? 1)))
emulator.kill('SIGINT')
process.exit(code)
