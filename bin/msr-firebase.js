#!/usr/bin/env node
'use strict'
// msr-firebase: the CLI lives in Rust (clap, commands, output); this file only connects it to Node:
// a script host for config files and migration scripts, and signal forwarding.

// Without a native addon for this machine, say what is missing and how to fix it (exit 1, no stack).
require('../lib/native-loader.js').loadOrExit()
const { native, call, convert } = require('../lib/native.js')
const { createScriptHost } = require('../lib/host.js')
const { FirebaseConfig } = require('../lib/config.js')
const { createHandler } = require('../lib/runner.js')

let context = null
let settings = null
const host = createScriptHost({
  init: async (req) => {
    settings = req
  },
  context: async () => {
    if (!context) {
      const nativeDatabase = await call(() => native.connectDatabase(settings.config, settings.cwd || process.cwd()))
      const cfg = new FirebaseConfig(settings.config)
      const nativeLock = cfg.locking && cfg.locking.enabled ? native.createLockingService(nativeDatabase, settings.config) : null
      const log = (level, message) => process.stderr.write(`${message}\n`)
      const handler = createHandler({ cfg, nativeDatabase, nativeLock, log })
      context = { db: handler.db, handler }
    }
    return context
  },
})

let signalled = 0
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    signalled += 1
    if (signalled > 1) process.exit(sig === 'SIGINT' ? 130 : 143)
    native.cliSignal()
  })
}

native
  .runCli(process.argv.slice(2), host)
  .then((code) => {
    process.exitCode = code
    // Nothing else should keep the process alive once the command is done.
    setImmediate(() => process.exit(code))
  })
  .catch((err) => {
    const e = convert(err)
    console.error(`✗ ${e && e.message ? e.message : e}`)
    process.exit(1)
  })
