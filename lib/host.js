'use strict'
// The script host: what only JS can do for the Rust runner. Loads user modules (msr.config.js,
// migration scripts) with require/import(), inspects their exports, and calls up/down with
// (db, info, handler). Every request resolves with `{ ok, value }` or `{ ok: false, code, message }`
// so that a throwing script is data for Rust, never a crash.

const path = require('node:path')
const { pathToFileURL, fileURLToPath } = require('node:url')
const { createRequire } = require('node:module')
const { spawnSync } = require('node:child_process')

const TS_EXT = new Set(['.ts', '.mts', '.cts'])

let tsRegistered = null

function registerTypeScript(file) {
  if (tsRegistered) return tsRegistered
  const req = createRequire(path.join(process.cwd(), 'noop.js'))
  for (const [name, setup] of [
    ['tsx/cjs/api', (m) => m.register()],
    ['ts-node', (m) => m.register({ transpileOnly: true, compilerOptions: { module: 'commonjs' } })],
  ]) {
    try {
      setup(req(name))
      tsRegistered = name
      return name
    } catch (e) {
      if (e && e.code !== 'MODULE_NOT_FOUND') throw e
    }
  }
  const [major, minor] = process.versions.node.split('.').map(Number)
  if (major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18)) {
    tsRegistered = 'node'
    return tsRegistered
  }
  const err = new Error(
    `Cannot load ${file}: TypeScript files (migrations and config files) need a TypeScript loader. Install one in your project ` +
      `(npm install --save-dev tsx, or ts-node), use Node.js >= 22.18 (built-in type stripping), or write the file in JavaScript.`,
  )
  err.code = 'SCRIPT_FAILED'
  throw err
}

/** `{ file, line, column }` from a SyntaxError's stack as Node prints it for CommonJS (and for
 * `node --check`): "<file>:<line>", the source line, a caret under the column. */
function locationInStack(stack) {
  const lines = String(stack || '').split('\n')
  const m = /^(.+):(\d+)$/.exec(lines[0] || '')
  if (!m) return null
  const caret = (lines[2] || '').indexOf('^')
  const file = m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1]
  return { file, line: Number(m[2]), column: caret >= 0 ? caret + 1 : null, source: (lines[1] || '').trim() }
}

/** A SyntaxError from loading `file`, with file:line:column in its message. Node gives the location
 * for CommonJS; for ES modules it does not, so `node --check` (on this error path only) finds it. */
function locatedSyntaxError(e, file) {
  let loc = locationInStack(e.stack)
  if (!loc) {
    const r = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10000 })
    loc = locationInStack(r.stderr)
  }
  if (!loc) return e
  const at = `${loc.file}:${loc.line}${loc.column ? `:${loc.column}` : ''}`
  const err = new Error(`SyntaxError at ${at}: ${e.message}${loc.source ? ` (in \`${loc.source}\`)` : ''}`)
  err.code = 'SCRIPT_FAILED'
  return err
}

async function importModule(file) {
  try {
    return await importModuleRaw(file)
  } catch (e) {
    if (e && e.name === 'SyntaxError') throw locatedSyntaxError(e, file)
    throw e
  }
}

async function importModuleRaw(file) {
  const ext = path.extname(file)
  if (TS_EXT.has(ext)) {
    const how = registerTypeScript(file)
    if (how !== 'node') return require(file)
    return import(pathToFileURL(file).href)
  }
  if (ext === '.mjs') return import(pathToFileURL(file).href)
  try {
    return require(file)
  } catch (e) {
    if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
      return import(pathToFileURL(file).href)
    }
    throw e
  }
}

function isClass(fn) {
  return typeof fn === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(fn))
}

function isConstructor(fn) {
  return typeof fn === 'function' && (isClass(fn) || typeof fn.prototype?.up === 'function')
}

/** The one runnable export of a module: a class (default or named) or an object with `up`. */
function findRunnable(mod, file) {
  const name = path.basename(file)
  let candidates
  if (typeof mod === 'function') candidates = [mod]
  else if (mod && typeof mod.up === 'function')
    candidates = [mod] // object / namespace with up()
  else if (mod && typeof mod === 'object') candidates = [...new Set(Object.values(mod))]
  else candidates = []
  const runnables = []
  for (const c of candidates) {
    let instance = null
    if (isConstructor(c)) {
      try {
        instance = new c()
      } catch (e) {
        throw Object.assign(new Error(`${name}: ${e.message}`), { code: 'SCRIPT_FAILED' })
      }
    } else if (c && typeof c === 'object') {
      instance = c
    }
    if (instance && typeof instance.up === 'function') runnables.push(instance)
  }
  if (runnables.length === 0) {
    throw Object.assign(
      new Error(
        `${name}: Cannot parse migration script: no executable content found. ` +
          'Export a class with an async up(db, info, handler) method (default or named export), or an object with up().',
      ),
      { code: 'MISSING_UP' },
    )
  }
  if (runnables.length > 1) {
    throw Object.assign(new Error(`${name}: Cannot parse migration script: multiple executable instances were found; export exactly one.`), {
      code: 'SCRIPT_FAILED',
    })
  }
  return runnables[0]
}

// While a script runs, what would end or crash the process fails that script instead (L10): its
// `process.exit()`, and uncaught exceptions and unhandled rejections (they come from the script:
// nothing else of ours runs meanwhile). The runner then applies the rollback strategy and the
// lock is released as on any other failure; without this, process.exit(0) would be a false
// success that leaves the migration unrecorded and the lock held for its whole lease.
const running = new Set() // fail(err) of each script run in progress
let realExit = null

function failRunning(err) {
  for (const fail of running) fail(err)
}

function onUncaught(e) {
  failRunning(scriptCrash('threw an uncaught exception', e))
}

function onRejection(e) {
  failRunning(scriptCrash('left a promise rejection unhandled', e))
}

function scriptCrash(what, e) {
  const err = new Error(`${what}: ${e instanceof Error ? e.message : String(e)}`)
  err.code = 'SCRIPT_FAILED'
  return err
}

function intercept() {
  if (realExit) return
  realExit = process.exit
  process.exit = function exitIntercepted(code) {
    const err = new Error(`called process.exit(${code === undefined ? '' : code})`)
    err.exitCall = true
    failRunning(err)
    // Stop the module's own flow here (its caller sees the error).
    throw err
  }
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onRejection)
}

/** End the process for real, even while a script's process.exit() is intercepted (a second signal). */
function exitProcess(code) {
  return (realExit || process.exit).call(process, code)
}

function restore() {
  if (!realExit) return
  process.exit = realExit
  realExit = null
  process.removeListener('uncaughtException', onUncaught)
  process.removeListener('unhandledRejection', onRejection)
}

const SCRIPT_EXIT = 'a migration must return (or throw) instead of ending the process, so that it can be recorded, or rolled back, and the lock released'

/**
 * Run `fn` (a script's up/down, or loading a config module) so that a process.exit() or a crash
 * from it rejects: with `code`, the message prefixed by `label`, and `exitHint` after a
 * process.exit().
 */
function guarded(label, fn, { code = 'SCRIPT_FAILED', exitHint = SCRIPT_EXIT } = {}) {
  return new Promise((resolve, reject) => {
    let settled = false
    const settle = (f, v) => {
      if (settled) return
      settled = true
      running.delete(fail)
      // Not at once: a process.exit() from a callback throws right after failing the run, and
      // that throw must still land in our uncaughtException listener.
      setImmediate(() => running.size === 0 && restore())
      f(v)
    }
    const fail = (err) => settle(reject, Object.assign(new Error(`${label} ${err.message}${err.exitCall ? `; ${exitHint}` : ''}`), { code }))
    running.add(fail)
    intercept()
    Promise.resolve()
      .then(fn)
      .then(
        (v) => settle(resolve, v),
        (e) => settle(reject, e),
      )
  })
}

function isAsync(fn) {
  return typeof fn === 'function' && fn.constructor && fn.constructor.name === 'AsyncFunction'
}

function jsonResult(value) {
  if (value === undefined) return null
  try {
    return JSON.parse(JSON.stringify(value))
  } catch {
    return String(value)
  }
}

/**
 * `context(nativeDb)` returns `{ db, handler }` for the scripts of the runner whose native script
 * db (`{ id, database, locking, config }`) comes with each run: asked once per runner (`id`) in a
 * row, so scripts share one `db` and `handler` (a rehearsal's sandbox runner has its own).
 */
function createScriptHost({ context }) {
  const scripts = new Map()
  let current = null // { id, ctx } of the last runner seen

  async function contextFor(nativeDb) {
    if (!nativeDb) throw Object.assign(new Error('a script run came without its db'), { code: 'INTERNAL' })
    if (current && current.id === nativeDb.id) return current.ctx
    const ctx = await context(nativeDb)
    current = { id: nativeDb.id, ctx }
    return ctx
  }

  async function load(file) {
    if (!scripts.has(file)) {
      const mod = await importModule(file)
      try {
        scripts.set(file, findRunnable(mod, file))
      } catch (e) {
        // No runnable export: the runner reports it as a missing up() (MISSING_UP_METHOD).
        if (e.code === 'MISSING_UP') return { hasUp: false, hasDown: false, upIsAsync: false }
        throw e
      }
    }
    const s = scripts.get(file)
    return { hasUp: typeof s.up === 'function', hasDown: typeof s.down === 'function', upIsAsync: isAsync(s.up) }
  }

  async function run(file, method, info, nativeDb) {
    await load(file)
    const script = scripts.get(file)
    if (!script || typeof script[method] !== 'function') {
      throw Object.assign(new Error(`Migration ${path.basename(file)} does not have a ${method}() method`), { code: 'SCRIPT_FAILED' })
    }
    const { db, handler } = await contextFor(nativeDb)
    return jsonResult(await guarded(`${path.basename(file)}: ${method}()`, () => script[method](db, info, handler)))
  }

  // A config module runs guarded like a script: its process.exit() or a crash while it loads is a
  // configuration error, never a silent end of the command.
  const CONFIG_EXIT = 'a config module must export its settings (or a function or promise giving them) instead of ending the process'

  async function loadConfig(file) {
    let mod
    try {
      mod = await guarded(`Failed to load config file ${file}:`, () => importModule(file), { code: 'CONFIG_INVALID', exitHint: CONFIG_EXIT })
    } catch (e) {
      if (e && e.code === 'CONFIG_INVALID') throw e
      throw Object.assign(new Error(`Failed to load config file ${file}: ${e && e.message}`), { code: 'CONFIG_INVALID' })
    }
    let value = mod && mod.__esModule && mod.default !== undefined ? mod.default : mod
    if (value && typeof value === 'object' && value.default !== undefined && Object.keys(value).length === 1) value = value.default
    try {
      value = await guarded(`Config file ${file}`, () => (typeof value === 'function' ? value() : value), { code: 'CONFIG_INVALID', exitHint: CONFIG_EXIT })
    } catch (e) {
      if (e && e.code === 'CONFIG_INVALID') throw e
      throw Object.assign(new Error(`Config file ${file} threw: ${e && e.message}`), { code: 'CONFIG_INVALID' })
    }
    // null, undefined or a primitive goes to Rust as it is: the core says what is wrong with it.
    if (value === undefined || value === null) return null
    if (typeof value !== 'object') return value
    const { toSettings } = require('./config.js')
    return toSettings(value, `The settings exported by config file ${file}`)
  }

  return async function host(req, nativeDb) {
    try {
      switch (req.op) {
        case 'load':
          return { ok: true, value: await load(req.file) }
        case 'run':
          return { ok: true, value: await run(req.file, req.method, req.info, nativeDb) }
        case 'loadConfig':
          return { ok: true, value: await loadConfig(req.file) }
        case 'setEnv':
          // Which variables to set (the real environment wins) was decided in Rust.
          for (const [k, v] of Object.entries(req.vars || {})) process.env[k] = v
          return { ok: true, value: null }
        default:
          return { ok: false, code: 'INTERNAL', message: `unknown host request '${req.op}'` }
      }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e)
      return { ok: false, code: (e && typeof e.code === 'string' && e.code) || 'SCRIPT_FAILED', message, stack: e && e.stack }
    }
  }
}

module.exports = { createScriptHost, findRunnable, importModule, exitProcess }
