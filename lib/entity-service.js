'use strict'
// The predecessor's data helpers for migration scripts, on the `db.database` facade.
// Fixed here: removeAll() deletes the node (it used to write ""), and an entity's `key` is never
// written into the entity's own data.

const KEY = 'key'

function withKey(obj, key) {
  if (!obj || !key || typeof obj !== 'object') return obj
  Object.defineProperty(obj, KEY, { value: key, enumerable: false, writable: false, configurable: true })
  return obj
}

function withoutKey(obj) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return obj
  const { [KEY]: _ignored, ...rest } = obj
  return rest
}

class FirebaseDataService {
  constructor(db) {
    this.db = db
  }
  getSnapshot(path) {
    return this.db.ref(path).once('value')
  }
  async getList(path) {
    const snap = await this.getSnapshot(path)
    const out = []
    snap.forEach((child) => {
      out.push(FirebaseDataService.mixKey(FirebaseDataService._wrap(child.val()), child.key))
    })
    return out
  }
  async getObject(path) {
    const snap = await this.getSnapshot(path)
    return FirebaseDataService.mixKey(snap.val(), snap.key)
  }
  setObject(path, obj) {
    return this.db.ref(path).set(withoutKey(obj))
  }
  updateObject(path, obj) {
    return this.db.ref(path).update(withoutKey(obj))
  }
  async findAllObjectsBy(path, propertyName, value) {
    const snap = await this.db.ref(path).orderByChild(propertyName).equalTo(value).once('value')
    const out = []
    snap.forEach((child) => {
      out.push(FirebaseDataService.mixKey(FirebaseDataService._wrap(child.val()), child.key))
    })
    return out
  }
  static _wrap(v) {
    return v !== null && typeof v === 'object' ? v : { value: v }
  }
  /** Children of an object as a list, each with a read-only, non-enumerable `key`. */
  static convertObjectToList(obj) {
    if (!obj || typeof obj !== 'object') return []
    return Object.entries(obj).map(([k, v]) => FirebaseDataService.mixKey(FirebaseDataService._wrap(v), k))
  }
  static mixKey(obj, key) {
    return withKey(obj, key)
  }
}

class EntityService extends FirebaseDataService {
  /** `new EntityService(db.database, handler.cfg.buildPath('users'))` */
  constructor(db, root) {
    super(db)
    this.root = root
  }
  getAll() {
    return this.getList(this.root)
  }
  getAllAsObject() {
    return this.getObject(this.root)
  }
  get(key) {
    return this.getObject(`${this.root}/${key}`)
  }
  /** Update when the entity has a key, otherwise create; resolves with the key. */
  save(obj) {
    return obj && obj.key ? this.update(obj.key, obj) : this.create(obj)
  }
  async create(obj) {
    const ref = await this.db.ref(this.root).push(withoutKey(obj))
    return ref.key
  }
  async update(key, obj) {
    await this.updateObject(`${this.root}/${key}`, obj)
    return key
  }
  async set(key, obj) {
    await this.setObject(`${this.root}/${key}`, obj)
    return key
  }
  /** `update(entity)` changes the entity in place and returns true, or false to skip it. */
  async updateAll(update) {
    const results = { updated: [], skipped: [] }
    const entities = await this.getAll()
    await Promise.all(
      entities.map(async (entity) => {
        if (!update(entity)) {
          results.skipped.push(entity.key)
          return
        }
        await this.save(entity)
        results.updated.push(entity.key)
      }),
    )
    results.updated.sort()
    results.skipped.sort()
    return results
  }
  async remove(key) {
    await this.db.ref(`${this.root}/${key}`).remove()
    return key
  }
  async removeByIds(ids) {
    await Promise.all(ids.map((id) => this.remove(id)))
  }
  /** Deletes the whole collection node. */
  async removeAll() {
    await this.db.ref(this.root).remove()
  }
  findAllBy(propertyName, value) {
    return this.findAllObjectsBy(this.root, propertyName, value)
  }
}

module.exports = { EntityService, FirebaseDataService }
