#!/usr/bin/env node
'use strict'
// npm run bench: HTTP requests per operation against its floor (a stable figure) and wall time at
// 0/20/50 ms of emulator latency against the ideal (bench/floors.js); the crowd figure, real
// processes waiting for a holder (bench/crowd.js); then the big-data figures (bench/big.js), as
// ratios measured side by side; then a rehearsal vs the same migrations run directly
// (bench/rehearse.js); the cost of Security Rules per write (bench/rules.js) and of the write-size
// estimate (bench/write-size.js); an unindexed query answered on the client vs the indexed one
// (bench/unindexed.js); a chunked delete of 1M users vs one DELETE (bench/chunked.js); then the fault
// campaign and the fence campaign at a larger scale than CI runs them, with their figures; many
// databases in one run: 20 databases at 50 ms, concurrency 1/4/20 vs the ideal, memory vs one
// database (bench/shards.js).

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { startEmulator } = require('..')

async function main() {
  const emu = await startEmulator()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-bench-'))
  console.log('Requests per operation vs its floor; wall time at 0/20/50 ms emulator latency vs the ideal (floor x latency):')
  console.table(await require('./floors.js').floors(emu, work))
  if (process.env.BENCH_CROWD !== '0') {
    console.log('\nCrowd (real processes; BENCH_CROWD=0 skips): N pods wait for a holder; from its exit to the last pod exit (goal: 20 pods within 1.5 s, 50 within 3 s at 50 ms):')
    const { crowd } = require('./crowd.js')
    console.table([await crowd(emu, 20, 50), await crowd(emu, 50, 50)])
  }
  await emu.stop()
  fs.rmSync(work, { recursive: true, force: true })
  if (process.env.BENCH_BIG !== '0') {
    console.log('\nBig data (BENCH_USERS users, default 1000000; BENCH_BIG=0 skips this part):')
    console.table(await require('./big.js').bigData())
  }
  if (process.env.BENCH_REHEARSE !== '0') {
    console.log('\nRehearsal (BENCH_REHEARSE_USERS users, default BENCH_USERS; BENCH_REHEARSE=0 skips this part):')
    console.table(await require('./rehearse.js').rehearsal())
  }
  if (process.env.BENCH_SHARDS !== '0') {
    console.log(
      '\nMany databases (BENCH_SHARDS databases, default 20; BENCH_SHARDS=0 skips): 10 no-op migrations each at 50 ms latency, `migrate` with concurrency 1/4/20 vs the ideal (floor x latency x ceil(databases / concurrency)); peak RSS vs one database:',
    )
    console.table(await require('./shards.js').shards())
  }
  if (process.env.BENCH_RULES !== '0') {
    console.log('\nSecurity Rules (BENCH_RULES_USERS users per namespace, default BENCH_USERS; BENCH_RULES=0 skips this part):')
    console.table(await require('./rules.js').rulesCost())
  }
  if (process.env.BENCH_WRITE_SIZE !== '0') {
    console.log('\nWrite-size limits (BENCH_WRITE_SIZE_USERS users per namespace, default BENCH_USERS; BENCH_WRITE_SIZE=0 skips this part):')
    console.table(await require('./write-size.js').writeSizeCost())
  }
  if (process.env.BENCH_UNINDEXED !== '0') {
    console.log('\nUnindexed query (BENCH_UNINDEXED_USERS users, default 100000; BENCH_UNINDEXED=0 skips this part): answered on the client vs the indexed query:')
    console.table(await require('./unindexed.js').unindexedCost())
  }
  if (process.env.BENCH_CHUNKED !== '0') {
    console.log('\nChunked delete (BENCH_CHUNKED_USERS users, default BENCH_USERS; BENCH_CHUNKED=0 skips this part): remove() over the write-size limit vs one DELETE:')
    console.table(await require('./chunked.js').chunkedCost())
  }
  faultCampaign()
  fenceCampaign()
}

/** `node --test <file>` with `env`; the JSON line it appended to a fresh report file (or null). */
function testFigures(file, env, reportVar) {
  const { spawnSync } = require('node:child_process')
  const report = path.join(os.tmpdir(), `msr-${path.basename(file, '.test.mjs')}-${process.pid}.jsonl`)
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', path.join(__dirname, '..', '__test__', file)], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, ...env, [reportVar]: report },
    encoding: 'utf8',
  })
  const failed = (r.stdout.match(/^not ok .*$/gm) || []).join('\n')
  if (failed) console.log(failed)
  const fig = fs.existsSync(report) ? JSON.parse(fs.readFileSync(report, 'utf8').trim().split('\n').pop()) : null
  fs.rmSync(report, { force: true })
  if (!fig) console.log(r.stdout.slice(-4000), r.stderr.slice(-2000))
  if (!fig || failed || r.status !== 0) process.exitCode = 1
  return fig
}

/**
 * The fence campaign of __test__/fence.test.mjs, larger than in CI: each lost-update reproduction
 * (a partitioned holder, a paused holder whose write was applied while it was stopped)
 * FENCE_REPEAT times (default 10), then FENCE_ROUNDS rounds (default 20) of 3 racing pods with a
 * fault on the holder. Prints rounds, faults, lost updates and writes after a lease (both must be
 * 0). BENCH_FENCE=0 skips it.
 */
function fenceCampaign() {
  if (process.env.BENCH_FENCE === '0') return
  const env = { FENCE_ROUNDS: process.env.FENCE_ROUNDS || '20', FENCE_REPEAT: process.env.FENCE_REPEAT || '10' }
  console.log(`\nFence campaign (reproductions x${env.FENCE_REPEAT}, ${env.FENCE_ROUNDS} rounds) ...`)
  const fig = testFigures('fence.test.mjs', env, 'FENCE_REPORT')
  if (!fig) return
  console.table([
    { figure: 'partitioned holder: runs ending with the new holder’s value', value: `${fig.reproductions.partition || 0} / ${env.FENCE_REPEAT}` },
    { figure: 'paused holder: runs ending with the new holder’s value', value: `${fig.reproductions.paused || 0} / ${env.FENCE_REPEAT}` },
    { figure: 'campaign rounds (3 pods each)', value: fig.rounds },
    { figure: 'faults injected', value: JSON.stringify(fig.faults) },
    { figure: 'migrations recorded', value: fig.migrationsRecorded },
    { figure: 'lost updates (must be 0)', value: fig.lostUpdates },
    { figure: 'writes after the writer’s lease deadline (must be 0)', value: fig.lateWrites },
    { figure: 'exit codes of the faulted holders', value: JSON.stringify(fig.staleExits) },
  ])
}

/**
 * The fault campaign of __test__/faults.test.mjs, larger than in CI: FAULT_ROUNDS rounds (default
 * 5) of the repeated scenarios, both lost-response modes for every write, and the default
 * black-hole timing. Prints its figures (runs, double executions, stale writes after a takeover,
 * live locks left, exit times). BENCH_FAULTS=0 skips it.
 */
function faultCampaign() {
  if (process.env.BENCH_FAULTS === '0') return
  const rounds = process.env.FAULT_ROUNDS || '5'
  console.log(`\nFault campaign (${rounds} rounds, full) ...`)
  const fig = testFigures('faults.test.mjs', { FAULT_ROUNDS: rounds, FAULT_FULL: '1' }, 'FAULT_REPORT')
  if (!fig) return
  const stats = (xs) => (xs.length ? `${Math.min(...xs)} / ${Math.round(xs.reduce((a, b) => a + b, 0) / xs.length)} / ${Math.max(...xs)}` : '-')
  console.table([
    { figure: 'runs (CLI processes)', value: fig.runs },
    { figure: 'responses lost after the write was applied', value: fig.lostResponsesInjected },
    { figure: 'double executions (must be 0)', value: fig.doubleExecutions },
    { figure: 'double records (must be 0)', value: fig.doubleRecords },
    { figure: 'live locks left after an exit (must be 0)', value: fig.liveLocksAfterExit },
    { figure: 'stale writes after takeover, per SIGSTOP run (min / mean / max, must be <= 1)', value: stats(fig.staleWritesAfterTakeover) },
    { figure: 'SIGTERM while waiting: exit after, ms (min / mean / max)', value: stats(fig.sigtermWhileWaitingMs) },
    { figure: 'second SIGINT/SIGTERM: exit after, ms (min / mean / max)', value: stats(fig.secondSignalExitMs) },
    ...fig.blackHoleExitMs.map((b) => ({ figure: `black-holed endpoint: exit 7 after, ms (${Object.keys(b.env).length ? 'short deadlines' : 'defaults'})`, value: b.ms })),
    { figure: 'exit codes', value: JSON.stringify(fig.exitCodes) },
  ])
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
