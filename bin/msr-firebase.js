#!/usr/bin/env node
'use strict'
// msr-firebase: the CLI lives in Rust (clap, commands, output); this file only connects it to Node:
// a script host for config files and migration scripts, and signal forwarding.

// Without a native addon for this machine, say what is missing and how to fix it (exit 1, no stack).
require('../lib/native-loader.js').loadOrExit()
const { native, convert } = require('../lib/native.js')
const { createScriptHost, exitProcess } = require('../lib/host.js')
const { scriptContext } = require('../lib/script-context.js')
const { SIGNALS, forceExit } = require('../lib/signals.js')

// Scripts get the db of the command's runner (its connection fenced by its lease; a rehearsal's
// sandbox runner's), handed over with each script run.
const log = (level, message) => process.stderr.write(`${message}\n`)
const host = createScriptHost({ context: (nativeDb) => scriptContext(nativeDb, { log }) })

// The first SIGINT/SIGTERM stops the command after its current step (a wait for the lock ends at
// once); a second one releases the lock (bounded to 2 s) and exits 130/143.
let signalled = 0
for (const sig of SIGNALS) {
  process.on(sig, () => {
    signalled += 1
    if (signalled > 1) return forceExit(sig)
    native.cliSignal()
  })
}

native
  .runCli(process.argv.slice(2), host)
  .then((code) => {
    process.exitCode = code
    // Nothing else should keep the process alive once the command is done (not even a config
    // module still loading, whose process.exit() stays intercepted: the real one is used).
    setImmediate(() => exitProcess(code))
  })
  .catch((err) => {
    const e = convert(err)
    console.error(`✗ ${e && e.message ? e.message : e}`)
    exitProcess(1)
  })
