'use strict'
// FirebaseConfig: a plain JS class with settable fields (nested objects too: `cfg.locking.enabled =
// true` works, and so does assigning a plain object literal). Defaults, validation and buildPath
// come from the Rust core.

const { native, callSync, codedError } = require('./native.js')

function regexSource(p) {
  return p instanceof RegExp ? p.source : p
}

/**
 * Settings come as a FirebaseConfig or a plain object: anything else (a Map, an instance of
 * another class, a string) would be read as "no settings" — defaults, without the lock — so it is
 * refused. (Only JS can see a value's prototype; the values themselves are checked in the core.)
 */
function checkSettingsShape(values, what) {
  if (values === undefined || values === null || values instanceof FirebaseConfig) return
  const proto = typeof values === 'object' ? Object.getPrototypeOf(values) : undefined
  const plain = proto === Object.prototype || proto === null || (proto && proto.constructor && proto.constructor.name === 'FirebaseConfig')
  if (typeof values === 'object' && plain && !Array.isArray(values)) return
  let got
  if (typeof values !== 'object') got = `${typeof values === 'function' ? 'a function' : `a ${typeof values}`}`
  else if (Array.isArray(values)) got = 'an array'
  else if (values instanceof Map) got = 'a Map'
  else got = `an instance of ${(proto && proto.constructor && proto.constructor.name) || 'a class'}`
  throw codedError(
    'CONFIG_INVALID',
    `${what} must be a FirebaseConfig or a plain object of settings (got ${got}), e.g. { folder: './migrations', locking: { enabled: true } }; ` +
      `its settings would otherwise not be read${values instanceof Map ? ' (Object.fromEntries(map) turns a Map into one)' : ''}`,
  )
}

class FirebaseConfig {
  constructor(values) {
    checkSettingsShape(values, 'new FirebaseConfig(settings): settings')
    Object.assign(this, native.defaultConfig())
    if (values) this.assign(values)
  }

  /** Copy settings in (nested objects are merged, not replaced). */
  assign(values) {
    checkSettingsShape(values, 'assign(settings): settings')
    for (const [k, v] of Object.entries(values || {})) {
      if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof RegExp) && this[k] && typeof this[k] === 'object') {
        this[k] = { ...this[k], ...v }
      } else if (v !== undefined) {
        this[k] = v
      }
    }
    return this
  }

  /** `p` under the shift; with no shift, `p` itself. */
  buildPath(p) {
    return native.buildPath(this.shift ?? null, String(p))
  }

  /** The root of this config's data: the shift, or '' for the database root. */
  getRoot() {
    return this.buildPath('')
  }

  /** The plain settings object the Rust core takes (RegExp patterns become their source). */
  toJSON() {
    const out = {}
    for (const [k, v] of Object.entries(this)) {
      if (v === undefined || typeof v === 'function') continue
      out[k] = k === 'filePatterns' && Array.isArray(v) ? v.map(regexSource) : v
    }
    return out
  }

  /** Throws a CONFIG_INVALID error naming the field when a value is invalid; returns this. */
  validate() {
    callSync(() => native.validateConfig(this.toJSON()))
    return this
  }
}

/** Any config-ish value (FirebaseConfig, plain object) -> the plain settings object. `what` names
 * where it came from, for the error when it is neither. */
function toSettings(config, what = 'config') {
  checkSettingsShape(config, what)
  if (!config) return {}
  if (config instanceof FirebaseConfig) return config.toJSON()
  return FirebaseConfig.prototype.toJSON.call(config)
}

/** The options object of a library call, checked in the core as the CLI checks its flags:
 * unknown names (with a "did you mean"), kinds and ranges. Functions (a logger, hooks) and
 * getInstance()'s values are checked by name only. */
function checkOptions(call, options) {
  const plain = options && typeof options === 'object' && !Array.isArray(options)
  const shape = plain ? Object.fromEntries(Object.entries(options).map(([k, v]) => [k, typeof v === 'function' || call === 'getInstance()' ? null : v])) : options
  callSync(() => native.checkOptions(call, shape === undefined ? null : shape))
}

module.exports = { FirebaseConfig, toSettings, checkSettingsShape, checkOptions }
