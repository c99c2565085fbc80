'use strict'
// The chunked-delete half of `npm run bench`: `remove()` of BENCH_CHUNKED_USERS users (default
// 1M) through the scripts' `db`, side by side: on a database without a write-size limit (one
// DELETE), and on one whose default limit (`small`, 10 MB for 1M users) refuses the DELETE, so
// the node goes in chunks under `writeSizeLimit=tiny` (1 MB for 1M users). One emulator process holds both namespaces;
// each side runs in its own process (time, peak RSS); the requests are the emulator's counts.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { writeImport, startEmulatorProcess, side, mb, ratio } = require('./big.js')

const SIDE = path.join(__dirname, 'chunked-remove.js')

async function remove(emu, ns) {
  const { out, peakKb } = await side(emu, [SIDE, emu.db(ns)])
  if (out.left) throw new Error(`${ns}: users still there after remove()`)
  const c = await emu.lever('GET', 'requests')
  const users = Object.entries(c.byPath)
    .filter(([k]) => k.endsWith(' /users'))
    .reduce((n, [, v]) => n + v, 0)
  return { ...out, peakKb, requests: users - 1 } // the check that it is gone left out
}

async function chunkedCost() {
  const users = Number(process.env.BENCH_CHUNKED_USERS || process.env.BENCH_USERS || 1_000_000)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-bench-chunked-'))
  try {
    const file = path.join(dir, 'import.json')
    await writeImport(file, { plain: users, limited: users })
    const bytes = fs.statSync(file).size / 2
    const emu = await startEmulatorProcess(file)
    fs.rmSync(file)
    try {
      // The emulator's budgets (1 MB per second of the service's target time) scaled to the data,
      // so a smaller BENCH_CHUNKED_USERS meets the same limits: 1M users are 10x small, 100x tiny.
      const scale = users / 1_000_000
      await emu.lever('PUT', 'write-size-limit', {
        default: 'small',
        ns: 'limited',
        budgets: { tiny: Math.round(1024 * 1024 * scale), small: Math.round(10 * 1024 * 1024 * scale) },
      })
      const plain = await remove(emu, 'plain')
      const limited = await remove(emu, 'limited')
      if (limited.chunked !== limited.requests) throw new Error(`the log says ${limited.chunked} requests, the emulator counted ${limited.requests}`)
      return [
        {
          figure: `remove() of ${users} users (${mb(bytes / 1024)} MB), no write-size limit`,
          value: `${plain.ms.toFixed(0)} ms, ${plain.requests} request(s), client peak ${mb(plain.peakKb)} MB`,
          ratio: '1x',
        },
        {
          figure: 'the same over the write-size limit: in chunks under tiny',
          value: `${limited.ms.toFixed(0)} ms, ${limited.requests} requests (write.chunked), client peak ${mb(limited.peakKb)} MB`,
          ratio: `${ratio(limited.ms, plain.ms)}x time, ${ratio(limited.peakKb, plain.peakKb)}x peak RSS`,
        },
      ]
    } finally {
      await emu.stop()
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

module.exports = { chunkedCost }

if (require.main === module) {
  chunkedCost().then(
    (rows) => console.table(rows),
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
}
