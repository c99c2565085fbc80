'use strict'
// Hooks and metrics collectors (`getInstance({ hooks, metricsCollectors })`). When each event
// fires, in which order, and which hook and collector methods it calls is decided by the Rust
// core (`event.hook`, `event.metrics`); this file only builds the arguments those functions
// take and calls them. Every call is isolated (Promise.allSettled semantics): a hook or
// collector that throws or rejects is reported as a warning and the run goes on. Collectors
// run before the hooks, as the predecessor's MetricsCollectorHook came first.

const { codedError } = require('./native.js')
const { toStatus } = require('./locking.js')

function toError(e) {
  return e ? codedError(e.code, e.message) : null
}

function lockInfo(l) {
  return {
    event: l.event,
    path: l.path,
    holder: toStatus(l.holder),
    waited: l.waited ?? null,
    waitLimit: l.waitLimit ?? null,
    limitSetBy: l.limitSetBy ?? null,
    attempts: l.attempts ?? null,
    epoch: l.epoch ?? null,
    message: l.message,
  }
}

/** The arguments of each hook, from an event. */
const HOOK_ARGS = {
  onStart: (e) => [e.total, e.pending],
  onBeforeMigrate: (e) => [e.script],
  onAfterMigrate: (e) => [e.script, e.script.result ?? ''],
  onMigrationError: (e) => [e.script, toError(e.error)],
  onComplete: (e) => [e.result],
  onError: (e) => [toError(e.error)],
  onBeforeBackup: () => [],
  onAfterBackup: (e) => [e.path],
  onBeforeRestore: () => [],
  onAfterRestore: () => [],
  onLockWait: (e) => [lockInfo(e.lock)],
  onLockAcquired: (e) => [lockInfo(e.lock)],
  onLockRenewed: (e) => [lockInfo(e.lock)],
  onLockLost: (e) => [lockInfo(e.lock)],
  onLockReleased: (e) => [lockInfo(e.lock)],
  onForceRelease: (e) => [lockInfo(e.lock)],
}

/** The arguments of each collector method, from an event. */
const METRIC_ARGS = {
  recordMigrationStart: (e) => [{ total: e.total, pending: e.pending, executed: e.total - e.pending, startTime: Date.now() }],
  recordMigrationComplete: (e) => [e.result, Math.round(e.duration)],
  recordScriptStart: (e) => [e.script],
  recordScriptComplete: (e) => [e.script, Math.round(e.duration)],
  recordScriptError: (e) => [e.script, toError(e.error)],
  recordRollback: (e) => [e.strategy, e.success, Math.round(e.duration), e.outcome],
  recordBackup: (e) => [e.path, Math.round(e.duration)],
  recordError: (e) => [toError(e.error)],
  close: () => [],
}

/** In a run over many databases, every hook and collector method gets `{ database }` after its own arguments. */
function withDatabase(args, event) {
  return event.database ? [...args, { database: event.database }] : args
}

function nameOf(o) {
  return (o && o.constructor && o.constructor.name !== 'Object' && o.constructor.name) || 'hooks'
}

/**
 * `(event) => Promise<void>` for the native runner, or undefined when there is nothing to call.
 * `warn(message)` reports a failing hook or collector.
 */
function createDispatcher({ hooks, metricsCollectors, warn }) {
  const hookList = (Array.isArray(hooks) ? hooks : [hooks]).filter((h) => h && typeof h === 'object')
  const collectors = (metricsCollectors || []).filter((c) => c && typeof c === 'object')
  if (hookList.length === 0 && collectors.length === 0) return undefined

  async function callCollectors(method, args) {
    const results = await Promise.allSettled(
      collectors.map(async (c) => {
        if (typeof c[method] !== 'function') return
        try {
          await c[method](...args)
        } catch (err) {
          warn(`Metrics collector ${nameOf(c)}.${method}() failed: ${err && err.message ? err.message : err}`)
          throw err
        }
      }),
    )
    const failed = results.filter((r) => r.status === 'rejected').length
    if (failed > 0) warn(`${failed}/${collectors.length} metrics collectors failed in ${method}()`)
  }

  async function callHooks(hook, args) {
    // In order, each awaited, as the predecessor's CompositeHooks did; a failure is isolated.
    for (const h of hookList) {
      if (typeof h[hook] !== 'function') continue
      try {
        await h[hook](...args)
      } catch (err) {
        warn(`Hook ${hook}() failed: ${err && err.message ? err.message : err}`)
      }
    }
  }

  return async function dispatch(event) {
    try {
      for (const m of event.metrics) {
        const args = METRIC_ARGS[m]
        if (args) await callCollectors(m, withDatabase(args(event), event))
      }
      const args = event.hook && HOOK_ARGS[event.hook]
      if (args) await callHooks(event.hook, withDatabase(args(event), event))
    } catch (err) {
      warn(`Hooks for ${event.event} failed: ${err && err.message ? err.message : err}`)
    }
  }
}

module.exports = { createDispatcher }
