'use strict'
// `@migration-script-runner/firebase/health`: health, readiness and metrics handlers for Node's
// http module and Express (plain `(req, res)` functions, no dependency on Express), over
// `runner.status()`: live views of the history and the lock node, so a probe costs no database
// request. A probe answers within its own deadline, never hangs.

const { native, callSync, codedError } = require('./native.js')
const { checkOptions } = require('./config.js')
const { guideStatus } = require('./locking.js')

/** ms a probe waits for current values before answering 503. */
const DEFAULT_TIMEOUT = 1500
/** Extra time the handler gives the native answer before it answers 503 itself. */
const GRACE = 250
const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8'

function checkRunner(runner, what) {
  if (!runner || typeof runner.status !== 'function' || !runner._native) {
    throw codedError('CONFIG_INVALID', `${what}(runner, options) needs the FirebaseRunner from FirebaseRunner.getInstance()`)
  }
}

/** The options of `what`, checked by the core (names, kinds; `version` as a target). */
function checked(what, options) {
  checkOptions(`${what}()`, options)
  const { version, timeout = DEFAULT_TIMEOUT, ...rest } = options ?? {}
  const target = version === undefined || version === null ? undefined : callSync(() => native.parseTarget(String(version), false))
  return { ...rest, version: target, timeout }
}

/** `promise`, or a CONNECTION_FAILED rejection once `ms` pass. */
function deadline(promise, ms) {
  let timer
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(codedError('CONNECTION_FAILED', `No answer from the database within ${ms} ms`)), ms)
    timer.unref?.()
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

function send(req, res, code, text, type) {
  if (res.headersSent || res.writableEnded) return
  res.statusCode = code
  res.setHeader('Content-Type', type)
  res.setHeader('Cache-Control', 'no-store')
  res.setHeader('Content-Length', Buffer.byteLength(text))
  res.end(req.method === 'HEAD' ? undefined : text)
}

/** What a probe answers: `[statusCode, body]` (the verdict and its reason come from the core). */
async function probe(runner, options, timeout) {
  let h
  try {
    h = await deadline(runner._native.health(options), timeout + GRACE)
  } catch (err) {
    return [503, { status: 'unavailable', reason: err.message }]
  }
  const body = { status: h.status }
  if (h.reason !== null) body.reason = h.reason
  if (h.runner) Object.assign(body, { lock: guideStatus(h.runner.lock), appliedVersion: h.runner.appliedVersion, pending: h.runner.pending })
  return [h.httpStatus, body]
}

/**
 * A `(req, res)` handler: 200 `{ status: 'ok', lock, appliedVersion, pending }`, or 503
 * `{ status, reason, ... }` when the database is unreachable (`status: 'unavailable'`) or, with
 * `requireUpToDate`, while a migration the app needs is pending (`status: 'pending'`).
 * Options: `requireUpToDate` (default false), `version` (the version the app needs; default
 * the newest migration in its folder), `timeout` (ms a probe waits for current values before
 * answering 503; default 1500).
 */
function healthHandler(runner, options = {}) {
  checkRunner(runner, 'healthHandler')
  const { requireUpToDate = false, version, timeout } = checked('healthHandler', options)
  return async function health(req, res) {
    const [code, body] = await probe(runner, { requireUpToDate, version, timeout }, timeout)
    send(req, res, code, JSON.stringify(body), 'application/json; charset=utf-8')
  }
}

/** The app's prom-client, or null when it does not use it (an optional peer dependency). */
function optionalPromClient() {
  try {
    return require('prom-client')
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes("'prom-client'")) return null
    throw err
  }
}

/**
 * Register the runner's metrics into a prom-client registry (`registry`, default prom-client's
 * default registry), computed at each scrape from `runner.status()` (no database request).
 * Registering again replaces the previous registration. Returns the registry.
 */
function registerMetrics(runner, options = {}) {
  checkRunner(runner, 'registerMetrics')
  const { registry: given, version, timeout } = checked('registerMetrics', options)
  const client = optionalPromClient()
  if (!client) throw codedError('CONFIG_INVALID', 'registerMetrics needs prom-client: npm install prom-client (or use metricsHandler, which serves the text format without it)')
  const registry = given || client.register
  // One status per scrape, shared by the metrics' collect().
  let snapshot = null
  const samples = async (name) => {
    if (!snapshot) {
      snapshot = deadline(runner._native.metrics({ version, timeout }), timeout + GRACE).catch(() => [])
      setTimeout(() => (snapshot = null), 100).unref?.()
    }
    return (await snapshot).find((m) => m.name === name)?.samples ?? []
  }
  for (const d of native.metricDefinitions()) {
    registry.removeSingleMetric(d.name)
    const Metric = d.kind === 'counter' ? client.Counter : client.Gauge
    new Metric({
      name: d.name,
      help: d.help,
      labelNames: d.labelNames,
      registers: [registry],
      async collect() {
        const values = await samples(d.name)
        this.reset()
        for (const s of values) {
          // (a counter starts at 0 after reset; old prom-client versions took inc(0) as inc(1))
          if (d.kind === 'gauge') this.set(s.labels, s.value)
          else if (s.value > 0) this.inc(s.labels, s.value)
        }
      },
    })
  }
  return registry
}

/**
 * A `(req, res)` handler serving the Prometheus text format: `msr_lock_held`,
 * `msr_lock_holder_info{executor,host}`, `msr_lock_lease_remaining_seconds`,
 * `msr_migrations_applied_total`, `msr_migrations_pending`, `msr_last_run_duration_seconds` and
 * `msr_last_run_success` (the last two `{command}`, for this process's last run). When the app
 * uses prom-client the metrics are registered into its registry (`registry`, default the
 * default registry) and the handler serves that registry, the app's own metrics included;
 * `registry: false` serves the runner's metrics alone, without prom-client.
 */
function metricsHandler(runner, options = {}) {
  checkRunner(runner, 'metricsHandler')
  const { registry, version, timeout } = checked('metricsHandler', options)
  const useProm = registry !== false && Boolean(registry || optionalPromClient())
  const reg = useProm ? registerMetrics(runner, { registry: registry || undefined, version, timeout }) : null
  if (reg) {
    return async function metrics(req, res) {
      try {
        send(req, res, 200, await reg.metrics(), reg.contentType)
      } catch (err) {
        send(req, res, 503, `# ${err.message}\n`, PROMETHEUS_TEXT)
      }
    }
  }
  return async function metrics(req, res) {
    try {
      send(req, res, 200, await deadline(runner._native.metricsText({ version, timeout }), timeout + GRACE), PROMETHEUS_TEXT)
    } catch (err) {
      send(req, res, 503, `# ${err.message.replace(/\n/g, ' ')}\n`, PROMETHEUS_TEXT)
    }
  }
}

module.exports = { healthHandler, metricsHandler, registerMetrics }
