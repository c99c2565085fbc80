'use strict'
// Preloaded into bench child processes (`node -r ./bench/peak.js ...`): prints the process's peak
// resident memory (VmHWM) on stderr as it exits.
const fs = require('node:fs')

process.on('exit', () => {
  try {
    const hwm = /VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))
    if (hwm) process.stderr.write(`PEAK_RSS_KB=${hwm[1]}\n`)
  } catch {}
})
