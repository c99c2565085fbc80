'use strict'
// Helpers for collections too big to read or write at once, on the `db.database` facade:
// - `ref.children({ pageSize })`: the children in key order as an async iterator of snapshots,
//   read one page at a time (the firebase-admin paging loop, orderByKey().startAfter(last)
//   .limitToFirst(n)), the next page read while the current one is used; memory holds two pages.
// - `db.bulkWriter({ maxBytes, maxEntries, inFlight })`: set/update/remove queued as multi-path
//   update entries, packed into PATCHes up to a byte and entry budget, a few in flight, in order
//   wherever paths overlap; progress and a summary go to the runner's logger. Shaped like
//   firebase-admin's Firestore BulkWriter (set/update/delete, flush, close).

const { call, codedError } = require('./native.js')

/** The reference a path or reference stands for (a path is relative to the root). */
function refOf(db, target) {
  return typeof target === 'string' ? db.ref(target) : target.ref
}

function positive(name, v, dflt) {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || Math.floor(v) !== v || v <= 0) {
    throw codedError('CONFIG_INVALID', `${name} must be a positive integer, got ${v}`)
  }
  return v
}

// ---------------------------------------------------------------------------------------------
// Reading in pages

async function* pages(ref, pageSize) {
  const { DataSnapshot } = require('./database.js')
  const nat = ref._db._native
  const read = (after) => call(() => nat.queryJson(ref._path, { orderBy: '$key', limitToFirst: pageSize, startAfter: after }))
  let next = read(undefined)
  try {
    for (;;) {
      const page = await next
      next = null
      if (page.keys.length === 0) return
      if (page.keys.length === pageSize) next = read(page.keys[page.keys.length - 1])
      const tree = JSON.parse(page.json)
      yield page.keys.map((k) => new DataSnapshot(ref._childUnchecked(k), { value: tree[k] }))
      if (!next) return
    }
  } finally {
    // Stopped early: a read in flight must not become an unhandled rejection.
    if (next) next.catch(() => {})
  }
}

/** `for await (const child of ref.children({ pageSize: 1000 }))` */
function children(ref, options = {}) {
  const pageSize = positive('children(): pageSize', options.pageSize, 1000)
  return {
    async *[Symbol.asyncIterator]() {
      for await (const page of pages(ref, pageSize)) yield* page
    },
    /** The same children, a page (an array of snapshots) at a time. */
    pages() {
      return pages(ref, pageSize)
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Writing in batches

/** A batch: entries `[path, json]` and the paths it touches, for overlap checks. */
class Batch {
  constructor() {
    this.entries = []
    this.bytes = 2
    this.paths = new Set()
    this.ancestors = new Set()
  }
  /** Would `path` (segments) overlap an entry here (one inside the other)? */
  overlaps(segs) {
    const p = segs.join('/')
    if (this.paths.has(p) || this.ancestors.has(p)) return true
    for (let i = 1; i < segs.length; i++) if (this.paths.has(segs.slice(0, i).join('/'))) return true
    return false
  }
  add(segs, json) {
    const p = segs.join('/')
    this.entries.push([p, json])
    this.bytes += p.length + json.length + 4
    this.paths.add(p)
    for (let i = 1; i < segs.length; i++) this.ancestors.add(segs.slice(0, i).join('/'))
  }
  body() {
    return `{${this.entries.map(([p, j]) => `${JSON.stringify(p)}:${j}`).join(',')}}`
  }
  overlapsBatch(other) {
    for (const [p] of this.entries) if (other.overlaps(p.split('/'))) return true
    return false
  }
}

class BulkWriter {
  constructor(db, options = {}) {
    this._db = db
    this._maxBytes = positive('bulkWriter(): maxBytes', options.maxBytes, 4 * 1024 * 1024)
    this._maxEntries = positive('bulkWriter(): maxEntries', options.maxEntries, 10000)
    this._inFlight = positive('bulkWriter(): inFlight', options.inFlight, 4)
    this._logEvery = positive('bulkWriter(): logEveryMs', options.logEveryMs, 10000)
    this._log = typeof options.log === 'function' ? options.log : db._log
    this._current = new Batch()
    this._queue = [] // sealed, not sent yet
    this._running = new Set() // batches in flight
    this._waiters = [] // resolvers waiting for room or for the end
    this._error = null
    this._closed = false
    this._stats = { writes: 0, batches: 0, bytes: 0 }
    this._started = Date.now()
    this._lastLog = this._started
  }
  /** Replace the node at `target` (a reference or a path) with `value`. */
  set(target, value) {
    const { encode } = require('./database.js')
    const ref = refOf(this._db, target)
    return this._entry(ref._path, encode('BulkWriter.set', 'value', value, ref._path))
  }
  /** Write the children of `values` below `target` (each key may be a path), like ref.update(). */
  update(target, values) {
    const { encodeUpdate, join } = require('./database.js')
    const ref = refOf(this._db, target)
    encodeUpdate('BulkWriter.update', ref._path, values) // checks the keys and values
    let last = Promise.resolve()
    for (const key of Object.keys(values)) {
      const rel = key.split('/').filter((s) => s.length > 0).join('/')
      last = this._entry(join(ref._path, rel), JSON.stringify(values[key]))
    }
    return last
  }
  /** Delete the node at `target`. */
  delete(target) {
    return this._entry(refOf(this._db, target)._path, 'null')
  }
  remove(target) {
    return this.delete(target)
  }
  /** Send what is queued and wait until everything written so far is written. */
  async flush() {
    this._seal()
    await this._idle()
    if (this._error) throw this._error
  }
  /** `flush()`, then no more writes; resolves `{ writes, batches, bytes }`. */
  async close() {
    this._closed = true
    await this.flush()
    this._report(true)
    return { ...this._stats }
  }

  /**
   * Queue one entry. The promise resolves once it is queued with room to spare (it waits while
   * `inFlight` batches are in flight and as many are queued), so awaiting each call keeps memory
   * bounded; `flush()`/`close()` resolve once it is written. It never rejects: a failed batch
   * makes the next call throw, and flush/close reject.
   */
  _entry(path, json) {
    if (this._closed) throw codedError('BAD_REQUEST', 'BulkWriter: the writer is closed')
    // A failed batch surfaces at the next call (and at flush/close), never as a stray rejection.
    if (this._error) throw this._error
    if (path === '') throw codedError('BAD_REQUEST', 'BulkWriter: the root itself cannot be an entry; write below it')
    const segs = path.split('/')
    const entryBytes = path.length + json.length + 4
    const cur = this._current
    if (cur.entries.length > 0 && (cur.overlaps(segs) || cur.bytes + entryBytes > this._maxBytes || cur.entries.length >= this._maxEntries)) {
      this._seal()
    }
    this._current.add(segs, json)
    this._pump()
    if (this._queue.length < this._inFlight) return Promise.resolve()
    return new Promise((resolve) => this._waiters.push({ room: true, resolve }))
  }
  _seal() {
    if (this._current.entries.length === 0) return
    this._queue.push(this._current)
    this._current = new Batch()
    this._pump()
  }
  /** Start queued batches: in order, at most `inFlight`, never one overlapping a batch in flight. */
  _pump() {
    while (this._queue.length > 0 && this._running.size < this._inFlight && !this._error) {
      const next = this._queue[0]
      for (const r of this._running) if (next.overlapsBatch(r)) return
      this._queue.shift()
      this._send(next)
    }
  }
  _send(batch) {
    this._running.add(batch)
    const body = batch.body()
    call(() => this._db._native.updateJson('', body)).then(
      () => {
        this._running.delete(batch)
        this._stats.writes += batch.entries.length
        this._stats.batches += 1
        this._stats.bytes += body.length
        this._report(false)
        this._pump()
        this._wake()
      },
      (err) => {
        this._running.delete(batch)
        if (!this._error) {
          const first = batch.entries[0][0]
          this._error = codedError(
            err.code || 'WRITE_FAILED',
            `BulkWriter: a batch of ${batch.entries.length} writes (from /${first}) failed after ${this._stats.writes} writes in ${this._stats.batches} batches had been written: ${err.message}`,
            err,
          )
        }
        this._wake()
      },
    )
  }
  _wake() {
    const waiting = this._waiters
    this._waiters = []
    for (const w of waiting) {
      if (w.room && !this._error && this._queue.length >= this._inFlight) this._waiters.push(w)
      else if (!w.room && !this._error && (this._running.size > 0 || this._queue.length > 0)) this._waiters.push(w)
      else w.resolve()
    }
  }
  _idle() {
    if (this._running.size === 0 && (this._queue.length === 0 || this._error)) return Promise.resolve()
    return new Promise((resolve) => this._waiters.push({ room: false, resolve }))
  }
  _report(final) {
    const now = Date.now()
    if (!final && now - this._lastLog < this._logEvery) return
    this._lastLog = now
    const s = this._stats
    const secs = Math.max((now - this._started) / 1000, 0.001)
    this._log(
      'info',
      `BulkWriter: ${s.writes.toLocaleString('en-US')} writes in ${s.batches} batches (${(s.bytes / 1e6).toFixed(1)} MB, ${Math.round(s.writes / secs).toLocaleString('en-US')} writes/s)${final ? ', done' : ''}`,
    )
  }
}

function bulkWriter(db, options) {
  return new BulkWriter(db, options)
}

module.exports = { children, bulkWriter, BulkWriter }
