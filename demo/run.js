#!/usr/bin/env node
'use strict'
// npm run demo: the embedded emulator, the example migrations, and four "pods" running
// `msr-firebase migrate` at the same moment. Exactly one runs the migrations; the others wait for
// the lock and find nothing left to do. Then the lock status and the history.
//
// npm run demo -- --shards 3: a sharded database, three instances (the emulator's namespaces,
// `databaseUrls` in the config); the four pods each run `migrate` over all of them at once. On
// each database exactly one pod runs the migrations, under that database's lock; one report per
// pod lists the three. Then `list` over the set.

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

/** `--shards N` (N >= 2), else 0 (one database). */
function shardsArg(argv) {
  const i = argv.indexOf('--shards')
  if (i < 0) return 0
  const n = Number(argv[i + 1])
  if (!Number.isInteger(n) || n < 2 || n > 20) {
    console.error('--shards takes a number of databases from 2 to 20, e.g. npm run demo -- --shards 3')
    process.exit(2)
  }
  return n
}

/** The sharded variant: `n` databases, PODS pods each migrating all of them at once. */
async function sharded(n) {
  const emu = await startEmulator({ port: 0 })
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-demo-shards-'))
  fs.cpSync(path.join(__dirname, '..', 'examples', 'migrations'), path.join(work, 'migrations'), { recursive: true })
  const regions = ['eu', 'us', 'asia', 'sa', 'au', 'af']
  const urls = Array.from({ length: n }, (_, i) => `https://shop-${regions[i % regions.length]}${i >= regions.length ? i : ''}.firebaseio.com`)
  fs.writeFileSync(
    path.join(work, 'msr.config.js'),
    `module.exports = {
  folder: './migrations',
  tableName: 'schema_version',
  shift: 'demo',
  locking: { enabled: true, timeout: 10000 },
  // One instance per shard; the same migrations on each.
  databaseUrls: ${JSON.stringify(urls, null, 2).replace(/\n/g, '\n  ')},
  concurrency: ${n},
}
`,
  )
  const env = { FIREBASE_DATABASE_EMULATOR_HOST: emu.hostPort, MSR_LOG_LEVEL: 'warn' }
  console.log(`Embedded RTDB emulator: ${emu.url}  (FIREBASE_DATABASE_EMULATOR_HOST=${emu.hostPort})`)
  console.log(`Working directory: ${work}`)
  console.log(`${n} databases (one namespace each): ${urls.join(', ')}\n`)
  console.log(`Starting ${PODS} pods that all run \`msr-firebase migrate --format json\` over the ${n} databases at once...\n`)
  const results = await Promise.all(Array.from({ length: PODS }, () => run(['migrate', '--format', 'json'], env, work)))
  const ranBy = {}
  results.forEach((r, i) => {
    console.log(`--- pod ${i + 1} (exit ${r.code})`)
    let doc
    try {
      doc = JSON.parse(r.stdout)
    } catch {
      console.log(r.out.replace(/^/gm, '  '))
      return
    }
    for (const d of doc.databases) {
      const executed = d.executed ?? 0
      if (executed > 0) (ranBy[d.name] ??= []).push(`pod ${i + 1}`)
      console.log(`  ${d.name.padEnd(10)} ${d.status.padEnd(10)} executed ${executed}, ${d.requests} requests, ${d.durationMs} ms`)
    }
  })
  console.log('\nWho ran the migrations, per database:')
  const names = urls.map((u) => new URL(u).hostname.split('.')[0])
  for (const name of names) console.log(`  ${name.padEnd(10)} ${(ranBy[name] ?? ['nobody']).join(', ')}`)
  const once = names.every((name) => (ranBy[name] ?? []).length === 1)
  console.log(`\n${results.filter((r) => r.code === 0).length}/${PODS} pods exited 0; each database migrated by exactly one pod: ${once ? 'yes' : 'NO'}.\n`)

  console.log('$ msr-firebase list')
  console.log((await run(['list'], env, work)).out)
  await emu.stop()
  fs.rmSync(work, { recursive: true, force: true })
  if (results.some((r) => r.code !== 0) || !once) process.exit(1)
}

async function main() {
  const shards = shardsArg(process.argv.slice(2))
  if (shards) return sharded(shards)
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
