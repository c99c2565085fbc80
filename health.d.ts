// `@migration-script-runner/firebase/health`: health, readiness and metrics handlers for Node's
// http module and Express. Each handler is a plain `(req, res)` function.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FirebaseRunner, LockStatus, PendingMigration } from './index'

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>

export interface HealthOptions {
  /** Answer 503 while a migration the app needs is pending (a readiness probe). Default false. */
  requireUpToDate?: boolean
  /** The version the app needs (default: the newest migration in its folder). */
  version?: number
  /** ms a probe waits for current values before answering 503 (default 1500). */
  timeout?: number
}

/** The JSON body of a health answer. */
export interface HealthBody {
  /** `ok` (200); `pending` or `unavailable` (503). */
  status: 'ok' | 'pending' | 'unavailable'
  /** Why the answer is 503. */
  reason?: string
  /** The lock's holder (Dates as ISO strings), or null when free. */
  lock?: (Omit<LockStatus, 'lockedAt' | 'expiresAt'> & { lockedAt: string; expiresAt: string }) | null
  appliedVersion?: number | null
  pending?: PendingMigration[]
}

/**
 * 200 `{ status: 'ok', lock, appliedVersion, pending }`, or 503 `{ status, reason, ... }` when
 * the database is unreachable or (with `requireUpToDate`) a migration the app needs is pending.
 * No database request per probe.
 */
export declare function healthHandler(runner: FirebaseRunner, options?: HealthOptions): RequestHandler

/** A prom-client `Registry` (prom-client is an optional peer dependency). */
export interface PromRegistry {
  metrics(): Promise<string>
  readonly contentType: string
  removeSingleMetric(name: string): void
}

export interface MetricsOptions {
  /**
   * The prom-client registry to register into and serve (default: prom-client's default
   * registry when the app has prom-client); `false`: serve the runner's metrics alone, without
   * prom-client.
   */
  registry?: PromRegistry | false
  version?: number
  /** ms to wait for current values (default 1500). */
  timeout?: number
}

/**
 * Serves the Prometheus text format: `msr_lock_held`, `msr_lock_holder_info{executor,host}`,
 * `msr_lock_lease_remaining_seconds`, `msr_migrations_applied_total`, `msr_migrations_pending`,
 * `msr_last_run_duration_seconds{command}`, `msr_last_run_success{command}`.
 */
export declare function metricsHandler(runner: FirebaseRunner, options?: MetricsOptions): RequestHandler

/** Register the runner's metrics into a prom-client registry (default: the default registry). */
export declare function registerMetrics<R extends PromRegistry>(runner: FirebaseRunner, options?: { registry?: R; version?: number; timeout?: number }): R
