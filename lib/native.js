'use strict'
// The generated napi loader plus the one convention it needs: native errors carry a stable code
// as "<CODE>\u001f<message>"; `call` turns them into ordinary Errors with `err.code`.

const native = require('./native-loader.js').load()

// The last resort for a lock this process still holds when it ends (L10): a release (bounded,
// owner-checked) at 'exit' — reached by process.exit() and by a normal end — and a native
// cleanup hook when the Node environment shuts down.
native.installExitHook()
process.on('exit', () => native.releaseHeldLocksSync())

const SEP = '\u001f'

/** An Error with `err.code`; its message without secrets (the core's one redaction rule). */
function codedError(code, message, cause) {
  const err = new Error(native.redactSecrets(String(message)), cause ? { cause } : undefined)
  err.code = code
  return err
}

function convert(err) {
  if (err && typeof err.message === 'string') {
    const i = err.message.indexOf(SEP)
    if (i > 0) return codedError(err.message.slice(0, i), err.message.slice(i + 1))
  }
  return err
}

/** Await a native promise (or call a sync native function) and rethrow coded errors. */
async function call(fn) {
  try {
    return await fn()
  } catch (err) {
    throw convert(err)
  }
}

function callSync(fn) {
  try {
    return fn()
  } catch (err) {
    throw convert(err)
  }
}

module.exports = { native, call, callSync, codedError, convert }
