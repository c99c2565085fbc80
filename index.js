'use strict'
// Public entry (CommonJS). ESM users get the same named exports from index.mjs.

const { FirebaseConfig } = require('./lib/config.js')
const { FirebaseRunner } = require('./lib/runner.js')
const { FirebaseFleetRunner } = require('./lib/fleet.js')
const { FirebaseLockingService } = require('./lib/locking.js')
const { EntityService, FirebaseDataService } = require('./lib/entity-service.js')
const { Database, Reference, Query, DataSnapshot, ServerValue } = require('./lib/database.js')
const { startEmulator } = require('./lib/emulator.js')
const { native } = require('./lib/native.js')
const { LoggerMetricsCollector, ConsoleMetricsCollector, JsonMetricsCollector, CsvMetricsCollector } = require('./lib/metrics.js')

/** Exit codes of the `msr-firebase` CLI: the statuses its commands return, from the core's table. */
const ExitCode = Object.freeze(Object.fromEntries(native.exitStatuses().flatMap((s) => (s.signal == null ? [[s.name, s.code]] : []))))

module.exports = {
  FirebaseRunner,
  FirebaseFleetRunner,
  FirebaseConfig,
  FirebaseLockingService,
  EntityService,
  FirebaseDataService,
  Database,
  Reference,
  Query,
  DataSnapshot,
  ServerValue,
  startEmulator,
  LoggerMetricsCollector,
  ConsoleMetricsCollector,
  JsonMetricsCollector,
  CsvMetricsCollector,
  ExitCode,
  defaultExecutorId: () => native.defaultExecutorId(),
}
