'use strict'
// The firebase-admin `Database` subset migration scripts use (`db.database`), backed by the Rust
// REST client. Reads, writes, queries and transactions are real REST requests; query results come
// back from Rust already in RTDB order.

const { native, call, callSync, codedError } = require('./native.js')

const ServerValue = Object.freeze({
  TIMESTAMP: Object.freeze({ '.sv': 'timestamp' }),
  increment: (delta) => ({ '.sv': { increment: delta } }),
})

function normalize(path) {
  return String(path ?? '')
    .split('/')
    .filter((s) => s.length > 0)
    .join('/')
}

function join(a, b) {
  return normalize(`${a}/${b}`)
}

// JSON semantics for written data, like firebase-admin: undefined is an error, Dates are not special.
function toJsonValue(value, what, path) {
  if (value === undefined) {
    throw codedError('BAD_REQUEST', `${what} at '/${path}' was called with undefined; pass null to delete`)
  }
  return JSON.parse(JSON.stringify(value))
}

class DataSnapshot {
  constructor(ref, value, ordered) {
    this.ref = ref
    this.key = ref.key
    this._value = value === undefined ? null : value
    this._ordered = ordered // [[key, value], ...] from a query, in RTDB order
  }
  val() {
    return this._value === null ? null : structuredClone(this._value)
  }
  exportVal() {
    return this.val()
  }
  toJSON() {
    return this.val()
  }
  exists() {
    return this._value !== null
  }
  _entries() {
    if (this._ordered) return this._ordered
    const v = this._value
    if (v === null || typeof v !== 'object') return []
    return native.orderedKeys(v).map((k) => [k, v[k]])
  }
  child(path) {
    const segs = normalize(path).split('/').filter(Boolean)
    let v = this._value
    for (const s of segs) v = v !== null && typeof v === 'object' && s in v ? v[s] : null
    return new DataSnapshot(this.ref.child(path), v)
  }
  hasChild(path) {
    return this.child(path).exists()
  }
  hasChildren() {
    return this.numChildren() > 0
  }
  numChildren() {
    return this._entries().length
  }
  /** Calls `action` for each child in order; stops when it returns true (and returns true). */
  forEach(action) {
    for (const [k, v] of this._entries()) {
      if (action(new DataSnapshot(this.ref.child(k), v)) === true) return true
    }
    return false
  }
}

class Query {
  constructor(db, path, params) {
    this._db = db
    this._path = normalize(path)
    this._params = params || {}
  }
  get ref() {
    return new Reference(this._db, this._path)
  }
  _with(extra) {
    return new Query(this._db, this._path, { ...this._params, ...extra })
  }
  orderByChild(path) {
    return this._with({ orderBy: normalize(path) })
  }
  orderByKey() {
    return this._with({ orderBy: '$key' })
  }
  orderByValue() {
    return this._with({ orderBy: '$value' })
  }
  orderByPriority() {
    return this._with({ orderBy: '$priority' })
  }
  startAt(value) {
    return this._with({ startAt: value })
  }
  endAt(value) {
    return this._with({ endAt: value })
  }
  equalTo(value) {
    return this._with({ equalTo: value })
  }
  limitToFirst(n) {
    return this._with({ limitToFirst: n })
  }
  limitToLast(n) {
    return this._with({ limitToLast: n })
  }
  /** Read once. `once('value')` and `get()` are the same read. */
  async get() {
    const ref = this.ref
    const p = this._params
    if (Object.keys(p).length === 0) {
      return new DataSnapshot(ref, await call(() => this._db._native.get(this._path)))
    }
    if (!p.orderBy) {
      throw codedError('BAD_REQUEST', `Query at '/${this._path}' needs orderByChild(), orderByKey() or orderByValue() before filters or limits`)
    }
    const rows = await call(() => this._db._native.query(this._path, p))
    const value = rows.length ? Object.fromEntries(rows) : null
    return new DataSnapshot(ref, value, rows)
  }
  async once(eventType = 'value', callback) {
    if (eventType !== 'value') {
      throw codedError('BAD_REQUEST', `once('${eventType}') is not supported over REST; use once('value')`)
    }
    const snap = await this.get()
    if (typeof callback === 'function') callback(snap)
    return snap
  }
  on() {
    throw codedError('BAD_REQUEST', 'Realtime listeners (on()) are not available to migration scripts; use once("value")')
  }
  off() {}
  toString() {
    return `/${this._path}`
  }
  isEqual(other) {
    return other instanceof Query && other._path === this._path && JSON.stringify(other._params) === JSON.stringify(this._params)
  }
}

class Reference extends Query {
  constructor(db, path) {
    super(db, path, {})
  }
  get key() {
    if (this._path === '') return null
    const segs = this._path.split('/')
    return segs[segs.length - 1]
  }
  get parent() {
    if (this._path === '') return null
    return new Reference(this._db, this._path.split('/').slice(0, -1).join('/'))
  }
  get root() {
    return new Reference(this._db, '')
  }
  get ref() {
    return this
  }
  child(path) {
    return new Reference(this._db, join(this._path, path))
  }
  async set(value, onComplete) {
    const v = toJsonValue(value, 'set()', this._path)
    return done(
      call(() => this._db._native.set(this._path, v)),
      onComplete,
    )
  }
  async update(values, onComplete) {
    if (values === null || typeof values !== 'object' || Array.isArray(values)) {
      throw codedError('BAD_REQUEST', `update() at '/${this._path}' needs an object of children to write`)
    }
    const v = toJsonValue(values, 'update()', this._path)
    if (Object.keys(v).length === 0) return done(Promise.resolve(), onComplete)
    return done(
      call(() => this._db._native.update(this._path, v)),
      onComplete,
    )
  }
  async remove(onComplete) {
    return done(
      call(() => this._db._native.remove(this._path)),
      onComplete,
    )
  }
  /**
   * A new child with a time-ordered push id (generated here, as firebase-admin does). With a
   * value it is written; the result is awaitable (resolving to the child reference) and has `.key`
   * at once, like firebase-admin's ThenableReference.
   */
  push(value, onComplete) {
    const path = join(this._path, native.newPushId())
    const child = new Reference(this._db, path)
    if (value === undefined) return child
    const written = child.set(value, onComplete).then(() => new Reference(this._db, path))
    child.then = written.then.bind(written)
    child.catch = written.catch.bind(written)
    child.finally = written.finally.bind(written)
    return child
  }
  /**
   * Atomic read-modify-write of this node by a conditional-write loop (ETag + if-match).
   * `update(current)` returns the new value, or undefined to abort.
   */
  async transaction(update, onComplete) {
    const nat = this._db._native
    let cur = await call(() => nat.getVersioned(this._path))
    for (let attempt = 0; attempt < 25; attempt++) {
      const next = update(cur.value === null ? null : structuredClone(cur.value))
      if (next === undefined) {
        const result = { committed: false, snapshot: new DataSnapshot(this, cur.value) }
        if (typeof onComplete === 'function') onComplete(null, false, result.snapshot)
        return result
      }
      const out = await call(() => nat.putIfMatch(this._path, toJsonValue(next, 'transaction()', this._path), cur.etag))
      if (out.written) {
        const result = { committed: true, snapshot: new DataSnapshot(this, out.value) }
        if (typeof onComplete === 'function') onComplete(null, true, result.snapshot)
        return result
      }
      cur = { value: out.value, etag: out.etag }
    }
    const err = codedError('WRITE_CONFLICT', `transaction() at '/${this._path}' gave up after 25 conflicting attempts; the node is under heavy contention`)
    if (typeof onComplete === 'function') onComplete(err, false, null)
    throw err
  }
}

function done(promise, onComplete) {
  if (typeof onComplete !== 'function') return promise
  return promise.then(
    (v) => {
      onComplete(null)
      return v
    },
    (e) => {
      onComplete(e)
      throw e
    },
  )
}

class Database {
  constructor(nativeDatabase) {
    this._native = nativeDatabase
  }
  ref(path) {
    return new Reference(this, path)
  }
  get app() {
    return { name: 'msr-firebase', options: { databaseURL: this._native.url } }
  }
  goOffline() {}
  goOnline() {}
}

Database.ServerValue = ServerValue

/** `db` as migration scripts receive it: `{ database, checkConnection() }`. */
function createFirebaseDB(nativeDatabase) {
  const database = new Database(nativeDatabase)
  return {
    database,
    /** A real round trip; false when the database cannot be reached. */
    async checkConnection() {
      try {
        await call(() => nativeDatabase.checkConnection())
        return true
      } catch {
        return false
      }
    },
  }
}

module.exports = { Database, Reference, Query, DataSnapshot, ServerValue, createFirebaseDB, callSync }
