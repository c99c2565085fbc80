// `cargo <args>` with `--target <this machine's triple>`: `napi build` always passes --target, so
// cargo test and clippy then share target/<triple>/ with it instead of compiling everything again
// into target/release. Works for any host, so no script pins one.
import { execFileSync, spawnSync } from 'node:child_process'

const host = /^host: (\S+)$/m.exec(execFileSync('rustc', ['-vV'], { encoding: 'utf8' }))[1]
const args = process.argv.slice(2)
const rest = args.indexOf('--')
args.splice(rest < 0 ? args.length : rest, 0, '--target', host)
const run = spawnSync('cargo', args, { stdio: 'inherit' })
if (run.error) throw run.error
process.exit(run.status ?? 1)
