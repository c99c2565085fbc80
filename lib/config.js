'use strict'
// FirebaseConfig: a plain JS class with settable fields (nested objects too: `cfg.locking.enabled =
// true` works, and so does assigning a plain object literal). Defaults, validation and buildPath
// come from the Rust core.

const { native, callSync } = require('./native.js')

function regexSource(p) {
  return p instanceof RegExp ? p.source : p
}

class FirebaseConfig {
  constructor(values) {
    Object.assign(this, native.defaultConfig())
    if (values) this.assign(values)
  }

  /** Copy settings in (nested objects are merged, not replaced). */
  assign(values) {
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

/** Any config-ish value (FirebaseConfig, plain object) -> the plain settings object. */
function toSettings(config) {
  if (!config) return {}
  if (config instanceof FirebaseConfig) return config.toJSON()
  return FirebaseConfig.prototype.toJSON.call(config)
}

module.exports = { FirebaseConfig, toSettings }
