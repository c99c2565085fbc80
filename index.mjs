// Public entry (ESM): the same named exports as index.js.
import cjs from './index.js'

export const {
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
  defaultExecutorId,
} = cjs
export default cjs
