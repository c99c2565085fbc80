// An Express app with the probes Kubernetes and Prometheus use: /healthz (the database answers),
// /readyz (and no migration this app needs is pending) and /metrics. The probes answer from live
// views of the history and the lock node (one event stream each): no database request per probe.
//
// Run it from the folder that holds ./migrations:
//   FIREBASE_DATABASE_URL=https://<db>.firebaseio.com node server.mjs   (PORT, HOST optional)
import express from 'express';
import client from 'prom-client';
import { FirebaseRunner, FirebaseConfig } from '@migration-script-runner/firebase';
import { healthHandler, metricsHandler } from '@migration-script-runner/firebase/health';

const appConfig = new FirebaseConfig();
appConfig.folder = './migrations';
appConfig.tableName = 'schema_version';
appConfig.databaseUrl = process.env.FIREBASE_DATABASE_URL;
appConfig.applicationCredentials = process.env.GOOGLE_APPLICATION_CREDENTIALS;
appConfig.locking = { enabled: true };

const runner = await FirebaseRunner.getInstance({ config: appConfig });
const handler = runner.getHandler();

// The locking guide's "Monitor Lock Status" (Best Practices, 3.), as printed.
if (handler.lockingService) {
  const lockStatus = await handler.lockingService.getLockStatus();
  console.log('Lock status:', lockStatus);
}

// The locking guide's "Lock Status Monitoring" dashboard, as printed (only `locking` added to
// its config). Each check builds a runner and reads the lock: a few requests a minute.
async function monitorLock() {
  const appConfig = new FirebaseConfig();
  appConfig.folder = './migrations';
  appConfig.tableName = 'schema_version';
  appConfig.databaseUrl = process.env.FIREBASE_DATABASE_URL;
  appConfig.applicationCredentials = process.env.GOOGLE_APPLICATION_CREDENTIALS;
  appConfig.locking = { enabled: true };

  const runner = await FirebaseRunner.getInstance({ config: appConfig });
  const handler = runner.getHandler();

  if (!handler.lockingService) {
    console.log('Locking not enabled');
    return;
  }

  const status = await handler.lockingService.getLockStatus();

  if (status && status.isLocked) {
    console.log('Migration in progress:', {
      executor: status.lockedBy,
      started: status.lockedAt,
      expires: status.expiresAt,
      duration: Date.now() - status.lockedAt.getTime()
    });
  }
}

setInterval(monitorLock, 60000);  // Check every minute
await monitorLock();  // and once at start-up

// The same dashboard at no request cost: the lock node's event stream tells of every change.
const lockWatch = handler.lockingService.watchLockStatus();
lockWatch.on('change', (status) => console.log('Lock changed:', status ? `held by ${status.lockedBy}` : 'free'));

// Apps that start beside a migration Job can also wait for the schema before doing work.
runner.waitUntilMigrated().then(
  (s) => console.log(`Schema ready at ${s.appliedVersion}`),
  (err) => console.error(err.message),
);

client.collectDefaultMetrics();

const app = express();
app.get('/healthz', healthHandler(runner));
app.get('/readyz', healthHandler(runner, { requireUpToDate: true }));
app.get('/metrics', metricsHandler(runner)); // into prom-client's default registry

const host = process.env.HOST ?? '0.0.0.0';
const server = app.listen(Number(process.env.PORT ?? 8080), host, () => {
  console.log(`Listening on http://${host}:${server.address().port}`);
});
process.on('SIGTERM', () => {
  lockWatch.close();
  server.close(() => process.exit(0));
});
