// A default-export class, the predecessor's most common shape.
module.exports = class CreateUsers {
  async up(db, info, handler) {
    await db.database.ref(handler.cfg.buildPath('users')).set({
      user1: { name: 'Alice', role: 'admin' },
      user2: { name: 'Bob', role: 'user' },
      user3: { name: 'Charlie', role: 'user' },
    })
    return 'created 3 users'
  }

  async down(db, info, handler) {
    await db.database.ref(handler.cfg.buildPath('users')).remove()
    return 'removed users'
  }
}
