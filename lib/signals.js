'use strict'
// SIGINT/SIGTERM during locked work: the first signal asks the work to stop after its current
// step (`onSignal`; a wait for the lock ends at once), and once the work has finished and the lock
// is released, the signal takes its default course, so the process still exits non-zero. A second
// signal releases every lock this process holds (bounded to 2 s; `onForce` runs first) and exits
// with 130 (SIGINT) or 143 (SIGTERM).

const { native } = require('./native.js')

const SIGNALS = ['SIGINT', 'SIGTERM']

/** The exit code for a second `sig` (128 + its number), from the core's table of exit statuses. */
const FORCED_EXIT = new Map(native.exitStatuses().flatMap((s) => (s.signal ? [[s.signal, s.code]] : [])))
const forcedExitCode = (sig) => FORCED_EXIT.get(sig)

/** Release what this process holds (bounded), then exit as a second `sig` says. */
function forceExit(sig, onForce = () => {}) {
  Promise.resolve()
    .then(onForce)
    .catch(() => {})
    .then(() => native.releaseHeldLocks())
    .catch(() => {})
    .finally(() => require('./host.js').exitProcess(forcedExitCode(sig)))
}

function trap({ onSignal = () => {}, onForce = () => {} } = {}) {
  const state = { requested: null }
  const handler = (sig) => {
    if (state.requested) return forceExit(sig, onForce)
    state.requested = sig
    onSignal(sig)
  }
  for (const s of SIGNALS) process.on(s, handler)
  state.done = () => {
    for (const s of SIGNALS) process.removeListener(s, handler)
    const sig = state.requested
    // Re-raise only when nobody else listens: then the default action ends the process.
    if (sig && process.listenerCount(sig) === 0) process.kill(process.pid, sig)
  }
  return state
}

module.exports = { trap, forceExit, SIGNALS }
