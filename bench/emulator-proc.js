'use strict'
// A bench emulator in its own process (so its memory is measured apart from the client's):
// `node bench/emulator-proc.js [importFile]` prints one JSON line { url, hostPort, importMs }
// and runs until stdin closes.
const { startEmulator } = require('..')

async function main() {
  const t0 = process.hrtime.bigint()
  const emu = await startEmulator({ importFile: process.argv[2] || undefined })
  const importMs = Number(process.hrtime.bigint() - t0) / 1e6
  process.stdout.write(`${JSON.stringify({ url: emu.url, hostPort: emu.hostPort, importMs })}\n`)
  process.stdin.resume()
  process.stdin.on('end', async () => {
    await emu.stop()
    process.exit(0)
  })
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
