'use strict'
// startEmulator({ host, port, import, importFile, rules }) -> { url, host, port, hostPort, stop(), export() }

const { native, call } = require('./native.js')
const { checkOptions } = require('./config.js')

async function startEmulator(options = {}) {
  checkOptions('startEmulator()', options && typeof options === 'object' ? { ...options, import: null } : options)
  const emu = await call(() => native.startEmulator(options))
  return {
    url: emu.url,
    host: emu.host,
    port: emu.port,
    /** `host:port`, the value for FIREBASE_DATABASE_EMULATOR_HOST. */
    hostPort: `${emu.host}:${emu.port}`,
    databaseUrl: (ns = 'default') => `${emu.url}?ns=${encodeURIComponent(ns)}`,
    export: () => call(() => emu.export()),
    stop: () => call(() => emu.stop()),
  }
}

module.exports = { startEmulator }
