'use strict'
// FirebaseRunner: the predecessor's JS API over the Rust runner.

const { native, call, callSync, codedError } = require('./native.js')
const { FirebaseConfig, toSettings, checkOptions } = require('./config.js')
const { guideStatus } = require('./locking.js')
const { createScriptHost } = require('./host.js')
const { scriptContext } = require('./script-context.js')
const { createDispatcher } = require('./hooks.js')
const signals = require('./signals.js')
const { FirebaseFleetRunner, isFleet } = require('./fleet.js')

const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 }

function consoleLogger(level) {
  const max = LEVELS[level] ?? LEVELS.info
  return (lvl, msg) => {
    if ((LEVELS[lvl] ?? 2) > max) return
    if (lvl === 'error') console.error(msg)
    else if (lvl === 'warn') console.warn(msg)
    else console.log(msg)
  }
}

function toLogFn(logger, level) {
  if (!logger) return consoleLogger(level)
  if (typeof logger === 'function') return logger
  return (lvl, msg) => {
    const f = logger[lvl] || logger.log || logger.info
    if (typeof f === 'function') f.call(logger, msg)
  }
}

/** A target version (a number or its digits), checked by the core; null when none is given. */
function toTarget(v, allowZero = false) {
  if (v === undefined || v === null) return null
  return callSync(() => native.parseTarget(String(v), allowZero))
}

/** `{ version, timeout }` for status() / waitUntilMigrated(), checked by the core. */
function statusOptions(options, what) {
  checkOptions(what, options)
  const { version, timeout } = options ?? {}
  return { version: toTarget(version) ?? undefined, timeout: timeout ?? undefined }
}

const refuseBackup = () => Promise.reject(codedError('CONFIG_INVALID', 'handler.backup is not available during a rehearsal (the runner takes its own backup of the copy)'))

class FirebaseRunner {
  /**
   * Connect (emulator or service account) and build the runner.
   * options: `{ config, logger, hooks, metricsCollectors }` — `config` a FirebaseConfig or a
   * plain object; `logger` a function `(level, message)` or an object with info/warn/error/debug;
   * `hooks` the predecessor's hooks (onStart, onBeforeMigrate, ..., plus the lock hooks), an
   * object or an array of them; `metricsCollectors` the predecessor's collectors.
   */
  static async getInstance(options = {}) {
    checkOptions('getInstance()', options)
    const config = options.config instanceof FirebaseConfig ? options.config : new FirebaseConfig(toSettings(options.config, 'getInstance({ config }): config'))
    const settings = toSettings(config)
    let runner
    const host = createScriptHost({ context: (nativeDb) => runner._scriptContext(nativeDb) })
    const log = toLogFn(options.logger, settings.logLevel)
    const events = createDispatcher({ hooks: options.hooks, metricsCollectors: options.metricsCollectors, warn: (m) => log('warn', m) })
    if (isFleet(settings)) {
      // Many databases: one runner per database, results per database (lib/fleet.js).
      const nat = await call(() => native.createFleet(settings, process.cwd(), host, log, events))
      runner = new FirebaseFleetRunner(nat, log)
      return runner
    }
    const nat = await call(() => native.createRunner(settings, process.cwd(), host, log, events))
    runner = new FirebaseRunner(nat, config)
    runner._log = log
    return runner
  }

  constructor(nativeRunner, config) {
    this._native = nativeRunner
    this._config = config
    this._context = null
  }

  /** The same handler every time: `{ cfg, db, lockingService, backup, getName(), getVersion() }`. */
  getHandler() {
    return this._ownContext().handler
  }

  /** This runner's scripts' `{ db, handler }`, built once. */
  _ownContext() {
    if (!this._context) {
      const runner = this
      const nativeDb = this._native.scriptDb
      this._context = {
        id: nativeDb.id,
        ...scriptContext(nativeDb, {
          cfg: this._config,
          log: this._log,
          backup: {
            backup: () => runner.createBackup(),
            restore: (path) => runner.restoreFromBackup(path),
          },
        }),
      }
    }
    return this._context
  }

  /** What the scripts of the runner owning `nativeDb` get: this runner's own `db` and handler,
   * or during a rehearsal the sandbox runner's (there `handler.backup` is refused). */
  _scriptContext(nativeDb) {
    const own = this._ownContext()
    if (nativeDb.id === own.id) return own
    return scriptContext(nativeDb, { log: this._log, backup: { backup: refuseBackup, restore: refuseBackup } })
  }

  /** The firebase-admin-like Database (`db.database`). */
  getDatabase() {
    return this.getHandler().db.database
  }

  /** `{ databaseUrl, shift, tableName }` */
  getConnectionInfo() {
    return this._native.connectionInfo()
  }

  async _locked(fn) {
    const stop = signals.trap({ onSignal: () => this._native.requestStop() })
    try {
      return await fn()
    } finally {
      stop.done()
    }
  }

  /**
   * Run pending migrations (up to `targetVersion` when given), under the lock when locking is
   * enabled. Resolves `{ success, executed, migrated, ignored, errors }`.
   */
  async migrate(targetVersion, options = {}) {
    checkOptions('migrate()', options)
    const target = toTarget(targetVersion)
    // napi's Option<f64> takes undefined, not null: pass the target only when there is one.
    return this._locked(() => call(() => this._native.migrate({ ...options, target: target ?? undefined })))
  }

  up(targetVersion, options) {
    return this.migrate(targetVersion, options)
  }

  /**
   * Roll back executed migrations newer than `targetVersion` (running their `down`), or the
   * newest `options.steps` of them: `down(null, { steps: 1 })`.
   */
  async down(targetVersion, options = {}) {
    checkOptions('down()', options)
    const target = toTarget(targetVersion, true)
    // Neither a target nor steps (or both): refused by the core's one rule (CONFIG_INVALID).
    return this._locked(() => call(() => this._native.down({ ...options, target: target ?? undefined })))
  }

  list() {
    return call(() => this._native.list())
  }

  validate() {
    return call(() => this._native.validate())
  }

  /**
   * Rehearse the pending migrations on a copy of the data in an embedded emulator and report
   * what each would change: `{ target, fromBackup, down, keep, examples, noLock, rules, strict }`. The database
   * is only read (a walk of the shift subtree), or not at all with `fromBackup`. Resolves with
   * the report (`success: false` when a migration failed or a down does not undo its up);
   * rejects when there is nothing to rehearse on (bad input, the source unreadable).
   */
  async rehearse(options = {}) {
    checkOptions('rehearse()', options)
    const target = toTarget(options.target)
    const opts = { ...options, target: target ?? undefined }
    if (opts.fromBackup != null) opts.fromBackup = String(opts.fromBackup)
    if (opts.keep != null) opts.keep = String(opts.keep)
    if (opts.rules != null) opts.rules = String(opts.rules)
    return this._locked(() => call(() => this._native.rehearse(opts)))
  }

  /** Back up the shift subtree to a JSON file; resolves with its path. */
  createBackup() {
    return call(() => this._native.createBackup())
  }

  restoreFromBackup(path) {
    if (!path) return Promise.reject(codedError('RESTORE_FAILED', 'restoreFromBackup(path) needs the backup file to restore'))
    return call(() => this._native.restoreFromBackup(String(path)))
  }

  listNodes() {
    return call(() => this._native.listNodes())
  }

  backupNodes(nodes) {
    if (!Array.isArray(nodes)) {
      return Promise.reject(codedError('CONFIG_INVALID', `backupNodes(nodes) takes an array of node names, e.g. ['users', 'posts'] (got ${typeof nodes})`))
    }
    return call(() => this._native.backupNodes(nodes.map(String)))
  }

  /**
   * Where the database stands for this app, from live views of the history and the lock node
   * (each read once through its event stream, then kept current from it: no request per call):
   * `{ appliedVersion, appliedCount, pending: [{ version, name }], neededVersion, upToDate, lock,
   * current, reason, lastRun }`. `version`: the version the app needs (default: the newest
   * migration in its folder); `timeout`: ms to wait for current values (default 1500), after
   * which the last values known come back with `current: false` and the `reason`.
   */
  async status(options = {}) {
    const s = await call(() => this._native.status(statusOptions(options, 'status()')))
    return { ...s, lock: guideStatus(s.lock) }
  }

  /**
   * Resolves (with `status()`) once the history shows every migration the app needs (`version`,
   * default the newest migration in its folder), following the history node's event stream;
   * rejects with MIGRATIONS_PENDING naming the pending versions when `timeout` ms pass first
   * (default: no limit).
   */
  async waitUntilMigrated(options = {}) {
    const s = await call(() => this._native.waitUntilMigrated(statusOptions(options, 'waitUntilMigrated()')))
    return { ...s, lock: guideStatus(s.lock) }
  }

  async getLockStatus() {
    const ls = this.getHandler().lockingService
    return ls ? ls.getLockStatus() : null
  }

  async forceReleaseLock() {
    const ls = this.getHandler().lockingService
    if (!ls) throw codedError('CONFIG_INVALID', 'Locking is not enabled (set locking.enabled = true); there is no migration lock to release')
    return ls.forceReleaseLock()
  }
}

module.exports = { FirebaseRunner, consoleLogger }
