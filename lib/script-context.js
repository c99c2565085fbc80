'use strict'
// What migration scripts get as `(db, info, handler)`, built in one place for the library and the
// CLI alike. Which database that is was decided by the core (the runner's `ScriptDb`: its
// connection fenced by its lease, or a rehearsal sandbox's); this only wraps it for JS.

const { FirebaseConfig } = require('./config.js')
const { createFirebaseDB } = require('./database.js')
const { FirebaseLockingService } = require('./locking.js')
const pkg = require('../package.json')

/**
 * `{ db, handler }` over a runner's native script db (`nativeDb`: the one lib/host.js receives
 * with each script run, or `runner.scriptDb`). `handler.lockingService` is the runner's own lock
 * service (its live view, its events in the runner's log and lock hooks), absent when locking is
 * off; `handler.cfg` is `cfg` (the library's FirebaseConfig) or the runner's settings as a new
 * FirebaseConfig; `backup` as the caller offers it; `log` gets the db's warnings.
 */
function scriptContext(nativeDb, { cfg, backup, log } = {}) {
  const db = createFirebaseDB(nativeDb.database, { log })
  const locking = nativeDb.locking
  const handler = {
    cfg: cfg ?? new FirebaseConfig(nativeDb.config),
    db,
    lockingService: locking ? new FirebaseLockingService(locking) : undefined,
    backup,
    getName: () => 'Firebase Realtime Database Runner',
    getVersion: () => pkg.version,
  }
  return { db, handler }
}

module.exports = { scriptContext }
