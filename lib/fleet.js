'use strict'
// FirebaseFleetRunner: many databases in one run (`databases` / `databaseUrls` in the config), over
// the core's fleet (napi/src/fleet.rs): one runner per database — its own lock, history, `db` and
// handler — `concurrency` at a time, `failFast` as configured. migrate(), down(), list() and
// rehearse() resolve with `{ databases: [{ name, databaseUrl, status, durationMs, requests,
// executed, pending, result | error }], summary }`; they do not reject for one database's failure.

const { native, call, callSync, codedError } = require('./native.js')
const { checkOptions } = require('./config.js')
const { scriptContext } = require('./script-context.js')
const signals = require('./signals.js')

/** A target version (a number or its digits), checked by the core; null when none is given. */
function toTarget(v, allowZero = false) {
  if (v === undefined || v === null) return null
  return callSync(() => native.parseTarget(String(v), allowZero))
}

/** `databases`: which databases (names) a call runs on; all when absent. */
function pick(databases, what) {
  if (databases === undefined || databases === null) return undefined
  const list = Array.isArray(databases) ? databases : [databases]
  if (!list.every((n) => typeof n === 'string')) {
    throw codedError('CONFIG_INVALID', `${what}: databases must be a database name or an array of names (got ${typeof databases})`)
  }
  return list
}

/** A result's databases' errors as Errors with `code` and `exitCode`, like every other error of the API. */
function withErrors(run) {
  for (const d of run.databases) {
    if (d.error) {
      const e = codedError(d.error.code, d.error.message)
      e.exitCode = d.error.exitCode
      d.error = e
    }
  }
  return run
}

class FirebaseFleetRunner {
  constructor(nativeFleet, log) {
    this._native = nativeFleet
    this._log = log
    this._contexts = new Map()
  }

  /** The databases' names, in configured order. */
  get databases() {
    return this._native.names
  }

  /**
   * One database's handler (`{ cfg, db, lockingService, backup, ... }`): its own connection, lock
   * service and settings. `getHandler()` without a name works when there is one database.
   */
  getHandler(name) {
    if (name === undefined) {
      const names = this.databases
      if (names.length !== 1) {
        throw codedError('CONFIG_INVALID', `getHandler(name): this runner has ${names.length} databases (${names.join(', ')}); name one`)
      }
      name = names[0]
    }
    return this._context(String(name)).handler
  }

  _context(name) {
    let ctx = this._contexts.get(name)
    if (!ctx) {
      const nativeDb = this._native.scriptDb(name)
      ctx = { id: nativeDb.id, ...scriptContext(nativeDb, { log: this._log }) }
      this._contexts.set(name, ctx)
    }
    return ctx
  }

  /** What the scripts of the runner owning `nativeDb` get: that database's `db` and handler. */
  _scriptContext(nativeDb) {
    for (const ctx of this._contexts.values()) if (ctx.id === nativeDb.id) return ctx
    const ctx = { id: nativeDb.id, ...scriptContext(nativeDb, { log: this._log }) }
    return ctx
  }

  async _each(fn) {
    const stop = signals.trap({ onSignal: () => this._native.requestStop() })
    try {
      return withErrors(await call(fn))
    } finally {
      stop.done()
    }
  }

  /**
   * Pending migrations (up to `targetVersion`) on every database, or on `options.databases`
   * (a name or names): `{ databases, summary }`.
   */
  migrate(targetVersion, options = {}) {
    const { databases, ...rest } = options ?? {}
    checkOptions('migrate()', rest)
    const names = pick(databases, 'migrate()')
    const target = toTarget(targetVersion)
    return this._each(() => this._native.migrate({ ...rest, target: target ?? undefined }, names))
  }

  up(targetVersion, options) {
    return this.migrate(targetVersion, options)
  }

  /** `down(targetVersion)` or `down(null, { steps })` on every database (or `options.databases`). */
  down(targetVersion, options = {}) {
    const { databases, ...rest } = options ?? {}
    checkOptions('down()', rest)
    const names = pick(databases, 'down()')
    const target = toTarget(targetVersion, true)
    return this._each(() => this._native.down({ ...rest, target: target ?? undefined }, names))
  }

  list(options = {}) {
    return this._each(() => this._native.list(pick(options?.databases, 'list()')))
  }

  rehearse(options = {}) {
    const { databases, ...rest } = options ?? {}
    checkOptions('rehearse()', rest)
    const target = toTarget(rest.target)
    const opts = { ...rest, target: target ?? undefined }
    for (const k of ['fromBackup', 'keep', 'rules']) if (opts[k] != null) opts[k] = String(opts[k])
    return this._each(() => this._native.rehearse(opts, pick(databases, 'rehearse()')))
  }
}

/** True when `settings` name a set of databases. */
function isFleet(settings) {
  const set = (v) => Array.isArray(v) && v.length > 0
  return set(settings.databases) || set(settings.databaseUrls)
}

module.exports = { FirebaseFleetRunner, isFleet }
