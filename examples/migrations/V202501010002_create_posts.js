class CreatePosts {
  async up(db, info, handler) {
    const posts = db.database.ref(handler.cfg.buildPath('posts'))
    await posts.child('post1').set({ title: 'First Post', author: 'user1', likes: 0 })
    await posts.child('post2').set({ title: 'Second Post', author: 'user2', likes: 0 })
    return 'created 2 posts'
  }

  async down(db, info, handler) {
    await db.database.ref(handler.cfg.buildPath('posts')).remove()
    return 'removed posts'
  }
}

module.exports = { CreatePosts }
