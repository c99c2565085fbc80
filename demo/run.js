#!/usr/bin/env node
'use strict'
// npm run demo: the embedded emulator, the example migrations, and four "pods" running
// `msr-firebase migrate` at the same moment. Exactly one runs the migrations; the others wait for
// the lock and find nothing left to do. Then the lock status and the history.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { startEmulator } = require('..')

const BIN = path.join(__dirname, '..', 'bin', 'msr-firebase.js')
const PODS = 4

function run(args, env, cwd) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ...env } })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => resolve({ code, out: out + err, stdout: out, stderr: err }))
  })
}

/** The pod's log (JSON lines, `MSR_LOG_FORMAT=json`): the lock and migration lines, as text. */
function podLog(stderr) {
  const shown = new Set(['lock.waiting', 'lock.still-waiting', 'lock.acquired', 'migration.done', 'run.failed', 'command.failed'])
  return stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        return JSON.parse(l)
      } catch {
        return { event: 'log', message: l }
      }
    })
    .filter((l) => shown.has(l.event) || l.level === 'warn' || l.level === 'error')
    .map((l) => l.message)
}

async function main() {
  const emu = await startEmulator({ port: 0 })
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-demo-'))
  fs.cpSync(path.join(__dirname, '..', 'examples', 'migrations'), path.join(work, 'migrations'), { recursive: true })
  fs.writeFileSync(
    path.join(work, 'msr.config.js'),
    `module.exports = {
  folder: './migrations',
  tableName: 'schema_version',
  shift: 'demo',
  locking: { enabled: true, timeout: 10000 },
}
`,
  )
  const env = { FIREBASE_DATABASE_EMULATOR_HOST: emu.hostPort, MSR_LOG_LEVEL: 'warn' }
  const podEnv = { ...env, MSR_LOG_LEVEL: 'info', MSR_LOG_FORMAT: 'json' }
  console.log(`Embedded RTDB emulator: ${emu.url}  (FIREBASE_DATABASE_EMULATOR_HOST=${emu.hostPort})`)
  console.log(`Working directory: ${work}\n`)
  console.log(`Starting ${PODS} pods that all run \`msr-firebase migrate\` at once...\n`)
  const results = await Promise.all(Array.from({ length: PODS }, () => run(['migrate'], podEnv, work)))
  results.forEach((r, i) => {
    console.log(`--- pod ${i + 1} (exit ${r.code})`)
    console.log(
      [...podLog(r.stderr), ...r.stdout.trim().split('\n')]
        .join('\n')
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    )
  })
  const ran = results.filter((r) => /Successfully executed [1-9]/.test(r.out)).length
  console.log(`\n${results.filter((r) => r.code === 0).length}/${PODS} pods exited 0; ${ran} of them ran the migrations.\n`)

  console.log('$ msr-firebase lock:status')
  console.log((await run(['lock:status'], env, work)).out)
  console.log('$ msr-firebase list')
  console.log((await run(['list'], env, work)).out)
  await emu.stop()
  fs.rmSync(work, { recursive: true, force: true })
  if (results.some((r) => r.code !== 0) || ran !== 1) process.exit(1)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
