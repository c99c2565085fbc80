// The fence travels with every write (issue 24): a holder whose lease has run out never gets a
// write of its scripts to the database — not its first send, not the client's retries, not a
// re-send after an unknown outcome — so it never overwrites the work of the holder that took
// over. Real `msr-firebase migrate` processes, each behind a TCP proxy of its own in front of the
// embedded emulator (the proxy can cut the pod off: a partition, nothing refused, nothing
// delivered), real SIGSTOP/SIGCONT, the emulator's delay lever, and its request journal (server
// times, and the proxy's connections say which pod sent what).
//
// Two reproductions of the lost update, then a campaign of rounds with an owner witness: each
// migration writes the pod that ran it, the history names the pod that recorded it; they must
// agree. FENCE_ROUNDS=N sets the campaign's rounds (default: one per fault); FENCE_REPEAT=N runs
// each reproduction N times; FENCE_REPORT=<file> appends the figures as one JSON line.
import test, { before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import helpers from './helpers.cjs'

const { startEmulator, uniqueNs, lever, tmpDir, startCli } = helpers
const FAULTS = ['dark', 'stop', 'delay-stop', 'lost-dark']
const ROUNDS = Math.max(1, Number(process.env.FENCE_ROUNDS || FAULTS.length))
const REPEAT = Math.max(1, Number(process.env.FENCE_REPEAT || 1))
const SHIFT = 'app'
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)))

helpers.clearDatabaseEnv()

let emu
let control
/** ns -> (pod, point) => Promise: what the scripts' hooks do in that namespace. */
const hooks = new Map()
const children = new Set()
const proxies = new Set()
const fig = { reproductions: {}, rounds: 0, faults: {}, lostUpdates: 0, lateWrites: 0, staleExits: {}, migrationsRecorded: 0 }

before(async () => {
  emu = await startEmulator({ port: 0 })
  await lever(emu, 'PUT', 'journal')
  // The scripts' hook endpoint: POST /<ns>/<pod>/<point> answers once the round's hook is done.
  control = http.createServer((req, res) => {
    const [ns, pod, point] = req.url.split('/').filter(Boolean).map(decodeURIComponent)
    req.resume()
    Promise.resolve((hooks.get(ns) || (() => {}))(pod, point)).then(
      () => res.end('{}'),
      (e) => res.end(JSON.stringify({ error: String(e) })),
    )
  })
  await new Promise((r) => control.listen(0, '127.0.0.1', r))
})

after(async () => {
  for (const c of children) {
    c.kill('SIGCONT')
    c.kill('SIGKILL')
  }
  for (const p of proxies) p.close()
  control.close()
  await lever(emu, 'DELETE', 'journal')
  await emu.stop()
  const line = JSON.stringify({ rounds: ROUNDS, repeat: REPEAT, ...fig })
  if (process.env.FENCE_REPORT) fs.appendFileSync(process.env.FENCE_REPORT, line + '\n')
  console.log(`# fence: ${line}`)
})

/** Read `p` in `ns` as an admin (a namespace may have rules). */
async function rawGet(emu, ns, p) {
  const res = await fetch(`${emu.url}/${p}.json?ns=${ns}`, { headers: { authorization: 'Bearer owner' } })
  return res.json()
}

// ---------------------------------------------------------------------------------------------

/**
 * A TCP proxy on 127.0.0.1:0 in front of the emulator, for one pod. `dark(ms)`: for ms, every
 * byte either way is dropped (a partition: the pod's requests and their answers vanish, nothing is
 * refused); the connections that lost bytes are reset when it ends (their state is gone, as after
 * a NAT or firewall forgot them), the others carry on. `peers`: the addresses of its connections
 * to the emulator, i.e. this pod in the emulator's journal.
 */
async function proxy() {
  const port = Number(new URL(emu.url).port)
  const peers = new Set()
  const sockets = new Set()
  const broken = new Set()
  let darkUntil = 0
  const srv = net.createServer((down) => {
    const up = net.connect(port, '127.0.0.1')
    up.on('connect', () => peers.add(`${up.localAddress}:${up.localPort}`))
    const close = () => {
      down.destroy()
      up.destroy()
      sockets.delete(down)
      sockets.delete(up)
      broken.delete(close)
    }
    const pipe = (from, to) =>
      from.on('data', (d) => {
        if (Date.now() < darkUntil) broken.add(close)
        if (!broken.has(close)) to.write(d)
      })
    pipe(down, up)
    pipe(up, down)
    for (const s of [down, up]) {
      sockets.add(s)
      s.on('close', close)
      s.on('error', close)
    }
  })
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  const p = {
    port: srv.address().port,
    peers,
    dark(ms) {
      darkUntil = Date.now() + ms
      setTimeout(() => {
        if (Date.now() >= darkUntil) for (const reset of broken) reset()
      }, ms + 1)
    },
    close() {
      for (const s of sockets) s.destroy()
      srv.close()
    },
  }
  proxies.add(p)
  return p
}

/**
 * A migration that, just before its writes, calls the round's hook (where a fault may hit its
 * pod), then writes its witness: who ran it, by a PUT and by a PATCH.
 */
function script(name) {
  return `
module.exports = {
  async up(db) {
    const d = db.database
    await fetch(process.env.FENCE_HOOK + '/${name}-before-write', { method: 'POST' }).then((r) => r.text())
    await d.ref('${SHIFT}/data/${name}').set({ owner: process.env.POD })
    await d.ref('${SHIFT}/data').update({ '${name}_by': process.env.POD })
  },
}
`
}

const mname = (i) => `V2025010100${String(i).padStart(2, '0')}_m${i}.js`

/** A project with `count` migrations; the database URL comes per pod (through its proxy). */
function project(count, leaseMs, locking = {}) {
  const dir = tmpDir('msr-fence-')
  fs.mkdirSync(path.join(dir, 'migrations'))
  for (let i = 1; i <= count; i++) fs.writeFileSync(path.join(dir, 'migrations', mname(i)), script(`m${i}`))
  const cfg = { shift: SHIFT, locking: { enabled: true, timeout: leaseMs, ...locking }, network: { responseTimeout: 2000 } }
  fs.writeFileSync(path.join(dir, 'msr.config.js'), `module.exports = ${JSON.stringify(cfg)}\n`)
  return dir
}

/** `msr-firebase migrate` as pod `name` through proxy `px`: { child, exited }. */
function pod(name, dir, ns, px) {
  const { child, exited: closed } = startCli(['migrate', '--log-format', 'json'], {
    cwd: dir,
    env: {
      POD: name,
      MSR_DATABASE_URL: `http://127.0.0.1:${px.port}?ns=${ns}`,
      MSR_LOCKING_EXECUTOR_ID: `pod-${name}`,
      FENCE_HOOK: `http://127.0.0.1:${control.address().port}/${encodeURIComponent(ns)}/${name}`,
    },
  })
  children.add(child)
  const exited = closed.then(({ code, signal, stdout, stderr }) => {
    children.delete(child)
    const failed = stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
      .find((l) => l.event === 'command.failed')
    return { name, code, signal, stdout, stderr, failed, out: `pod ${name}: exit ${code ?? signal}\n${stdout}\n${stderr}` }
  })
  return { name, child, exited, px }
}

const lockPath = `/${SHIFT}/migrations/_lock`

async function lockNode(ns) {
  return rawGet(emu, ns, lockPath.slice(1))
}

/** Poll `pred()` every 20 ms until true (bounded). */
async function until(pred, what, ms = 20000) {
  const end = Date.now() + ms
  for (;;) {
    const v = await pred()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/**
 * The scripts' writes (anything below `${SHIFT}/data`) of the pod behind `px` that reached the
 * emulator after its lease deadline (`late`; `lateAny`: any request but a read). Its last
 * confirmed write of the lock record (answered 200) arrived at `at`, so its lease ended no later
 * than `at + leaseMs` (the lease is counted from when that request left, less a margin).
 */
async function late(ns, px, leaseMs) {
  const { entries, overflow } = await lever(emu, 'GET', 'journal')
  assert.equal(overflow, 0, 'the journal kept every request')
  const mine = entries.filter((e) => e.ns === ns && px.peers.has(e.peer))
  const confirmed = mine.filter((e) => e.method === 'PUT' && e.path === lockPath && e.status === 200)
  if (!confirmed.length) return { deadline: null, late: [], lateAny: [], writes: [] }
  const deadline = Math.max(...confirmed.map((e) => e.at)) + leaseMs
  const writes = mine.filter((e) => e.method !== 'GET' && e.path.startsWith(`/${SHIFT}/data`))
  const lateAny = mine.filter((e) => e.method !== 'GET' && e.at > deadline)
  return { deadline, writes, late: writes.filter((e) => e.at > deadline), lateAny }
}

/** The history records by version. */
async function history(ns) {
  return Object.values((await rawGet(emu, ns, `${SHIFT}/schema_version`)) || {})
}

/**
 * The owner witness: every recorded migration's data was written by the pod that recorded it.
 * Returns the lost updates (recorded by one pod, data of another).
 */
async function witness(ns) {
  const data = (await rawGet(emu, ns, `${SHIFT}/data`)) || {}
  const lost = []
  const records = await history(ns)
  for (const r of records) {
    const m = /_(m\d+)\.js$/.exec(r.name)[1]
    const recorder = r.executorId.replace(/^pod-/, '')
    for (const [what, owner] of [
      [`${m}.owner`, data[m]?.owner],
      [`${m}_by`, data[`${m}_by`]],
    ]) {
      if (owner !== recorder) lost.push(`${what}: recorded by ${recorder} (epoch ${r.lockEpoch}), data written by ${owner}`)
    }
  }
  return { lost, records, data }
}

/** The lost-lock message of a holder that was taken over by `by`, who recorded the migration. */
function assertTakenOverMessage(stale, by) {
  assert.equal(stale.code, 3, stale.out)
  assert.equal(stale.failed?.code, 'LOCK_LOST', stale.out)
  const m = stale.failed.message
  assert.match(m, /was taken over/, m)
  assert.doesNotMatch(m, /force-released/, m)
  assert.match(m, new RegExp(`recorded in the migration history at ${SHIFT}/schema_version \\(recorded by pod-${by}`), m)
  assert.doesNotMatch(m, /--mark-applied|NOT RECORDED/, m)
}

// ---------------------------------------------------------------------------------------------

/** In `ns`, pod A holds the lock, then pod B waits for it (each through its own proxy; `onHook` hears their hooks). */
async function holderAndTaker(ns, leaseMs, onHook = () => {}, dir = project(1, leaseMs)) {
  const [pa, pb] = [await proxy(), await proxy()]
  hooks.set(ns, (p) => onHook(p, pa))
  const a = pod('A', dir, ns, pa)
  await until(async () => (await lockNode(ns))?.executorId === 'pod-A', 'A holds the lock')
  return { a, b: pod('B', dir, ns, pb), pa }
}

/**
 * B took over, ran and recorded the migration, and its value stands; A exited LOCK_LOST with a
 * message saying so; none of A's writes reached the database after its lease. A's writes, as the
 * journal saw them.
 */
async function assertTakenOver(ns, ao, pa, leaseMs) {
  const { lost, records, data } = await witness(ns)
  assert.deepEqual(lost, [], JSON.stringify({ data, records }))
  assert.equal(data.m1.owner, 'B')
  assert.deepEqual(
    records.map((r) => [r.executorId, r.lockEpoch]),
    [['pod-B', 2]],
  )
  assertTakenOverMessage(ao, 'B')
  const j = await late(ns, pa, leaseMs)
  assert.ok(j.deadline, 'A held the lock')
  assert.deepEqual(j.late, [], `A's writes after its lease deadline (${j.deadline})`)
  // Nor any write of its own (lock, history): after its deadline it only reads.
  assert.deepEqual(j.lateAny, [], `A's requests other than reads after its lease deadline (${j.deadline})`)
  return j.writes.map((e) => `${e.method} ${e.path}`)
}

test('partition: the holder is cut off just before its write; the holder that took over keeps its value, the stale one exits LOCK_LOST without sending anything after its lease', async () => {
  const LEASE = 3000
  for (let run = 0; run < REPEAT; run++) {
    // A's network goes dark for 7 s right before its write.
    const ns = uniqueNs('partition')
    const { a, b, pa } = await holderAndTaker(ns, LEASE, (p, px) => p === 'A' && px.dark(7000))
    const [ao, bo] = await Promise.all([a.exited, b.exited])
    assert.equal(bo.code, 0, bo.out)
    const writes = await assertTakenOver(ns, ao, pa, LEASE)
    assert.deepEqual(writes, [], 'A wrote nothing: its write went into the dark and was never sent again')
    fig.reproductions.partition = (fig.reproductions.partition || 0) + 1
  }
})

test('paused holder: its write is applied and answered while it is SIGSTOPped; after SIGCONT it never re-sends over the new holder’s value and exits LOCK_LOST', async () => {
  const LEASE = 3000
  for (let run = 0; run < REPEAT; run++) {
    // A's write is held up 1.5 s on the way (B's is not: count 1).
    const ns = uniqueNs('paused')
    await lever(emu, 'PUT', 'delay', { method: 'PUT', path: `${SHIFT}/data/m1`, ns, ms: 1500, count: 1 })
    const { a, b, pa } = await holderAndTaker(ns, LEASE)
    await until(async () => (await lever(emu, 'GET', 'delay'))?.waiting === 1, "A's write is on its way")
    a.child.kill('SIGSTOP')
    const bo = await b.exited
    assert.equal(bo.code, 0, bo.out)
    assert.equal((await rawGet(emu, ns, `${SHIFT}/data/m1`))?.owner, 'B', "B's value after A's write was applied")
    a.child.kill('SIGCONT')
    const ao = await a.exited
    await lever(emu, 'DELETE', 'delay')
    const writes = await assertTakenOver(ns, ao, pa, LEASE)
    assert.deepEqual(writes, [`PUT /${SHIFT}/data/m1`], 'only the held-up write, sent once, under the lease')
    fig.reproductions.paused = (fig.reproductions.paused || 0) + 1
  }
})

test('server fencing: a write held up on the way until after a takeover is refused by the database (401), whose rules are the ones rules:fencing prints; the data stays the new holder’s', async () => {
  const LEASE = 1500
  const ns = uniqueNs('srvfence')
  const dir = project(1, LEASE, { serverFencing: true })
  // The rules, as the command prints them for this project (shift `app`), loaded as they are.
  const printed = await helpers.cli(['rules:fencing'], { cwd: dir })
  assert.equal(printed.code, 0, printed.stderr)
  assert.match(printed.stdout, /auth\.msrLockEpoch === root\.child\('app\/migrations\/_lock\/epoch'\)\.val\(\)/)
  const put = await fetch(`${emu.url}/.settings/rules.json?ns=${ns}`, { method: 'PUT', headers: { authorization: 'Bearer owner' }, body: printed.stdout })
  assert.equal(put.status, 200, await put.text())
  // A's write is held up until the test lets it go (long ms, then DELETE); B's is not (count 1).
  await lever(emu, 'PUT', 'delay', { method: 'PUT', path: `${SHIFT}/data/m1`, ns, ms: 60000, count: 1 })
  const { a, b, pa } = await holderAndTaker(ns, LEASE, () => {}, dir)
  await until(async () => (await lever(emu, 'GET', 'delay'))?.waiting === 1, "A's write is on its way")
  a.child.kill('SIGSTOP')
  // A's lease runs out, B takes the lock over (epoch 2), runs and records the migration.
  const bo = await b.exited
  assert.equal(bo.code, 0, bo.out)
  assert.equal((await rawGet(emu, ns, `${SHIFT}/data/m1`))?.owner, 'B')
  // Now A's write (epoch 1) reaches the database: refused, nothing written.
  await lever(emu, 'DELETE', 'delay')
  const entry = await until(async () => {
    const { entries } = await lever(emu, 'GET', 'journal')
    return entries.find((e) => e.ns === ns && pa.peers.has(e.peer) && e.method === 'PUT' && e.path === `/${SHIFT}/data/m1` && e.status !== null)
  }, "A's held-up write answered")
  assert.equal(entry.status, 401, "A's late write refused by the rules")
  assert.equal((await rawGet(emu, ns, `${SHIFT}/data/m1`))?.owner, 'B', "B's value stands")
  a.child.kill('SIGCONT')
  const ao = await a.exited
  assert.equal(ao.code, 3, ao.out)
  const { lost, records } = await witness(ns)
  assert.deepEqual(lost, [])
  assert.deepEqual(
    records.map((r) => [r.executorId, r.lockEpoch]),
    [['pod-B', 2]],
  )
})

test('campaign: rounds of 3 racing pods, a fault on the holder right before its writes (partition, SIGSTOP, held-up write + SIGSTOP, lost answer + partition); 0 lost updates, 0 writes after a lease', async () => {
  const LEASE = 2500
  for (let round = 0; round < ROUNDS; round++) {
    const fault = FAULTS[round % FAULTS.length]
    const ns = uniqueNs(`camp-${fault}`)
    const dir = project(2, LEASE)
    const names = ['A', 'B', 'C']
    const pxs = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await proxy()])))
    const pods = {}
    const resumes = []
    let hit = null
    hooks.set(ns, async (p) => {
      if (hit) return
      hit = p
      const victim = pods[p]
      const resumeAfter = (ms) => resumes.push(sleep(ms).then(() => victim.child.kill('SIGCONT')))
      switch (fault) {
        case 'dark':
          pxs[p].dark(LEASE * 2.5)
          break
        case 'stop':
          // Paused while it waits for this answer: its next write comes after its lease.
          victim.child.kill('SIGSTOP')
          resumeAfter(LEASE * 2.5)
          break
        case 'delay-stop':
          await lever(emu, 'PUT', 'delay', { method: 'PUT', path: `${SHIFT}/data/m1`, ns, ms: 800, count: 1 })
          setTimeout(async () => {
            await until(async () => (await lever(emu, 'GET', 'delay'))?.waiting === 1, 'the held-up write', 5000).catch(() => {})
            victim.child.kill('SIGSTOP')
            resumeAfter(LEASE * 2.5)
          }, 0)
          break
        case 'lost-dark':
          // The write is applied and its answer lost; then the pod is cut off.
          await lever(emu, 'PUT', 'lost-responses', { count: 1, mode: 'drop' })
          setTimeout(() => pxs[p].dark(LEASE * 2.5), 30)
          break
      }
    })
    for (const n of names) pods[n] = pod(n, dir, ns, pxs[n])
    const outs = await Promise.all(names.map((n) => pods[n].exited))
    await Promise.all(resumes)
    await lever(emu, 'DELETE', 'delay')
    await lever(emu, 'DELETE', 'lost-responses')
    for (const o of outs) assert.ok([0, 3, 7].includes(o.code), o.out)
    // Whatever the faults stopped runs now, once, without faults.
    const finalPx = await proxy()
    const fin = await pod('Z', dir, ns, finalPx).exited
    assert.equal(fin.code, 0, fin.out)
    const { lost, records } = await witness(ns)
    fig.rounds += 1
    fig.faults[fault] = (fig.faults[fault] || 0) + 1
    fig.lostUpdates += lost.length
    fig.migrationsRecorded += records.length
    assert.deepEqual(lost, [], `round ${round} (${fault}, hit ${hit}):\n${outs.map((o) => o.out).join('\n')}`)
    assert.deepEqual(records.map((r) => r.timestamp).sort(), [202501010001, 202501010002], 'each migration recorded once')
    for (const n of names) {
      const j = await late(ns, pxs[n], LEASE)
      fig.lateWrites += j.late.length
      assert.deepEqual(j.late, [], `round ${round} (${fault}): pod ${n} wrote after its lease deadline ${j.deadline}`)
    }
    // Advice to mark a migration applied only when no other pod recorded it.
    for (const o of outs) {
      for (const [, v] of (o.failed?.message || '').matchAll(/--mark-applied (\d+)/g)) {
        const by = records.find((r) => String(r.timestamp) === v)?.executorId
        assert.ok(!by || by === 'pod-Z', `pod ${o.name} advised --mark-applied ${v}, recorded by ${by}:\n${o.out}`)
      }
    }
    const staleOut = outs.find((o) => o.name === hit)
    if (staleOut.code !== 0) fig.staleExits[staleOut.failed?.code] = (fig.staleExits[staleOut.failed?.code] || 0) + 1
    const lock = await lockNode(ns)
    assert.ok(!lock?.executorId, `no live lock: ${JSON.stringify(lock)}`)
  }
})
