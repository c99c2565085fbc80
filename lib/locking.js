'use strict'
// `handler.lockingService`: the guide's lock API over the Rust lock, plus `runExclusive`.

const { native, call, codedError } = require('./native.js')
const signals = require('./signals.js')
const { checkOptions } = require('./config.js')

function toStatus(s) {
  if (!s) return null
  return {
    isLocked: s.isLocked,
    lockedBy: s.lockedBy,
    lockedAt: new Date(s.lockedAt),
    expiresAt: new Date(s.expiresAt),
    processId: s.processId ?? null,
    hostname: s.hostname,
    epoch: s.epoch,
  }
}

class FirebaseLockingService {
  constructor(nativeLock) {
    this._native = nativeLock
  }
  /** Where the lock lives: `{shift}/migrations/_lock`. */
  get lockPath() {
    return this._native.path
  }
  /** True when this executor now holds the lock (atomic; never read-then-write). */
  acquireLock(executorId) {
    return call(() => this._native.acquireLock(executorId ?? null))
  }
  verifyLockOwnership(executorId) {
    return call(() => this._native.verifyLockOwnership(executorId ?? null))
  }
  /** Owner-checked; a no-op for anyone else. */
  async releaseLock(executorId) {
    await call(() => this._native.releaseLock(executorId ?? null))
  }
  /** `{ isLocked, lockedBy, lockedAt: Date, expiresAt: Date, processId }`, or null when unlocked. */
  async getLockStatus() {
    const s = await call(() => this._native.getLockStatus())
    return s && s.isLocked ? toStatus(s) : null
  }
  /** Removes any lock, whoever holds it. */
  async forceReleaseLock() {
    await call(() => this._native.forceReleaseLock())
  }
  async checkAndReleaseExpiredLock() {
    await call(() => this._native.checkAndReleaseExpiredLock())
  }
  async initLockStorage() {
    await call(() => this._native.initLockStorage())
  }
  ensureLockStorageAccessible() {
    return call(() => this._native.ensureLockStorageAccessible())
  }

  /**
   * Run `work(lock)` while holding the lock: acquire (per `options`: `{ wait, waitTimeout }` or
   * `{ retryAttempts, retryDelay }`; default fail fast with LOCK_HELD), renew in the background,
   * release at the end, also on error. `lock.check()` rejects with LOCK_LOST once the lock is no
   * longer ours, and with INTERRUPTED after SIGINT/SIGTERM: call it between steps. On a signal the
   * lock is released before the process exits. `lock.database` is a firebase-admin-like Database
   * whose writes are fenced by this lock's lease: every attempt of every write (retries and
   * re-sends included) is refused with LOCK_LOST once the lease deadline has passed or the lock is
   * known lost, so work that writes through it never overwrites a new holder's data.
   */
  async runExclusive(work, options = {}) {
    if (typeof work !== 'function') throw codedError('CONFIG_INVALID', 'runExclusive(work, options) needs a function: runExclusive(async (lock) => { ... })')
    checkOptions('runExclusive()', options)
    const executorId = options.executorId ?? native.defaultExecutorId()
    const guard = await call(() =>
      this._native.acquireExclusive(executorId, {
        wait: options.wait,
        waitTimeout: options.waitTimeout,
        retryAttempts: options.retryAttempts,
        retryDelay: options.retryDelay,
      }),
    )
    const stop = signals.trap({ onForce: () => guard.release() })
    let database
    const lock = {
      executorId,
      epoch: guard.epoch,
      get database() {
        const { Database } = require('./database.js')
        return (database ??= new Database(guard.database()))
      },
      get stopRequested() {
        return stop.requested !== null
      },
      async check() {
        if (stop.requested) {
          throw codedError('INTERRUPTED', `Received ${stop.requested}: stopping before the next step; the migration lock is being released`)
        }
        await call(() => guard.check())
      },
    }
    try {
      return await work(lock)
    } finally {
      try {
        await call(() => guard.release())
      } finally {
        stop.done()
      }
    }
  }
}

module.exports = { FirebaseLockingService, toStatus }
