// A plain object with up/down works too.
module.exports = {
  async up(db, info, handler) {
    await db.database.ref(handler.cfg.buildPath('settings')).set({
      app: { name: 'MSR Firebase Test', createdBy: info.name },
      features: { comments: true, likes: true },
      limits: { maxPostsPerUser: 100 },
    })
    return 'created settings'
  },
  async down(db, info, handler) {
    await db.database.ref(handler.cfg.buildPath('settings')).remove()
    return 'removed settings'
  },
}
