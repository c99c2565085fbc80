// Public types of @migration-script-runner/firebase.

export type RollbackStrategy = 'backup' | 'down' | 'both' | 'none'
export type BackupMode = 'full' | 'create_only' | 'restore_only' | 'manual'
export type LogLevel = 'error' | 'warn' | 'info' | 'debug'

export interface LockingConfig {
  /** Default false. */
  enabled?: boolean
  /** Lease length in ms (default 600000). The holder renews every timeout/3. */
  timeout?: number
  /** Library `migrate()`: extra attempts when the lock is held (default 0 = fail fast). */
  retryAttempts?: number
  /** ms between attempts (default 1000). */
  retryDelay?: number
  /** Longest wait for a held lock in ms (the CLI waits by default). */
  waitTimeout?: number | null
  /** Renewal period in ms (default timeout / 3). */
  renewInterval?: number | null
  /** Fixed executor id (default `hostname-pid-uuid`). */
  executorId?: string | null
  /** While waiting for a held lock, log "still waiting" this often, in ms (default 30000). */
  waitLogInterval?: number
  /**
   * Default false. The scripts' writes carry the holder's lock epoch as `auth.msrLockEpoch` in
   * their auth override, so the database's rules (`msr-firebase rules:fencing` prints them) refuse
   * a write from a holder whose lock was taken over, even one that arrives late.
   */
  serverFencing?: boolean
}

export interface BackupConfig {
  folder?: string
  prefix?: string
  suffix?: string
  extension?: string
  existingBackupPath?: string | null
  /**
   * Default false: restores (`backup restore`, a rollback's restore) send `disableTriggers=true`,
   * so restored data does not fire Cloud Functions triggers as if users wrote it again. True: they
   * fire them.
   */
  restoreTriggers?: boolean
}

/** How the runner writes. */
export interface WritesConfig {
  /**
   * Default false. Every write of a run — the scripts' `db`, `bulkWriter()`, the lock, the history —
   * sends `disableTriggers=true`: the database fires no Cloud Functions triggers for them (for
   * backfills; leave it off for migrations whose functions must run).
   */
  disableTriggers?: boolean
}

/** Deadlines of requests to the database, in ms. */
export interface NetworkConfig {
  /** Connect deadline (default 5000). */
  connectTimeout?: number
  /** How long a request waits for the server to answer, and for each further piece of a large answer (default 10000). */
  responseTimeout?: number
  /** How long a failing request is retried before its error is reported (default 30000). */
  retryWindow?: number
}

/** How the scripts' `db` answers queries. */
export interface QueriesConfig {
  /**
   * A query the database refuses for want of an index (`Index not defined`, a child or value
   * ordering without `.indexOn`): 'fallback' (default) downloads the node and filters it on the
   * client as firebase-admin does, warning once per location and child (`query.unindexed`);
   * 'error' fails the query naming the `.indexOn` to add.
   */
  unindexed?: 'fallback' | 'error'
}

export declare class FirebaseConfig {
  constructor(values?: Partial<FirebaseConfig>)
  folder: string
  tableName: string
  shift?: string | null
  databaseUrl?: string | null
  /** Many databases in one run: each `{ name, databaseUrl, shift?, credentials? }`, the rest shared. */
  databases?: DatabaseEntry[]
  /** The plain form of `databases`: URLs only, each named after its instance. */
  databaseUrls?: string[]
  /** How many databases of a set run at a time (default 4). */
  concurrency: number
  /** After one database of a set fails, start no other and stop the running ones after their current migration (default false). */
  failFast: boolean
  applicationCredentials?: string | null
  /**
   * firebase-admin's option: act as this `auth` under Security Rules (e.g. `{ uid: 'migrator' }`);
   * `null` = as an unauthenticated client; unset = full admin access.
   */
  databaseAuthVariableOverride?: Record<string, unknown> | null
  filePatterns: Array<string | RegExp>
  beforeMigrateName: string | null
  recursive: boolean
  dryRun: boolean
  logLevel: LogLevel
  /** 'text' (default) or 'json': each log line as one JSON object `{ time, level, event, message, ...fields }`. */
  logFormat: 'text' | 'json'
  rollbackStrategy: RollbackStrategy
  backupMode: BackupMode
  backup: BackupConfig
  validateBeforeRun: boolean
  validateMigratedFiles: boolean
  validateMigratedFilesLocation: boolean
  checksumAlgorithm: 'sha256' | 'md5'
  duplicateTimestampMode: 'warn' | 'error' | 'ignore'
  displayLimit: number
  /** Longest run of one script's up/down in ms; unset = no limit. When it fires: SCRIPT_TIMEOUT, no rollback, the script's further writes refused. */
  scriptTimeout?: number | null
  locking: LockingConfig
  network: NetworkConfig
  queries: QueriesConfig
  writes: WritesConfig
  assign(values: Partial<FirebaseConfig>): this
  /** `p` under the shift; with no shift, `p` itself. */
  buildPath(p: string): string
  getRoot(): string
  toJSON(): Record<string, unknown>
  /** Throws an Error with code CONFIG_INVALID naming the field. */
  validate(): this
}

export interface LockStatus {
  isLocked: boolean
  lockedBy: string
  lockedAt: Date
  expiresAt: Date
  processId: number | null
  hostname: string
  epoch: number
}

export interface AcquireOptions {
  wait?: boolean
  waitTimeout?: number
  retryAttempts?: number
  retryDelay?: number
  executorId?: string
}

export interface HeldLock {
  executorId: string
  /** Fencing epoch: grows with every new owner. */
  epoch: number
  readonly stopRequested: boolean
  /** Rejects with code LOCK_LOST (lock gone) or INTERRUPTED (SIGINT/SIGTERM). */
  check(): Promise<void>
  /**
   * The database with every write fenced by this lock's lease: each attempt (retries and re-sends
   * included) is refused with LOCK_LOST once the lease deadline has passed or the lock is known lost.
   */
  readonly database: Database
}

export interface GetLockStatusOptions {
  /**
   * Answer from the lock node's live view (its event stream, opened by the first such call and
   * kept open): no database request per call. Default false: one read.
   */
  cached?: boolean
  /** With `cached`: ms to wait for a current view before reading once instead (default 2000). */
  timeout?: number
}

/**
 * `lockingService.watchLockStatus()`: the lock's status kept current from the lock node's event
 * stream. `change` fires with the new status (null when free), also when the holder's lease runs
 * out; iterating yields the status now, then every change.
 */
export declare class LockStatusWatch implements AsyncIterable<LockStatus | null> {
  /** The last status known (`undefined` before the first answer). */
  readonly status: LockStatus | null | undefined
  /** Whether `status` is current (the event stream open, or the last read answered). */
  readonly current: boolean
  /** Why `status` is not current (null when it is). */
  readonly reason: string | null
  on(event: 'change', listener: (status: LockStatus | null) => void): this
  once(event: 'change', listener: (status: LockStatus | null) => void): this
  off(event: 'change', listener: (status: LockStatus | null) => void): this
  close(): void
  [Symbol.asyncIterator](): AsyncIterator<LockStatus | null>
}

export declare class FirebaseLockingService {
  readonly lockPath: string
  acquireLock(executorId: string): Promise<boolean>
  verifyLockOwnership(executorId: string): Promise<boolean>
  releaseLock(executorId: string): Promise<void>
  /** One read of the lock node, or with `{ cached: true }` the live view (no request). */
  getLockStatus(options?: GetLockStatusOptions): Promise<LockStatus | null>
  /** The status as it changes, from the lock node's event stream (no request per read). */
  watchLockStatus(): LockStatusWatch
  forceReleaseLock(): Promise<void>
  checkAndReleaseExpiredLock(): Promise<void>
  initLockStorage(): Promise<void>
  ensureLockStorageAccessible(): Promise<boolean>
  runExclusive<T>(work: (lock: HeldLock) => Promise<T> | T, options?: AcquireOptions): Promise<T>
}

export interface DataSnapshot {
  readonly key: string | null
  readonly ref: Reference
  /** A fresh copy of the value on every call (firebase-admin semantics). */
  val(): any
  exportVal(): any
  toJSON(): any
  exists(): boolean
  /** Always null: priorities are not supported. */
  getPriority(): null
  child(path: string): DataSnapshot
  hasChild(path: string): boolean
  hasChildren(): boolean
  numChildren(): number
  readonly size: number
  /** Children in RTDB order; stops (and returns true) when `action` returns true. */
  forEach(action: (child: DataSnapshot) => boolean | void): boolean
}

/** A query bound: a primitive (strings only when ordering by key). */
export type QueryBound = string | number | boolean | null

export interface Query {
  readonly ref: Reference
  orderByChild(path: string): Query
  orderByKey(): Query
  orderByValue(): Query
  /** Throws NOT_SUPPORTED: priorities are not supported (order by a child instead). */
  orderByPriority(): never
  startAt(value?: QueryBound): Query
  /** Children strictly after `value` (the paging loop: orderByKey().startAfter(last).limitToFirst(n)). */
  startAfter(value?: QueryBound): Query
  endAt(value?: QueryBound): Query
  /** Children strictly before `value`. */
  endBefore(value?: QueryBound): Query
  equalTo(value: QueryBound): Query
  /** Without orderBy*(), limits order by key (as firebase-admin). */
  limitToFirst(n: number): Query
  limitToLast(n: number): Query
  get(): Promise<DataSnapshot>
  once(eventType?: 'value', callback?: (snap: DataSnapshot) => void): Promise<DataSnapshot>
  /** Throws NOT_SUPPORTED: no realtime listeners in migration scripts (use get()/once('value')). */
  on(...args: unknown[]): never
  off(...args: unknown[]): void
  /** The absolute, URL-encoded location (`https://<db>.firebaseio.com/a/b`; `?ns=` for an emulator). */
  toString(): string
  toJSON(): string
  isEqual(other: Query | null): boolean
}

export interface ThenableReference extends Reference, PromiseLike<Reference> {}

export interface ChildrenOptions {
  /** Children per request (default 1000). */
  pageSize?: number
}

/** The children of a node in key order, read a page at a time. */
export interface Children extends AsyncIterable<DataSnapshot> {
  /** The same children, one page (an array of snapshots) at a time. */
  pages(): AsyncIterable<DataSnapshot[]>
}

export interface Reference extends Query {
  readonly key: string | null
  readonly parent: Reference | null
  readonly root: Reference
  /** Throws INVALID_PATH (firebase-admin's message) for keys RTDB cannot store. */
  child(path: string): Reference
  /**
   * Throws synchronously for data RTDB cannot store (undefined, NaN, functions, invalid keys).
   * Replacing a node too big for one write rejects with WRITE_TOO_BIG (naming its size and the bulk
   * helpers); `set(null)` deletes like remove().
   */
  set(value: unknown, onComplete?: (err: Error | null) => void): Promise<void>
  /** Rejects with WRITE_TOO_BIG when it would change more data than one write may. */
  update(values: Record<string, unknown>, onComplete?: (err: Error | null) => void): Promise<void>
  /** A node too big for one write (WRITE_TOO_BIG) is deleted in chunks (a `write.chunked` log line). */
  remove(onComplete?: (err: Error | null) => void): Promise<void>
  push(value?: unknown, onComplete?: (err: Error | null) => void): ThenableReference
  transaction(
    update: (current: any) => unknown,
    onComplete?: (err: Error | null, committed: boolean, snapshot: DataSnapshot | null) => void,
  ): Promise<{ committed: boolean; snapshot: DataSnapshot }>
  /** `for await (const child of ref.children({ pageSize: 1000 }))`: bounded memory for any size. */
  children(options?: ChildrenOptions): Children
  /** Throw NOT_SUPPORTED, naming the alternative. */
  onDisconnect(): never
  setPriority(priority: unknown, onComplete?: unknown): never
  setWithPriority(value: unknown, priority: unknown, onComplete?: unknown): never
}

export interface BulkWriterOptions {
  /** Largest PATCH body in bytes (default 4 MB; RTDB's limit is 256 MB). */
  maxBytes?: number
  /** Most paths in one PATCH (default 10000). */
  maxEntries?: number
  /** PATCHes in flight at once (default 4). */
  inFlight?: number
  /** How often progress goes to the runner's logger, in ms (default 10000). */
  logEveryMs?: number
  /** Where progress goes (default: the runner's logger). */
  log?: (level: LogLevel, message: string) => void
  /**
   * Send `disableTriggers=true` on this writer's PATCHes (true) or not (false), whatever
   * `writes.disableTriggers` says; default: as the runner's `db` does.
   */
  disableTriggers?: boolean
}

export interface BulkWriterStats {
  writes: number
  batches: number
  bytes: number
}

/**
 * Batched writes for big jobs: each call is one path of a multi-path update; paths are packed into
 * PATCHes within the budget, written in order wherever they overlap. The returned promises resolve
 * once the entry is queued with room to spare (await them to keep memory bounded); flush()/close()
 * resolve once everything is written, and reject if a batch failed (the next call throws then too).
 */
export interface BulkWriter {
  set(target: Reference | string, value: unknown): Promise<void>
  /** Each key of `values` (a path below `target`) becomes one entry, like ref.update(). */
  update(target: Reference | string, values: Record<string, unknown>): Promise<void>
  delete(target: Reference | string): Promise<void>
  remove(target: Reference | string): Promise<void>
  flush(): Promise<void>
  close(): Promise<BulkWriterStats>
}

export interface Database {
  /** Throws INVALID_PATH (firebase-admin's message) for keys RTDB cannot store. */
  ref(path?: string | Reference): Reference
  /** A reference from an absolute URL of this database (what ref.toString() gives). */
  refFromURL(url: string): Reference
  readonly ServerValue: typeof ServerValue
  bulkWriter(options?: BulkWriterOptions): BulkWriter
}

export declare const ServerValue: {
  readonly TIMESTAMP: { '.sv': 'timestamp' }
  increment(delta: number): { '.sv': { increment: number } }
}

/** What migration scripts receive as `db`. */
export interface IFirebaseDB {
  database: Database
  /** A real round trip; false when the database cannot be reached. */
  checkConnection(): Promise<boolean>
}

export interface FirebaseHandler {
  cfg: FirebaseConfig
  db: IFirebaseDB
  lockingService?: FirebaseLockingService
  backup: { backup(): Promise<string>; restore(path: string): Promise<void> }
  getName(): string
  getVersion(): string
}

export interface MigrationInfo {
  name: string
  filepath: string
  timestamp: number
  startedAt?: number
  finishedAt?: number
  username?: string
  result?: unknown
  checksum?: string
}

export interface MigrationResult {
  success: boolean
  executed: MigrationInfo[]
  migrated: MigrationInfo[]
  ignored: MigrationInfo[]
  errors: string[]
  /** What the run set out to do, in order (to run, to mark as applied, or to roll back); on a dry run, what it would have done. */
  plan: MigrationInfo[]
  dryRun: boolean
}

export interface RunOptions {
  dryRun?: boolean
  noLock?: boolean
  /** Wait for a held lock (library default: the config's retries or waitTimeout, else fail fast with LOCK_HELD). */
  wait?: boolean
  /** ms; alone it means "wait this long". */
  waitTimeout?: number
  /** Extra attempts when the lock is held (default: locking.retryAttempts). */
  retryAttempts?: number
  /** ms between attempts (default: locking.retryDelay). */
  retryDelay?: number
  /** `migrate()`: record the pending migrations as executed without running them (adopting an existing database). */
  markApplied?: boolean
  /** `down(null, { steps })`: roll back the newest N executed migrations. */
  steps?: number
}

export type Logger = ((level: LogLevel, message: string) => void) | { info?: Function; warn?: Function; error?: Function; debug?: Function; log?: Function }

export interface MigrationError extends Error {
  /** A stable code, e.g. SCRIPT_FAILED, SCRIPT_TIMEOUT, LOCK_HELD, LOCK_LOST, CONNECTION_FAILED, INTERRUPTED. */
  code: string
}

/** What the lock hooks receive. */
export interface LockEventInfo {
  event: 'lock.waiting' | 'lock.still-waiting' | 'lock.gave-up' | 'lock.acquired' | 'lock.renewed' | 'lock.lost' | 'lock.released' | 'lock.force-released'
  /** The lock node, `{shift}/migrations/_lock`. */
  path: string
  /** While waiting: the other process; once acquired or renewed: this one; for a force release: what was released. */
  holder: LockStatus | null
  /** ms waited so far. */
  waited: number | null
  /** ms this wait may last (null: no time limit). */
  waitLimit: number | null
  /** The setting the limit came from, e.g. `locking.waitTimeout (MSR_LOCKING_WAIT_TIMEOUT)`. */
  limitSetBy: string | null
  attempts: number | null
  epoch: number | null
  /** The log line's text. */
  message: string
}

/**
 * The predecessor's hooks, plus lock hooks. Called in order and awaited; a hook that throws is
 * reported as a warning and the run goes on. Order of a migrate: onBeforeBackup, onAfterBackup
 * (when a backup is taken), onStart, per script onBeforeMigrate then onAfterMigrate or
 * onMigrationError (then onBeforeRestore/onAfterRestore when the backup is restored), and
 * finally onComplete or onError (after the lock is released). Lock hooks fire as the lock
 * changes: onLockWait (when a wait starts, every locking.waitLogInterval, and when it gives up),
 * onLockAcquired, onLockRenewed, onLockLost, onLockReleased, onForceRelease.
 */
/** In a run over many databases, every hook and collector method gets this after its own arguments. */
export interface DatabaseContext {
  database: string
}

export interface MigrationHooks {
  onStart?(total: number, pending: number, database?: DatabaseContext): void | Promise<void>
  onBeforeMigrate?(script: MigrationInfo, database?: DatabaseContext): void | Promise<void>
  onAfterMigrate?(script: MigrationInfo, result: unknown, database?: DatabaseContext): void | Promise<void>
  onMigrationError?(script: MigrationInfo, error: MigrationError, database?: DatabaseContext): void | Promise<void>
  onComplete?(result: MigrationResult, database?: DatabaseContext): void | Promise<void>
  onError?(error: MigrationError, database?: DatabaseContext): void | Promise<void>
  onBeforeBackup?(database?: DatabaseContext): void | Promise<void>
  onAfterBackup?(backupPath: string, database?: DatabaseContext): void | Promise<void>
  onBeforeRestore?(database?: DatabaseContext): void | Promise<void>
  onAfterRestore?(database?: DatabaseContext): void | Promise<void>
  onLockWait?(info: LockEventInfo, database?: DatabaseContext): void | Promise<void>
  onLockAcquired?(info: LockEventInfo, database?: DatabaseContext): void | Promise<void>
  onLockRenewed?(info: LockEventInfo, database?: DatabaseContext): void | Promise<void>
  onLockLost?(info: LockEventInfo, database?: DatabaseContext): void | Promise<void>
  onLockReleased?(info: LockEventInfo, database?: DatabaseContext): void | Promise<void>
  onForceRelease?(info: LockEventInfo, database?: DatabaseContext): void | Promise<void>
}

export interface MigrationContext {
  total: number
  pending: number
  executed: number
  startTime: number
}

/** The predecessor's IMetricsCollector: every method optional; errors are isolated. */
export interface MetricsCollector {
  recordMigrationStart?(context: MigrationContext, database?: DatabaseContext): void | Promise<void>
  recordMigrationComplete?(result: MigrationResult, duration: number, database?: DatabaseContext): void | Promise<void>
  recordScriptStart?(script: MigrationInfo, database?: DatabaseContext): void | Promise<void>
  recordScriptComplete?(script: MigrationInfo, duration: number, database?: DatabaseContext): void | Promise<void>
  recordScriptError?(script: MigrationInfo, error: MigrationError, database?: DatabaseContext): void | Promise<void>
  /** `outcome`: what the rollback did, in words (e.g. "restored the backup ...", "nothing was undone (...)"). */
  recordRollback?(strategy: RollbackStrategy, success: boolean, duration?: number, outcome?: string, database?: DatabaseContext): void | Promise<void>
  recordValidationErrors?(errors: Error[], database?: DatabaseContext): void | Promise<void>
  recordBackup?(backupPath: string, duration: number, database?: DatabaseContext): void | Promise<void>
  recordError?(error: MigrationError, database?: DatabaseContext): void | Promise<void>
  close?(database?: DatabaseContext): void | Promise<void>
}

export declare class LoggerMetricsCollector implements MetricsCollector {
  constructor(config: { logger: { info: Function; warn: Function; error: Function }; prefix?: string })
}
/** LoggerMetricsCollector on the console, prefix `[METRICS]`. */
export declare class ConsoleMetricsCollector extends LoggerMetricsCollector {
  constructor()
}
/** A JSON summary (summary, migrations, rollbacks, backups, errors) written to `filePath` on close. */
export declare class JsonMetricsCollector implements MetricsCollector {
  constructor(config: { filePath: string; pretty?: boolean })
}
/** One CSV row per script (timestamp, migration, migrationTimestamp, durationMs, status, error), written on close. */
export declare class CsvMetricsCollector implements MetricsCollector {
  constructor(config: { filePath: string; includeHeader?: boolean; delimiter?: string })
}

export interface RunnerOptions {
  config?: FirebaseConfig | Partial<FirebaseConfig>
  logger?: Logger
  hooks?: MigrationHooks | MigrationHooks[]
  metricsCollectors?: MetricsCollector[]
}

/** `runner.rehearse()` options. */
export interface RehearseOptions {
  /** Stop at this version. */
  target?: number | string
  /** Rehearse on this backup file instead of reading the database (no database is contacted). */
  fromBackup?: string
  /** After the ups, run the downs back to the start and check that each undoes its up. */
  down?: boolean
  /** Write the data as the migrations left it to this file, as a backup file (restorable). */
  keep?: string
  /** Example paths per migration (default 10). */
  examples?: number
  /** Run the rehearsal without the lock. */
  noLock?: boolean
  /** Rehearse under this rules file (the rules about to be deployed); default: the database's own rules. */
  rules?: string
  /** Warnings (queries that need an index, data a `.validate` rule refuses) fail the rehearsal. */
  strict?: boolean
}

/** What production's rules, indexes and limits made of one rehearsed migration. */
export interface RehearsalFindings {
  /** Queries refused for want of an index and answered on the client (a warning each), with the rules line to add at `path`. */
  unindexed: Array<{ path: string; child: string; indexOn: string }>
  /** Writes the rules denied (a failure, as in production); the first 100. */
  denied: Array<{ method: string; path: string; status: number }>
  /** Writes refused as too big for one request (`WRITE_TOO_BIG` under production's write-size limit, `large` by default), by method and path: `chunked` = the node was deleted in chunks instead, `failed` = not written (a failure, as in production). */
  tooBig: Array<{ method: string; path: string; refusals: number; handled: 'chunked' | 'failed' }>
  /** Other writes the copy refused (bad requests). */
  refused: Array<{ method: string; path: string; status: number }>
  /** Nodes too big to delete in one request, deleted in chunks. */
  chunked: Array<{ path: string; requests: number }>
  /** Data it left that a `.validate` rule refuses (a warning: clients can no longer write there); the first ones, and how many in all. */
  invalid: Array<{ path: string; rule: string; line: number }>
  invalidTotal: number
  /** The scripts' writes with and without `disableTriggers` (the runner's own lock and history writes left out). */
  triggers?: { withTriggers: number; triggersDisabled: number }
}

/** A difference's topmost node, e.g. `{ path: '/app/users/u1/fullName', kind: 'added' }`. */
export interface RehearsalExample {
  path: string
  kind: 'added' | 'removed' | 'changed'
}

/** What a step changed in the data, counted in leaf values (history and lock left out). */
export interface RehearsalChanges {
  added: number
  removed: number
  changed: number
  /** JSON bytes of the data before and after. */
  bytesBefore: number
  bytesAfter: number
  /** The top-level children of the shift that changed. */
  children: Array<{ key: string; added: number; removed: number; changed: number; bytesBefore: number; bytesAfter: number }>
  examples: RehearsalExample[]
}

export interface RehearsedMigration {
  name: string
  version: number
  filepath: string
  outcome: 'succeeded' | 'failed' | 'not-run'
  durationMs: number
  /** The script's requests to the copy (the runner's lock checks and history records left out). */
  requests: { total: number; byMethod: Record<string, number> }
  /** What it changed (a failed one: what it had changed when it failed). */
  changes?: RehearsalChanges
  error?: string
  findings: RehearsalFindings
}

export interface RehearsalDownCheck {
  name: string
  version: number
  outcome: 'undone' | 'differs' | 'no-down' | 'failed' | 'not-checked'
  durationMs?: number
  /** How the data after its down differs from the data before its up. */
  changes?: RehearsalChanges
  error?: string
}

/** What `rehearse()` did and found (the CLI's `rehearse --format json` prints the same). */
export interface RehearsalReport {
  /** Every rehearsed migration succeeded (and, with `down`, round-tripped). */
  success: boolean
  source: {
    kind: 'database' | 'backup'
    /** `/<shift>` or `/`. */
    path: string
    databaseUrl?: string
    file?: string
    createdAt?: string
    bytes: number
    /** Requests sent to the database: reads only (0 for a backup). */
    requests: number
    /** One point in time; false for a walk in pages (writes during it may or may not be in it). */
    snapshot: boolean
    /** A live lock was in the data and was not copied. */
    lockSkipped: boolean
  }
  /** Migrations already executed in the data's history. */
  executed: number
  migrations: RehearsedMigration[]
  beforeMigrate?: RehearsalChanges
  totals: {
    migrations: number
    succeeded: number
    failed: number
    notRun: number
    added: number
    removed: number
    changed: number
    bytesBefore: number
    bytesAfter: number
    durationMs: number
    requests: number
  }
  /** The rollback after a failure, in the copy. */
  rollback?: { strategy: string; success: boolean }
  down?: { roundTrip: boolean; migrations: RehearsalDownCheck[]; remaining?: RehearsalChanges }
  /** The `keep` file. */
  kept?: string
  error?: { code: string; message: string; migration?: string }
  /** The rules the copy applied: the database's own (`requests`: 1), a file, or none (`note` says why). */
  rules: { origin: 'production' | 'file' | 'none'; file?: string; requests: number; note?: string; asAdmin: boolean }
  /** Warnings over all migrations; with `strict` they fail the rehearsal. */
  warnings: number
  strict: boolean
  durationMs: number
}

export interface DatabaseEntry {
  /** 1–128 letters, digits, '-' or '_': names the database in reports, log lines and `--database`. */
  name: string
  databaseUrl: string
  /** This database's shift (default: the shared `shift`). */
  shift?: string | null
  /** This database's credentials file (default: the shared `applicationCredentials`). */
  credentials?: string | null
}

/** A config naming a set of databases: `getInstance()` then returns a `FirebaseFleetRunner`. */
export type FleetConfig = Partial<FirebaseConfig> & ({ databases: DatabaseEntry[] } | { databaseUrls: string[] })

/** An error of one database of a run over many. */
export interface DatabaseError extends Error {
  code: string
  /** The exit status it stands for (3 a failed migration, 4 a failed rollback, ...). */
  exitCode: number
}

/** One database's part of a run over many. */
export interface DatabaseOutcome<T> {
  name: string
  databaseUrl: string
  status: 'succeeded' | 'failed' | 'stopped' | 'not_started'
  durationMs: number
  /** HTTP requests sent to this database. */
  requests: number
  /** Migrations this run executed (rolled back, for `down()`). */
  executed?: number
  /** Migrations left pending. */
  pending?: number
  result?: T
  error?: DatabaseError
}

export interface FleetSummary {
  databases: number
  succeeded: number
  failed: string[]
  stopped: string[]
  notStarted: string[]
  /** 0 when every database succeeded, else the most severe of their statuses. */
  exitCode: number
  durationMs: number
  requests: number
}

export interface FleetResult<T> {
  databases: Array<DatabaseOutcome<T>>
  summary: FleetSummary
}

/** Which databases a call runs on (a name or names; default all). */
export interface FleetPick {
  databases?: string | string[]
}

/** `getInstance()` with `databases` / `databaseUrls`: one runner per database, results per database. */
export declare class FirebaseFleetRunner {
  /** The databases' names, in configured order. */
  readonly databases: string[]
  /** One database's handler (its `db`, `lockingService`, `cfg`); without a name when there is one database. */
  getHandler(name?: string): FirebaseHandler
  migrate(targetVersion?: number | string | null, options?: RunOptions & FleetPick): Promise<FleetResult<MigrationResult>>
  up(targetVersion?: number | string | null, options?: RunOptions & FleetPick): Promise<FleetResult<MigrationResult>>
  down(targetVersion: number | string | null, options?: RunOptions & FleetPick): Promise<FleetResult<MigrationResult>>
  list(options?: FleetPick): Promise<FleetResult<Awaited<ReturnType<FirebaseRunner['list']>>>>
  rehearse(options?: RehearseOptions & FleetPick): Promise<FleetResult<RehearsalReport>>
}

export declare class FirebaseRunner {
  static getInstance(options: RunnerOptions & { config: FleetConfig }): Promise<FirebaseFleetRunner>
  static getInstance(options?: RunnerOptions): Promise<FirebaseRunner>
  getHandler(): FirebaseHandler
  getDatabase(): Database
  getConnectionInfo(): { databaseUrl: string | null; shift: string | null; tableName: string; emulator: boolean }
  migrate(targetVersion?: number | string, options?: RunOptions): Promise<MigrationResult>
  up(targetVersion?: number | string, options?: RunOptions): Promise<MigrationResult>
  /**
   * Roll back every executed migration newer than `targetVersion` (an executed version, or 0 for
   * everything), or the newest `options.steps` of them: `down(null, { steps: 1 })`. Exactly one
   * of the two, as the CLI's `down <target> | --steps N`: neither or both rejects with
   * CONFIG_INVALID and rolls back nothing.
   */
  down(targetVersion: number | string | null, options?: RunOptions): Promise<MigrationResult>
  /** Run the pending migrations on a copy of the data in an embedded emulator and report what they would change; the database is only read. */
  rehearse(options?: RehearseOptions): Promise<RehearsalReport>
  list(): Promise<{
    migrations: Array<{
      name: string
      version: number
      status: 'executed' | 'pending' | 'ignored' | 'missing-file'
      executedAt: number | null
      duration: number | null
      username: string | null
      filepath: string | null
    }>
    executed: number
    pending: number
    ignored: number
  }>
  validate(): Promise<{
    pending: Array<{ name: string; filepath: string; timestamp: number; valid: boolean; issues: ValidationIssue[] }>
    migrated: ValidationIssue[]
    general: ValidationIssue[]
    errorCount: number
    warningCount: number
  }>
  createBackup(): Promise<string>
  restoreFromBackup(path: string): Promise<void>
  listNodes(): Promise<string[]>
  backupNodes(nodes: string[]): Promise<Record<string, unknown>>
  /** Where the database stands for this app, from live views (no database request per call). */
  status(options?: StatusOptions): Promise<RunnerStatus>
  /**
   * Resolves once the history shows every migration the app needs; rejects with
   * MIGRATIONS_PENDING naming the pending versions when `timeout` ms pass first.
   */
  waitUntilMigrated(options?: StatusOptions): Promise<RunnerStatus>
  getLockStatus(): Promise<LockStatus | null>
  forceReleaseLock(): Promise<void>
}

export interface StatusOptions {
  /** The version the app needs (default: the newest migration in its folder). */
  version?: number
  /**
   * `status()`: ms to wait for current values (default 1500); `waitUntilMigrated()`: ms to wait
   * for the migrations (default: no limit).
   */
  timeout?: number
}

/** A migration the app needs that the history does not show yet. */
export interface PendingMigration {
  version: number
  name: string
}

/** `runner.status()`. */
export interface RunnerStatus {
  /** The newest recorded migration's version (null: none recorded). */
  appliedVersion: number | null
  /** How many migrations the history records. */
  appliedCount: number
  /** The migrations the app needs that are still to run, oldest first. */
  pending: PendingMigration[]
  /** The version `upToDate` is judged against (null: no migrations and none asked for). */
  neededVersion: number | null
  /** No migration the app needs is pending, and the history has reached `neededVersion`. */
  upToDate: boolean
  /** The lock's holder, as `getLockStatus()` shows it (null: free, or locking off). */
  lock: LockStatus | null
  /** The values are current (event streams open, or the last reads answered). */
  current: boolean
  /** Why the values are not current (null when they are). */
  reason: string | null
  /** This process's last `migrate()` / `down()` (null before one). */
  lastRun: { command: 'migrate' | 'mark-applied' | 'down'; success: boolean; duration: number } | null
}

export interface ValidationIssue {
  type: 'ERROR' | 'WARNING'
  code: string
  message: string
}

export declare class FirebaseDataService {
  constructor(db: Database)
  getList<T = any>(path: string): Promise<T[]>
  getObject<T = any>(path: string): Promise<T>
  setObject(path: string, obj: unknown): Promise<void>
  updateObject(path: string, obj: unknown): Promise<void>
  findAllObjectsBy<T = any>(path: string, propertyName: string, value: number | string | boolean | null): Promise<T[]>
  getSnapshot(path: string): Promise<DataSnapshot>
  static convertObjectToList<T = any>(obj: Record<string, unknown> | null): T[]
  static mixKey<T>(obj: T, key: string | null | undefined): T
}

export declare class EntityService<T extends { key?: string } = any> extends FirebaseDataService {
  constructor(db: Database, root: string)
  getAll(): Promise<T[]>
  getAllAsObject(): Promise<Record<string, T>>
  get(key: string): Promise<T>
  save(obj: T): Promise<string>
  create(obj: T): Promise<string>
  update(key: string, obj: Partial<T>): Promise<string>
  set(key: string, obj: T): Promise<string>
  updateAll(update: (entity: T) => boolean): Promise<{ updated: string[]; skipped: string[] }>
  remove(key: string): Promise<string>
  removeByIds(ids: string[]): Promise<void>
  removeAll(): Promise<void>
  findAllBy(propertyName: string, value: number | string | boolean | null): Promise<T[]>
}

export interface RunningEmulator {
  url: string
  host: string
  port: number
  /** `host:port`, for FIREBASE_DATABASE_EMULATOR_HOST. */
  hostPort: string
  databaseUrl(namespace?: string): string
  export(): Promise<Record<string, unknown>>
  stop(): Promise<void>
}

export declare function startEmulator(options?: {
  host?: string
  port?: number
  /** Initial data `{ "<namespace>": <tree> }`. */
  import?: Record<string, unknown>
  /** Initial data from a JSON file of that shape, parsed as it is read (any size); rules saved beside it (`<name>.rules.json`) are loaded too. */
  importFile?: string
  /**
   * Security Rules: the path of a rules file for every namespace, or `{ "<namespace>": path }`
   * (`"*"`: every namespace not listed). A file that does not parse fails the start with its
   * `file:line:column`. Without rules a namespace is open and checks no index.
   */
  rules?: string | Record<string, string>
}): Promise<RunningEmulator>

export declare const ExitCode: {
  readonly SUCCESS: 0
  readonly GENERAL_ERROR: 1
  readonly VALIDATION_ERROR: 2
  readonly MIGRATION_FAILED: 3
  readonly ROLLBACK_FAILED: 4
  readonly BACKUP_FAILED: 5
  readonly RESTORE_FAILED: 6
  readonly DATABASE_CONNECTION_ERROR: 7
}

export declare function defaultExecutorId(): string
