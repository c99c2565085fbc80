'use strict'
// Public entry (CommonJS). ESM users get the same named exports from index.mjs.

const { FirebaseConfig } = require('./lib/config.js')
const { FirebaseRunner } = require('./lib/runner.js')
const { FirebaseLockingService } = require('./lib/locking.js')
const { EntityService, FirebaseDataService } = require('./lib/entity-service.js')
const { Database, Reference, Query, DataSnapshot, ServerValue } = require('./lib/database.js')
const { startEmulator } = require('./lib/emulator.js')
const { native } = require('./lib/native.js')
const { LoggerMetricsCollector, ConsoleMetricsCollector, JsonMetricsCollector, CsvMetricsCollector } = require('./lib/metrics.js')

/** Exit codes of the `msr-firebase` CLI. */
const ExitCode = Object.freeze({
  SUCCESS: 0,
  GENERAL_ERROR: 1,
  VALIDATION_ERROR: 2,
  MIGRATION_FAILED: 3,
  ROLLBACK_FAILED: 4,
  BACKUP_FAILED: 5,
  RESTORE_FAILED: 6,
  DATABASE_CONNECTION_ERROR: 7,
})

module.exports = {
  FirebaseRunner,
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
