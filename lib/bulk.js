'use strict'
// Helpers for collections too big to read or write at once, on the `db.database` facade:
// - `ref.children({ pageSize })`: the children in key order as an async iterator of snapshots,
//   read one page at a time (the firebase-admin paging loop, orderByKey().startAfter(last)
//   .limitToFirst(n)), the next page read while the current one is used; memory holds two pages.
// - `db.bulkWriter({ maxBytes, maxEntries, inFlight, disableTriggers })`: set/update/remove queued
//   as multi-path update entries, packed into PATCHes up to a byte and entry budget, a few in
//   flight, in order wherever paths overlap; progress and a summary go to the runner's logger;
//   `disableTriggers` (true/false) overrides `writes.disableTriggers` for this writer's PATCHes.
//   Shaped like firebase-admin's Firestore BulkWriter (set/update/delete, flush, close).

const { call, codedError } = require('./native.js')

// database.js requires this module lazily; its exports are looked up once, on first use.
let dbModule = null
const database = () => dbModule || (dbModule = require('./database.js'))

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
  const { DataSnapshot } = database()
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

/** One child of an update, checked like ref.update() checks it. */
function encode1(path, key, value) {
  const { encode, INVALID_KEY } = database()
  if (key.length === 0 || INVALID_KEY.test(key)) {
    throw codedError(
      'BAD_REQUEST',
      `BulkWriter.update failed: values argument contains an invalid key (${key}) in path /${key}. Keys must be non-empty strings and can't contain ".", "#", "$", "/", "[", or "]"`,
    )
  }
  return encode('BulkWriter.update', 'values', value, path ? `${path}/${key}` : key)
}

/** A batch: entries `[path, json]` and the paths it touches, for overlap checks. */
class Batch {
  constructor() {
    this.paths = []
    this.jsons = []
    this.bytes = 2
    this.written = new Set()
    this.ancestors = new Set()
  }
  get size() {
    return this.paths.length
  }
  /** Would `path` overlap an entry here (one inside the other, or the same)? */
  overlaps(path) {
    if (this.written.has(path) || this.ancestors.has(path)) return true
    for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
      if (this.written.has(path.slice(0, i))) return true
    }
    return false
  }
  add(path, json) {
    this.paths.push(path)
    this.jsons.push(json)
    this.bytes += path.length + json.length + 4
    this.written.add(path)
    for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
      const a = path.slice(0, i)
      if (this.ancestors.has(a)) break // and so are all of its own ancestors
      this.ancestors.add(a)
    }
  }
  body() {
    let out = '{'
    for (let i = 0; i < this.paths.length; i++) out += `${i ? ',' : ''}${JSON.stringify(this.paths[i])}:${this.jsons[i]}`
    return `${out}}`
  }
  overlapsBatch(other) {
    for (const p of this.paths) if (other.overlaps(p)) return true
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
    const triggers = options.disableTriggers
    if (triggers !== undefined && typeof triggers !== 'boolean') {
      throw codedError('CONFIG_INVALID', `bulkWriter(): disableTriggers must be true or false, got ${typeof triggers} ${String(triggers)}`)
    }
    // The connection this writer's PATCHes go through: the db's, or the same with its own trigger setting.
    this._native = triggers === undefined ? db._native : db._native.withDisableTriggers(triggers)
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
    const { encode } = database()
    const ref = refOf(this._db, target)
    return this._entry(ref._path, encode('BulkWriter.set', 'value', value, ref._path))
  }
  /** Write the children of `values` below `target` (each key may be a path), like ref.update(). */
  update(target, values) {
    const { checkUpdate, join } = database()
    const ref = refOf(this._db, target)
    const keys = values !== null && typeof values === 'object' && !Array.isArray(values) ? Object.keys(values) : null
    if (keys !== null && keys.length === 1 && !keys[0].includes('/')) {
      return this._entry(join(ref._path, keys[0]), encode1(ref._path, keys[0], values[keys[0]]))
    }
    const paths = checkUpdate('BulkWriter.update', ref._path, values) // checks the keys, values and overlaps
    let last = Promise.resolve()
    for (let i = 0; i < keys.length; i++) last = this._entry(join(ref._path, paths[i]), JSON.stringify(values[keys[i]]))
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
    const entryBytes = path.length + json.length + 4
    const cur = this._current
    if (cur.size > 0 && (cur.bytes + entryBytes > this._maxBytes || cur.size >= this._maxEntries || cur.overlaps(path))) {
      this._seal()
    }
    this._current.add(path, json)
    this._pump()
    if (this._queue.length < this._inFlight) return Promise.resolve()
    return new Promise((resolve) => this._waiters.push({ room: true, resolve }))
  }
  _seal() {
    if (this._current.size === 0) return
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
    call(() => this._native.updateJson('', body)).then(
      () => {
        this._running.delete(batch)
        this._stats.writes += batch.size
        this._stats.batches += 1
        this._stats.bytes += body.length
        this._report(false)
        this._pump()
        this._wake()
      },
      (err) => {
        this._running.delete(batch)
        if (!this._error) {
          const first = batch.paths[0]
          this._error = codedError(
            err.code || 'WRITE_FAILED',
            `BulkWriter: a batch of ${batch.size} writes (from /${first}) failed after ${this._stats.writes} writes in ${this._stats.batches} batches had been written: ${err.message}`,
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
