'use strict'
// The firebase-admin `Database` subset migration scripts use (`db.database`), backed by the Rust
// REST client. Reads, writes, queries and transactions are real REST requests; values cross as
// JSON text (parsed once here, as `fetch().json()` would), query results come back from Rust in
// RTDB order. Arguments are checked synchronously with firebase-admin's messages. For big
// collections: `ref.children()` (pages in key order) and `db.bulkWriter()` (batched multi-path
// updates); see bulk.js.

const { native, call, callSync, codedError } = require('./native.js')

let bulkModule = null
const bulk = () => bulkModule || (bulkModule = require('./bulk.js'))

const ServerValue = Object.freeze({
  TIMESTAMP: Object.freeze({ '.sv': 'timestamp' }),
  increment: (delta) => ({ '.sv': { increment: delta } }),
})

// ---------------------------------------------------------------------------------------------
// Paths and written data, checked as firebase-admin checks them

const INVALID_KEY = /[[\].#$/\u0000-\u001F\u007F]/
const MAX_LEAF_BYTES = 10 * 1024 * 1024

/** `path` normalised by the core (`a/b`), or firebase-admin's error for an invalid path. */
function checkPath(fnName, path) {
  if (typeof path !== 'string') {
    throw codedError('INVALID_PATH', `${fnName} failed: path argument must be a string, got ${typeof path}`)
  }
  try {
    return native.normalizePath(path)
  } catch (err) {
    const detail = String(err.message).replace(/^[A-Z_]+\u001f/, '')
    throw codedError(
      'INVALID_PATH',
      `${fnName} failed: path argument was an invalid path = "${path}". Paths must be non-empty strings and can't contain ".", "#", "$", "[", or "]" (${detail})`,
    )
  }
}

function join(a, b) {
  return a === '' ? b : b === '' ? a : `${a}/${b}`
}

function where(parts) {
  return parts.length ? `in property '${parts.join('.')}'` : ''
}

function utf8Length(s) {
  return Buffer.byteLength(s, 'utf8')
}

/**
 * Throw firebase-admin's error for data RTDB cannot store: undefined, functions, NaN and
 * Infinity, strings over 10 MB, invalid keys; priorities are not supported.
 */
function checkData(prefix, data, parts) {
  if (data === undefined) throw codedError('BAD_REQUEST', `${prefix}contains undefined ${where(parts)}`)
  if (typeof data === 'function') {
    throw codedError('BAD_REQUEST', `${prefix}contains a function ${where(parts)} with contents = ${data.toString()}`)
  }
  if (typeof data === 'number' && !Number.isFinite(data)) {
    throw codedError('BAD_REQUEST', `${prefix}contains ${data.toString()} ${where(parts)}`)
  }
  if (typeof data === 'string' && data.length > MAX_LEAF_BYTES / 3 && utf8Length(data) > MAX_LEAF_BYTES) {
    throw codedError('BAD_REQUEST', `${prefix}contains a string greater than ${MAX_LEAF_BYTES} utf8 bytes ${where(parts)} ('${data.substring(0, 50)}...')`)
  }
  if (data === null || typeof data !== 'object' || typeof data.toJSON === 'function') return
  for (const key of Object.keys(data)) {
    if (key === '.priority' || key === '.value') {
      throw codedError('BAD_REQUEST', `${prefix}contains "${key}" ${where(parts)}: priorities are not supported; keep the order in a child and query it with orderByChild()`)
    }
    if (key !== '.sv' && (key.length === 0 || INVALID_KEY.test(key))) {
      throw codedError(
        'BAD_REQUEST',
        `${prefix} contains an invalid key (${key}) ${where(parts)}.  Keys must be non-empty strings and can't contain ".", "#", "$", "/", "[", or "]"`,
      )
    }
    parts.push(key)
    checkData(prefix, data[key], parts)
    parts.pop()
  }
}

/** JSON text of checked data (JSON semantics: `toJSON()` is honoured, as for Dates). */
function encode(fnName, argName, value, path) {
  checkData(`${fnName} failed: ${argName} argument `, value, path ? path.split('/') : [])
  return JSON.stringify(value)
}

/** The JSON text of a multi-path update: `{ "a/b": ..., ... }`, its keys checked. */
/** firebase-admin's checks of an update's `values`; returns its keys as normalised paths. */
function checkUpdate(fnName, path, values) {
  const prefix = `${fnName} failed: values argument `
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    throw codedError('BAD_REQUEST', `${prefix} must be an object containing the children to replace.`)
  }
  const base = path ? path.split('/') : []
  const keys = Object.keys(values)
  const normal = []
  for (const key of keys) {
    const segs = key.split('/').filter((s) => s.length > 0)
    for (const s of segs) {
      if (INVALID_KEY.test(s)) {
        throw codedError(
          'BAD_REQUEST',
          `${prefix}contains an invalid key (${s}) in path /${segs.join('/')}. Keys must be non-empty strings and can't contain ".", "#", "$", "/", "[", or "]"`,
        )
      }
    }
    checkData(prefix, values[key], base.concat(segs))
    normal.push(segs.join('/'))
  }
  // Sorted by segments, an ancestor comes right before its first descendant.
  const sorted = normal.map((p) => p.split('/')).sort(compareSegments)
  for (let i = 1; i < sorted.length; i++) {
    const [prev, cur] = [sorted[i - 1], sorted[i]]
    if (prev.every((s, j) => cur[j] === s)) {
      throw codedError('BAD_REQUEST', `${prefix}contains a path /${prev.join('/')} that is ancestor of another path /${cur.join('/')}`)
    }
  }
  return normal
}

function encodeUpdate(fnName, path, values) {
  const normal = checkUpdate(fnName, path, values)
  return { json: JSON.stringify(values), count: normal.length }
}

function compareSegments(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1
  }
  return a.length - b.length
}

// ---------------------------------------------------------------------------------------------
// Snapshots

function clone(v) {
  return v === null || typeof v !== 'object' ? v : structuredClone(v)
}

/** Keys of a parsed value in RTDB order (an array's non-null elements keyed by index). */
function orderedKeys(v) {
  if (v === null || typeof v !== 'object') return []
  const keys = Array.isArray(v) ? v.flatMap((x, i) => (x === null ? [] : [String(i)])) : Object.keys(v)
  return keys.length > 1 ? native.sortKeys(keys) : keys
}

class DataSnapshot {
  /**
   * `source`: `{ json }` (the server's JSON text, owned), or `{ value }` (a parsed subtree shared
   * with a parent snapshot, never handed out); `keys`: the children in RTDB order (queries).
   */
  constructor(ref, source = {}, keys) {
    this.ref = ref
    this.key = ref.key
    this._json = source.json
    this._value = source.json === undefined ? (source.value === undefined ? null : source.value) : undefined
    this._keys = keys
  }
  /** The parsed value for navigating (parsed once, kept private). */
  _tree() {
    if (this._value === undefined) this._value = JSON.parse(this._json)
    return this._value
  }
  /** A fresh copy of the value each call (as firebase-admin); from the JSON text when there is one. */
  val() {
    if (this._json !== undefined) return JSON.parse(this._json)
    return clone(this._value)
  }
  exportVal() {
    return this.val()
  }
  toJSON() {
    return this.val()
  }
  exists() {
    if (this._json !== undefined && this._value === undefined) return this._json !== 'null'
    return this._tree() !== null
  }
  getPriority() {
    return null
  }
  _entries() {
    const v = this._tree()
    if (v === null || typeof v !== 'object') return []
    const keys = this._keys || orderedKeys(v)
    return keys.map((k) => [k, v[k]])
  }
  child(path) {
    const p = checkPath('DataSnapshot.child', String(path))
    let v = this._tree()
    for (const s of p.split('/').filter(Boolean)) v = v !== null && typeof v === 'object' && v[s] !== undefined ? v[s] : null
    return new DataSnapshot(this.ref._childUnchecked(p), { value: v })
  }
  hasChild(path) {
    return this.child(path).exists()
  }
  hasChildren() {
    return this.numChildren() > 0
  }
  numChildren() {
    const v = this._tree()
    if (v === null || typeof v !== 'object') return 0
    return this._keys ? this._keys.length : Array.isArray(v) ? v.filter((x) => x !== null).length : Object.keys(v).length
  }
  get size() {
    return this.numChildren()
  }
  /** Calls `action` for each child in order; stops when it returns true (and returns true). */
  forEach(action) {
    for (const [k, v] of this._entries()) {
      if (action(new DataSnapshot(this.ref._childUnchecked(k), { value: v })) === true) return true
    }
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// Queries and references

const NOT_OFFERED = {
  on: 'Realtime listeners (on()) are not available to migration scripts; read with get() or once("value"), and page through big collections with ref.children()',
  onDisconnect:
    'onDisconnect() is not available to migration scripts (they talk REST, there is no connection to lose); write the final value yourself with set(), update() or remove()',
  priority: 'Priorities are not supported; keep the order in a child and query it with orderByChild()',
}

function notOffered(what) {
  return codedError('NOT_SUPPORTED', NOT_OFFERED[what])
}

function isPrimitive(v) {
  return v === null || ['string', 'number', 'boolean'].includes(typeof v)
}

class Query {
  constructor(db, path, params) {
    this._db = db
    this._path = path
    this._params = params || {}
  }
  get ref() {
    return new Reference(this._db, this._path)
  }
  _with(extra) {
    return new Query(this._db, this._path, { ...this._params, ...extra })
  }
  _order(fnName, orderBy) {
    if (this._params.orderBy !== undefined) throw codedError('BAD_REQUEST', `${fnName}: You can't combine multiple orderBy calls.`)
    const q = this._with({ orderBy })
    q._checkEndpoints()
    return q
  }
  _checkEndpoints() {
    const p = this._params
    const bounds = [p.startAt, p.endAt, p.equalTo, p.startAfter, p.endBefore].filter((v) => v !== undefined)
    if (p.orderBy === '$key' && bounds.some((v) => typeof v !== 'string')) {
      throw codedError('BAD_REQUEST', 'Query: When ordering by key, the argument passed to startAt(), startAfter(), endAt(), endBefore(), or equalTo() must be a string.')
    }
    if (bounds.some((v) => !isPrimitive(v))) {
      throw codedError('BAD_REQUEST', 'Query: First argument passed to startAt(), startAfter(), endAt(), endBefore(), or equalTo() cannot be an object.')
    }
  }
  _bound(fnName, name, value, key, clash) {
    if (key !== undefined) {
      throw codedError('NOT_SUPPORTED', `${fnName}(value, key): the key argument is not available over REST; order by key, or by a child whose values are unique`)
    }
    checkData(`${fnName} failed: value argument `, value, [])
    if (clash.some((c) => this._params[c] !== undefined)) {
      const others = {
        startAt: 'startAt, startAfter, or equalTo',
        startAfter: 'startAt, startAfter, or equalTo',
        endAt: 'endAt, endBefore or equalTo',
        endBefore: 'endAt, endBefore or equalTo',
      }
      throw codedError('BAD_REQUEST', `${fnName}: Starting point was already set (by another call to ${others[name]}).`)
    }
    const q = this._with({ [name]: value })
    q._checkEndpoints()
    return q
  }
  orderByChild(path) {
    if (path === '$key') throw codedError('BAD_REQUEST', 'orderByChild: "$key" is invalid.  Use orderByKey() instead.')
    if (path === '$priority') throw codedError('BAD_REQUEST', 'orderByChild: "$priority" is invalid.  Use orderByPriority() instead.')
    if (path === '$value') throw codedError('BAD_REQUEST', 'orderByChild: "$value" is invalid.  Use orderByValue() instead.')
    const p = checkPath('orderByChild', path)
    if (p === '') throw codedError('BAD_REQUEST', 'orderByChild: cannot pass in empty path. Use orderByValue() instead.')
    return this._order('orderByChild', p)
  }
  orderByKey() {
    return this._order('orderByKey', '$key')
  }
  orderByValue() {
    return this._order('orderByValue', '$value')
  }
  orderByPriority() {
    throw notOffered('priority')
  }
  startAt(value = null, key) {
    return this._bound('startAt', 'startAt', value, key, ['startAt', 'startAfter', 'equalTo'])
  }
  startAfter(value = null, key) {
    return this._bound('startAfter', 'startAfter', value, key, ['startAt', 'startAfter', 'equalTo'])
  }
  endAt(value = null, key) {
    return this._bound('endAt', 'endAt', value, key, ['endAt', 'endBefore', 'equalTo'])
  }
  endBefore(value = null, key) {
    return this._bound('endBefore', 'endBefore', value, key, ['endAt', 'endBefore', 'equalTo'])
  }
  equalTo(value, key) {
    if (key !== undefined) return this._bound('equalTo', 'equalTo', value, key, [])
    checkData('equalTo failed: value argument ', value, [])
    const p = this._params
    if (p.startAt !== undefined || p.startAfter !== undefined || p.equalTo !== undefined) {
      throw codedError('BAD_REQUEST', 'equalTo: Starting point was already set (by another call to startAt/startAfter or equalTo).')
    }
    if (p.endAt !== undefined || p.endBefore !== undefined) {
      throw codedError('BAD_REQUEST', 'equalTo: Ending point was already set (by another call to endAt/endBefore or equalTo).')
    }
    const q = this._with({ equalTo: value })
    q._checkEndpoints()
    return q
  }
  _limit(fnName, name, n) {
    if (typeof n !== 'number' || Math.floor(n) !== n || n <= 0) throw codedError('BAD_REQUEST', `${fnName}: First argument must be a positive integer.`)
    if (this._params.limitToFirst !== undefined || this._params.limitToLast !== undefined) {
      throw codedError('BAD_REQUEST', `${fnName}: Limit was already set (by another call to limitToFirst or limitToLast).`)
    }
    return this._with({ [name]: n })
  }
  limitToFirst(n) {
    return this._limit('limitToFirst', 'limitToFirst', n)
  }
  limitToLast(n) {
    return this._limit('limitToLast', 'limitToLast', n)
  }
  /** Read once. `once('value')` and `get()` are the same read. */
  async get() {
    const ref = this.ref
    const p = this._params
    if (Object.keys(p).length === 0) {
      return new DataSnapshot(ref, { json: await call(() => this._db._native.getJson(this._path)) })
    }
    if (p.orderBy === undefined && [p.startAt, p.endAt, p.equalTo, p.startAfter, p.endBefore].some((v) => v !== undefined)) {
      throw codedError(
        'BAD_REQUEST',
        `Query at '/${this._path}': startAt(), endAt(), equalTo(), startAfter() and endBefore() need orderByKey(), orderByChild() or orderByValue() first (priorities are not supported)`,
      )
    }
    // Limits without orderBy*() order by key, as firebase-admin does.
    const page = await call(() => this._db._native.queryJson(this._path, p.orderBy === undefined ? { ...p, orderBy: '$key' } : p))
    return page.keys.length ? new DataSnapshot(ref, { json: page.json }, page.keys) : new DataSnapshot(ref, { json: 'null' })
  }
  async once(eventType = 'value', callback) {
    if (eventType !== 'value') {
      throw codedError('NOT_SUPPORTED', `once('${eventType}') is not available over REST; use once('value') (or get()) and walk the snapshot`)
    }
    const snap = await this.get()
    if (typeof callback === 'function') callback(snap)
    return snap
  }
  on() {
    throw notOffered('on')
  }
  off() {}
  /** The absolute, URL-encoded location (as firebase-admin: ready for a browser, curl or refFromURL). */
  toString() {
    return this._db._urlFor(this._path)
  }
  toJSON() {
    return this.toString()
  }
  isEqual(other) {
    return other instanceof Query && other._db === this._db && other._path === this._path && JSON.stringify(other._params) === JSON.stringify(this._params)
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
    return new Reference(this._db, join(this._path, checkPath('child', path)))
  }
  /** A child whose key came from the database (already valid). */
  _childUnchecked(p) {
    return new Reference(this._db, join(this._path, p))
  }
  set(value, onComplete) {
    const json = encode('set', 'value', value, this._path)
    return done(
      call(() => this._db._native.setJson(this._path, json)),
      onComplete,
    )
  }
  update(values, onComplete) {
    const { json, count } = encodeUpdate('update', this._path, values)
    if (count === 0) return done(Promise.resolve(), onComplete)
    return done(
      call(() => this._db._native.updateJson(this._path, json)),
      onComplete,
    )
  }
  remove(onComplete) {
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
        const result = { committed: false, snapshot: new DataSnapshot(this, { value: cur.value }) }
        if (typeof onComplete === 'function') onComplete(null, false, result.snapshot)
        return result
      }
      const out = await call(() => nat.putIfMatch(this._path, JSON.parse(encode('transaction', 'value', next, this._path)), cur.etag))
      if (out.written) {
        const result = { committed: true, snapshot: new DataSnapshot(this, { value: out.value }) }
        if (typeof onComplete === 'function') onComplete(null, true, result.snapshot)
        return result
      }
      cur = { value: out.value, etag: out.etag }
    }
    const err = codedError('WRITE_CONFLICT', `transaction() at '/${this._path}' gave up after 25 conflicting attempts; the node is under heavy contention`)
    if (typeof onComplete === 'function') onComplete(err, false, null)
    throw err
  }
  onDisconnect() {
    throw notOffered('onDisconnect')
  }
  setPriority() {
    throw notOffered('priority')
  }
  setWithPriority() {
    throw notOffered('priority')
  }
  /**
   * The children in key order, one page at a time (`orderByKey().startAfter(last)
   * .limitToFirst(pageSize)`), as an async iterator of snapshots: memory holds one page (and the
   * next one, read while you work on this one).
   */
  children(options = {}) {
    return bulk().children(this, options)
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
  constructor(nativeDatabase, options = {}) {
    this._native = nativeDatabase
    this._log = options.log || (() => {})
    const u = new URL(nativeDatabase.url)
    this._origin = u.origin
    this._ns = u.searchParams.get('ns')
  }
  /** `ref()` / `ref('a/b')` / `ref(otherRef)`. Invalid keys throw here. */
  ref(path) {
    if (path instanceof Query) return new Reference(this, path._path)
    if (path === undefined || path === '') return new Reference(this, '')
    return new Reference(this, checkPath('child', path))
  }
  /** A reference from an absolute URL of this database (as `ref.toString()` gives). */
  refFromURL(url) {
    let u
    try {
      u = new URL(String(url))
    } catch {
      throw codedError('INVALID_PATH', `refFromURL failed: url argument must be a valid firebase URL and the path can't contain ".", "#", "$", "[", or "]" (got ${url})`)
    }
    const ns = u.searchParams.get('ns')
    if (u.origin !== this._origin || (this._ns !== null && ns !== null && ns !== this._ns)) {
      throw codedError(
        'INVALID_PATH',
        `refFromURL: Host name does not match the current database: (found ${u.host}${ns ? `?ns=${ns}` : ''} but expected ${new URL(this._origin).host}${this._ns ? `?ns=${this._ns}` : ''})`,
      )
    }
    const segs = u.pathname
      .split('/')
      .filter(Boolean)
      .map((s) => decodeURIComponent(s))
    return this.ref(segs.join('/'))
  }
  _urlFor(path) {
    const encoded = path === '' ? '' : path.split('/').map(encodeURIComponent).join('/')
    return `${this._origin}/${encoded}${this._ns ? `?ns=${encodeURIComponent(this._ns)}` : ''}`
  }
  get ServerValue() {
    return ServerValue
  }
  /** Batched multi-path writes for big jobs (see bulk.js). */
  bulkWriter(options = {}) {
    return bulk().bulkWriter(this, options)
  }
  get app() {
    return { name: 'msr-firebase', options: { databaseURL: this._native.url } }
  }
  goOffline() {}
  goOnline() {}
}

Database.ServerValue = ServerValue

/** `db` as migration scripts receive it: `{ database, checkConnection() }`. */
function createFirebaseDB(nativeDatabase, options = {}) {
  const database = new Database(nativeDatabase, options)
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

module.exports = { INVALID_KEY, Database, Reference, Query, DataSnapshot, ServerValue, createFirebaseDB, callSync, encode, checkUpdate, encodeUpdate, checkPath, join }
