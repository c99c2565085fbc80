// An ES module with a named class export.
export class CreateComments {
  async up(db, info, handler) {
    const ref = db.database.ref(handler.cfg.buildPath('comments'))
    await ref.update({
      comment1: { post: 'post1', text: 'Nice!' },
      comment2: { post: 'post1', text: 'Agreed' },
      comment3: { post: 'post2', text: 'Hmm' },
    })
    // Count comments per post with a query, then store the counts with a transaction.
    const onFirst = await ref.orderByChild('post').equalTo('post1').once('value')
    await db.database.ref(handler.cfg.buildPath('posts/post1/comments')).transaction(() => onFirst.numChildren())
    return `created 3 comments (${onFirst.numChildren()} on post1)`
  }

  async down(db, info, handler) {
    await db.database.ref(handler.cfg.buildPath('comments')).remove()
    await db.database.ref(handler.cfg.buildPath('posts/post1/comments')).remove()
    return 'removed comments'
  }
}
