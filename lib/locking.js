'use strict'
// `handler.lockingService`: the guide's lock API over the Rust lock, plus `runExclusive`.

const { EventEmitter } = require('node:events')
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

/** A native status as the guide shows it: null when free (or the holder's lease ran out). */
function guideStatus(s) {
  return s && s.isLocked ? toStatus(s) : null
}

const sameStatus = (a, b) => JSON.stringify(a) === JSON.stringify(b)

/**
 * `lockingService.watchLockStatus()`: the lock's status kept current from the lock node's event
 * stream (no request per read). An EventEmitter (`change` with the new status, or null when
 * free) and an async iterator (the status now, then every change); `status` is the last one
 * known, `current` whether it is current (`reason` says why not); `close()` stops it.
 */
class LockStatusWatch extends EventEmitter {
  constructor(nativeLock) {
    super()
    this._status = undefined
    this._current = false
    this._reason = null
    this._closed = false
    this._queue = []
    this._waiters = []
    this._native = nativeLock.watchLockStatus((u) => this._update(u))
  }
  _update(u) {
    if (this._closed) return
    const status = guideStatus(u.status)
    const first = this._status === undefined
    this._current = u.current
    this._reason = u.reason
    if (!first && sameStatus(status, this._status)) return
    this._status = status
    this.emit('change', status)
    const waiter = this._waiters.shift()
    if (waiter) waiter({ value: status, done: false })
    else this._queue.push(status)
  }
  /** The last status known (`undefined` before the first answer). */
  get status() {
    return this._status
  }
  /** Whether `status` is current (the event stream open, or the last read answered). */
  get current() {
    return this._current
  }
  /** Why `status` is not current (null when it is). */
  get reason() {
    return this._reason
  }
  close() {
    if (this._closed) return
    this._closed = true
    this._native.close()
    for (const w of this._waiters.splice(0)) w({ value: undefined, done: true })
    this._queue = []
  }
  [Symbol.asyncIterator]() {
    return {
      next: () => {
        if (this._queue.length) return Promise.resolve({ value: this._queue.shift(), done: false })
        if (this._closed) return Promise.resolve({ value: undefined, done: true })
        return new Promise((resolve) => this._waiters.push(resolve))
      },
      return: () => {
        this.close()
        return Promise.resolve({ value: undefined, done: true })
      },
      [Symbol.asyncIterator]() {
        return this
      },
    }
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
  /**
   * `{ isLocked, lockedBy, lockedAt: Date, expiresAt: Date, processId }`, or null when unlocked.
   * One read of the lock node; with `{ cached: true }` the answer comes from the lock node's live
   * view (its event stream, opened by the first such call and kept open: no request per call),
   * or from one read when the view is not current within `timeout` ms (default 2000).
   */
  async getLockStatus(options = {}) {
    checkOptions('getLockStatus()', options)
    const { cached = false, timeout = 2000 } = options ?? {}
    const s = await call(() => (cached ? this._native.getCachedLockStatus(timeout) : this._native.getLockStatus()))
    return guideStatus(s)
  }
  /**
   * The lock's status as it changes, from the lock node's event stream (keep-alives checked,
   * reconnects with backoff, reads every few seconds where streams are refused): no request per
   * read. `watch.on('change', (status) => ...)`, or `for await (const status of watch)`;
   * `watch.close()` when done.
   */
  watchLockStatus() {
    return new LockStatusWatch(this._native)
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

module.exports = { FirebaseLockingService, LockStatusWatch, toStatus, guideStatus }
