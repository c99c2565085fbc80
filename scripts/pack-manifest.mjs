// npm pack / npm publish hooks. `strip` (prepack) takes the contributor-only lifecycle scripts out of
// package.json, so the packed manifest runs nothing on a consumer's machine (`prepare` builds the
// addon from source, which needs Rust); `restore` (postpack) puts the file back as it was.
// npm reads the manifest again after prepack, so the stripped `prepare` does not run while packing.
import fs from 'node:fs'
import path from 'node:path'

const ROOT = path.join(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..')
const MANIFEST = path.join(ROOT, 'package.json')
const SAVED = path.join(ROOT, '.package.json.prepack')
const CONSUMER_HOOKS = ['preinstall', 'install', 'postinstall', 'prepare']

const command = process.argv[2]
if (command === 'strip') {
  // A pack that failed before postpack left the original aside: put it back first.
  if (fs.existsSync(SAVED)) fs.renameSync(SAVED, MANIFEST)
  const text = fs.readFileSync(MANIFEST, 'utf8')
  const manifest = JSON.parse(text)
  fs.writeFileSync(SAVED, text)
  for (const hook of CONSUMER_HOOKS) delete manifest.scripts[hook]
  fs.writeFileSync(MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`)
} else if (command === 'restore') {
  if (fs.existsSync(SAVED)) fs.renameSync(SAVED, MANIFEST)
} else {
  console.error('usage: node scripts/pack-manifest.mjs strip|restore')
  process.exit(2)
}
