'use strict'
// SIGINT/SIGTERM during locked work: the first signal asks the work to stop after its current
// step (`onSignal`), and once the work has finished and the lock is released, the signal takes its
// default course, so the process still exits non-zero. A second signal runs `onForce` (best-effort
// lock release) and exits at once.

const SIGNALS = ['SIGINT', 'SIGTERM']

function trap({ onSignal = () => {}, onForce = () => {} } = {}) {
  const state = { requested: null }
  const handler = (sig) => {
    if (state.requested) {
      Promise.resolve()
        .then(onForce)
        .catch(() => {})
        .finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
      return
    }
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

module.exports = { trap, SIGNALS }
