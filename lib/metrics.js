'use strict'
// The predecessor's built-in metrics collectors, for `getInstance({ metricsCollectors })`:
// LoggerMetricsCollector (lines through a logger), ConsoleMetricsCollector (the same on the
// console, prefix `[METRICS]`), JsonMetricsCollector (a JSON summary file written on close)
// and CsvMetricsCollector (one row per script, written on close). Each method is optional;
// the runner calls them per `lib/hooks.js`.

const fs = require('node:fs/promises')
const path = require('node:path')

const now = () => new Date().toISOString()

class LoggerMetricsCollector {
  /** `{ logger, prefix = '[METRICS]' }`; `logger` has info/warn/error. */
  constructor({ logger, prefix } = {}) {
    if (!logger) throw new TypeError('LoggerMetricsCollector needs { logger } (an object with info, warn and error)')
    this.logger = logger
    this.prefix = prefix || '[METRICS]'
    this.running = new Map()
  }
  recordMigrationStart(ctx) {
    this.logger.info(`${this.prefix} Migration started - ${ctx.pending} pending scripts, ${ctx.executed} already executed`)
  }
  recordScriptStart(script) {
    this.running.set(script.name, Date.now())
    this.logger.info(`${this.prefix} ${script.name} started`)
  }
  recordScriptComplete(script, duration) {
    this.running.delete(script.name)
    this.logger.info(`${this.prefix} ${script.name} completed in ${duration}ms`)
  }
  recordScriptError(script, error) {
    this.running.delete(script.name)
    this.logger.error(`${this.prefix} ${script.name} failed: ${error.message}`)
  }
  recordMigrationComplete(result, duration) {
    const n = result.executed.length
    if (result.success) this.logger.info(`${this.prefix} Migration completed - ${n} scripts in ${duration}ms (success)`)
    else this.logger.error(`${this.prefix} Migration failed - ${n} succeeded, ${(result.errors || []).length} failed in ${duration}ms`)
  }
  recordRollback(strategy, success, duration, outcome) {
    const took = duration === undefined ? '' : ` in ${duration}ms`
    const what = outcome ? `: ${outcome}` : ''
    this.logger.info(`${this.prefix} Rollback (${strategy}) ${success ? 'done' : 'failed'}${took}${what}`)
  }
  recordValidationErrors(errors) {
    this.logger.warn(`${this.prefix} Validation errors: ${errors.length} issues found`)
    for (const e of errors) this.logger.warn(`${this.prefix}   - ${e.message}`)
  }
  recordBackup(backupPath, duration) {
    this.logger.info(`${this.prefix} Backup created in ${duration}ms: ${backupPath}`)
  }
  recordError(error) {
    this.logger.error(`${this.prefix} Error: ${error.message}`)
  }
  close() {
    if (this.running.size === 0) return
    this.logger.warn(`${this.prefix} Warning: ${this.running.size} scripts never completed`)
    for (const [name, t] of this.running) this.logger.warn(`${this.prefix}   - ${name} (running for ${Date.now() - t}ms)`)
  }
}

class ConsoleMetricsCollector extends LoggerMetricsCollector {
  constructor() {
    super({ logger: { info: console.log, warn: console.warn, error: console.error }, prefix: '[METRICS]' })
  }
}

class JsonMetricsCollector {
  /** `{ filePath, pretty = true }`: the summary is written to `filePath` on close. */
  constructor({ filePath, pretty } = {}) {
    if (!filePath) throw new TypeError('JsonMetricsCollector needs { filePath }')
    this.filePath = filePath
    this.pretty = pretty !== false
    this.metrics = {
      summary: { startTime: '', migrationsExecuted: 0, migrationsSucceeded: 0, migrationsFailed: 0, success: false },
      migrations: [],
      rollbacks: [],
      backups: [],
      validationErrors: [],
      errors: [],
    }
  }
  recordMigrationStart() {
    this.metrics.summary.startTime = now()
  }
  recordScriptStart(script) {
    const m = this.metrics.migrations.find((x) => x.name === script.name)
    if (m) Object.assign(m, { status: 'running', startTime: now() })
    else this.metrics.migrations.push({ name: script.name, timestamp: script.timestamp, startTime: now(), status: 'running' })
  }
  recordScriptComplete(script, duration) {
    const m = this.metrics.migrations.find((x) => x.name === script.name)
    if (m) Object.assign(m, { status: 'success', endTime: now(), duration })
    this.metrics.summary.migrationsSucceeded += 1
  }
  recordScriptError(script, error) {
    const m = this.metrics.migrations.find((x) => x.name === script.name)
    if (m) Object.assign(m, { status: 'failed', endTime: now(), error: error.message })
    this.metrics.summary.migrationsFailed += 1
  }
  recordMigrationComplete(result, duration) {
    Object.assign(this.metrics.summary, { endTime: now(), totalDuration: duration, migrationsExecuted: result.executed.length, success: result.success })
  }
  recordRollback(strategy, success, duration, outcome) {
    this.metrics.rollbacks.push({ timestamp: now(), strategy, success, duration, outcome })
  }
  recordValidationErrors(errors) {
    for (const e of errors) this.metrics.validationErrors.push({ timestamp: now(), message: e.message, severity: 'error' })
  }
  recordBackup(backupPath, duration) {
    this.metrics.backups.push({ timestamp: now(), path: backupPath, duration })
  }
  recordError(error) {
    this.metrics.errors.push({ timestamp: now(), message: error.message, stack: error.stack })
  }
  async close() {
    await fs.mkdir(path.dirname(this.filePath), { recursive: true })
    await fs.writeFile(this.filePath, JSON.stringify(this.metrics, null, this.pretty ? 2 : undefined), 'utf-8')
  }
}

const CSV_HEADER = ['timestamp', 'migration', 'migrationTimestamp', 'durationMs', 'status', 'error']

class CsvMetricsCollector {
  /**
   * `{ filePath, includeHeader = true, delimiter = ',' }`: one row per script, written on close
   * (with the header the file is replaced; without it rows are appended).
   */
  constructor({ filePath, includeHeader, delimiter } = {}) {
    if (!filePath) throw new TypeError('CsvMetricsCollector needs { filePath }')
    this.filePath = filePath
    this.includeHeader = includeHeader !== false
    this.delimiter = delimiter || ','
    this.rows = []
  }
  escape(v) {
    const s = String(v)
    return s.includes(this.delimiter) || s.includes('"') || s.includes('\n') ? `"${s.replace(/"/g, '""')}"` : s
  }
  recordScriptComplete(script, duration) {
    this.rows.push([now(), script.name, script.timestamp, duration, 'success', ''])
  }
  recordScriptError(script, error) {
    this.rows.push([now(), script.name, script.timestamp, '', 'failed', this.escape(error.message)])
  }
  async close() {
    // With the header the file is rewritten with every row so far; without it only the rows
    // not written yet are appended.
    const rows = this.includeHeader ? this.rows : this.rows.slice(this.appended || 0)
    if (rows.length === 0) return
    const body = rows.map((r) => r.join(this.delimiter)).join('\n') + '\n'
    const header = CSV_HEADER.join(this.delimiter) + '\n'
    await fs.mkdir(path.dirname(this.filePath), { recursive: true })
    if (this.includeHeader) return fs.writeFile(this.filePath, header + body, 'utf-8')
    this.appended = this.rows.length
    const exists = await fs.access(this.filePath).then(
      () => true,
      () => false,
    )
    return exists ? fs.appendFile(this.filePath, body, 'utf-8') : fs.writeFile(this.filePath, header + body, 'utf-8')
  }
}

module.exports = { LoggerMetricsCollector, ConsoleMetricsCollector, JsonMetricsCollector, CsvMetricsCollector }
