// The published package, as a consumer gets it. The release workflow packs the main package (no
// binary, no install scripts), puts each target's addon into its npm/<platform> package with
// `napi artifacts`, and `napi prepublish` wires those packages as optionalDependencies. This suite
// does the same with this machine's built addon, installs the tarballs into an empty project without
// network, and uses the package there the ways a consumer does, then without its addon.
import test, { before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const ROOT = path.join(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..')
const pkg = require('../package.json')
const NAPI = path.join(ROOT, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
const WIN = process.platform === 'win32'

// This machine in napi-rs's package naming, worked out here independently of lib/native-loader.js.
const GLIBC = process.platform === 'linux' && Boolean(process.report.getReport().header.glibcVersionRuntime)
const LIBC = process.platform === 'linux' ? (GLIBC ? 'gnu' : 'musl') : process.platform === 'win32' ? 'msvc' : null
const HOST = [process.platform, process.arch, LIBC].filter(Boolean).join('-')
const HOST_WORDS = process.platform === 'linux' ? `linux-${process.arch} with ${GLIBC ? 'glibc' : 'musl'}` : `${process.platform}-${process.arch}`
const PLATFORM_PKG = `${pkg.name}-${HOST}`
const BINARY = `${pkg.napi.binaryName}.${HOST}.node`

/** What a `napi.targets` triple must become as an npm/<platform> package. */
function expectedPlatformPackage(triple) {
  const [arch, , system, abi] = triple.split('-')
  const platform = { linux: 'linux', darwin: 'darwin', windows: 'win32' }[system]
  const cpu = { x86_64: 'x64', aarch64: 'arm64' }[arch]
  assert.ok(platform && cpu, `napi.targets entry ${triple} has no mapping here: add it`)
  const dir = [platform, cpu, abi].filter(Boolean).join('-')
  const libc = { gnu: ['glibc'], musl: ['musl'] }[abi]
  return { dir, name: `${pkg.name}-${dir}`, os: [platform], cpu: [cpu], libc, binary: `${pkg.napi.binaryName}.${dir}.node` }
}

function run(cmd, args, opts = {}) {
  // npm and npx are .cmd scripts on Windows, which Node only starts through a shell.
  const r = spawnSync(cmd, args, { encoding: 'utf8', shell: WIN && cmd !== process.execPath, timeout: 120000, ...opts, env: { ...process.env, NO_COLOR: '1', ...opts.env } })
  if (r.error) throw r.error
  return r
}

function ok(cmd, args, opts) {
  const r = run(cmd, args, opts)
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** `npm pack --json` in `dir`; returns npm's report of the one tarball. */
function pack(dir, dest, extra = []) {
  const out = ok('npm', ['pack', '--json', '--pack-destination', dest, ...extra], { cwd: dir })
  const [report] = JSON.parse(out.slice(out.indexOf('[')))
  return { ...report, path: path.join(dest, report.filename) }
}

/** Unpack a `npm pack` tarball (ustar; regular files only) into `dest`. */
function untar(tgz, dest) {
  const buf = zlib.gunzipSync(fs.readFileSync(tgz))
  for (let off = 0; off + 512 <= buf.length;) {
    const field = (start, len) => buf.toString('utf8', off + start, off + start + len).replace(/\0[\s\S]*$/, '')
    if (!field(0, 100)) break
    const name = path.posix.join(field(345, 155), field(0, 100))
    const size = parseInt(field(124, 12).trim() || '0', 8)
    const type = field(156, 1)
    const data = buf.subarray(off + 512, off + 512 + size)
    if (type === '0' || type === '') {
      const file = path.join(dest, ...name.split('/'))
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, data)
    }
    off += 512 + Math.ceil(size / 512) * 512
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'msr-pack-'))
const app = path.join(tmp, 'app')
let main // npm's report of the main tarball, as `npm pack` makes it from the repository
let published // the main package.json after `napi prepublish`, as `npm publish` uploads it
let manifestBefore

before(() => {
  assert.ok(fs.existsSync(path.join(ROOT, BINARY)), `${BINARY} is missing: run npm run build first`)
  manifestBefore = fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')
  main = pack(ROOT, tmp)

  // The release workflow's publish job, with this machine's addon; every other target gets a
  // placeholder file (never loaded) because napi prepublish checks that each package holds one.
  const stage = path.join(tmp, 'stage')
  untar(main.path, stage)
  const staged = path.join(stage, 'package')
  fs.cpSync(path.join(ROOT, 'npm'), path.join(staged, 'npm'), { recursive: true })
  for (const t of pkg.napi.targets.map(expectedPlatformPackage)) {
    const dir = path.join(tmp, 'artifacts', `bindings-${t.dir}`)
    fs.mkdirSync(dir, { recursive: true })
    if (t.dir === HOST) fs.copyFileSync(path.join(ROOT, BINARY), path.join(dir, t.binary))
    else fs.writeFileSync(path.join(dir, t.binary), 'placeholder: not this machine')
  }
  ok(process.execPath, [NAPI, 'artifacts', '--output-dir', path.join(tmp, 'artifacts')], { cwd: staged })
  ok(process.execPath, [NAPI, 'prepublish', '-t', 'npm', '--skip-optional-publish', '--no-gh-release'], { cwd: staged })
  published = JSON.parse(fs.readFileSync(path.join(staged, 'package.json'), 'utf8'))
  // The staged copy has no scripts/ folder; its consumer hooks are already gone.
  const mainTgz = pack(staged, tmp, ['--ignore-scripts']).path
  const platformTgz = pack(path.join(staged, 'npm', HOST), tmp).path

  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  ok('npm', ['install', '--offline', '--no-audit', '--no-fund', mainTgz, platformTgz], { cwd: app })
})

after(() => fs.rmSync(tmp, { recursive: true, force: true }))

test('the packed package.json runs nothing on a consumer’s machine and the main package carries no binary', () => {
  const files = main.files.map((f) => f.path)
  assert.deepEqual(
    files.filter((f) => f.endsWith('.node')),
    [],
    'binaries ship in the npm/<platform> packages only',
  )
  for (const f of [
    'package.json',
    'index.js',
    'index.mjs',
    'index.d.ts',
    'health.d.ts',
    'lib/health.js',
    'binding.js',
    'binding.d.ts',
    'lib/native-loader.js',
    'bin/msr-firebase.js',
    'README.md',
    'docs/configuration.md', // the config's errors point there
    'LICENSE',
    'CHANGELOG.md',
  ]) {
    assert.ok(files.includes(f), `${f} is packed`)
  }
  assert.deepEqual(
    files.filter((f) => /^(src|tests|target|npm|scripts|__test__)\/|^Cargo\./.test(f)),
    [],
    'sources and tooling stay out',
  )
  for (const manifest of [published, JSON.parse(fs.readFileSync(path.join(app, 'node_modules', ...pkg.name.split('/'), 'package.json'), 'utf8'))]) {
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(manifest.scripts?.[hook], undefined, `packed manifest has no "${hook}" script`)
    assert.equal(manifest.gypfile, undefined)
    assert.deepEqual(Object.keys(manifest.dependencies ?? {}), [], 'no runtime dependencies beyond the platform packages')
  }
  // packing left the contributor's package.json as it was (postpack restores it)
  assert.equal(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'), manifestBefore)
  assert.equal(fs.existsSync(path.join(ROOT, '.package.json.prepack')), false)
  assert.equal(JSON.parse(manifestBefore).scripts.prepare, 'npm run build', 'contributors still build on npm install')
})

test('npm/* packages match napi.targets (name, os, cpu, libc, binary) and are wired as optionalDependencies', () => {
  const expected = pkg.napi.targets.map(expectedPlatformPackage)
  assert.deepEqual(fs.readdirSync(path.join(ROOT, 'npm')).sort(), expected.map((t) => t.dir).sort(), 'one npm/<platform> folder per napi target, no others')
  const loader = fs.readFileSync(path.join(ROOT, 'binding.js'), 'utf8')
  for (const t of expected) {
    const p = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', t.dir, 'package.json'), 'utf8'))
    assert.equal(p.name, t.name)
    assert.equal(p.version, pkg.version, `${t.name} has the main package's version`)
    assert.deepEqual(p.os, t.os, `${t.name} os`)
    assert.deepEqual(p.cpu, t.cpu, `${t.name} cpu`)
    assert.deepEqual(p.libc, t.libc, `${t.name} libc`)
    assert.equal(p.main, t.binary)
    assert.deepEqual(p.files, [t.binary])
    assert.deepEqual(p.repository, pkg.repository, `${t.name}: provenance needs the same repository`)
    assert.equal(p.publishConfig?.access, 'public', `${t.name} publishes as a public scoped package`)
    assert.ok(loader.includes(`require('${t.name}')`), `binding.js loads ${t.name}`)
  }
  assert.deepEqual(published.optionalDependencies, Object.fromEntries(expected.map((t) => [t.name, pkg.version])))
})

test('installed from the tarballs without network: CJS, ESM, npx msr-firebase --version', () => {
  const cjs = ok(process.execPath, ['-e', `const m = require('${pkg.name}'); console.log(typeof m.FirebaseRunner, typeof m.FirebaseConfig, typeof m.startEmulator)`], { cwd: app })
  assert.equal(cjs.trim(), 'function function function')
  const esm = ok(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { FirebaseRunner, FirebaseConfig, EntityService } from '${pkg.name}'; console.log(typeof FirebaseRunner, new FirebaseConfig().tableName, typeof EntityService)`,
    ],
    { cwd: app },
  )
  assert.equal(esm.trim(), 'function schema_version function')
  assert.equal(ok('npx', ['--offline', 'msr-firebase', '--version'], { cwd: app }), `${pkg.version}\n`)
  assert.equal(ok('npx', ['--offline', pkg.name, '--version'], { cwd: app }), `${pkg.version}\n`)
  // the addon came from the platform package: the main package has none of its own
  const installed = path.join(app, 'node_modules', ...pkg.name.split('/'))
  assert.deepEqual(
    fs.readdirSync(installed).filter((f) => f.endsWith('.node')),
    [],
  )
  assert.ok(fs.existsSync(path.join(app, 'node_modules', ...PLATFORM_PKG.split('/'), BINARY)))
})

test('installed without prom-client (an optional peer): the /health entry point serves the metrics on its own', () => {
  assert.equal(fs.existsSync(path.join(app, 'node_modules', 'prom-client')), false, 'the optional peer dependency is not installed')
  assert.deepEqual(published.peerDependenciesMeta, { 'prom-client': { optional: true } })
  const script = `
const { FirebaseRunner, startEmulator } = require('${pkg.name}')
const { healthHandler, metricsHandler } = require('${pkg.name}/health')
;(async () => {
  const emu = await startEmulator({ port: 0 })
  const runner = await FirebaseRunner.getInstance({ config: { databaseUrl: emu.databaseUrl('app'), folder: '.', locking: { enabled: true } }, logger: () => {} })
  for (const handler of [healthHandler(runner), metricsHandler(runner)]) {
    await new Promise((resolve) => handler({ method: 'GET' }, { statusCode: 0, setHeader() {}, end(body) { console.log(this.statusCode); console.log(body); resolve() } }))
  }
  await emu.stop()
})()
`
  const out = ok(process.execPath, ['-e', script], { cwd: app })
  assert.match(out, /^200\n\{"status":"ok","lock":null,"appliedVersion":null,"pending":\[\]\}\n200\n/)
  assert.ok(out.includes('# TYPE msr_lock_held gauge\nmsr_lock_held 0\n'), out)
  assert.ok(out.includes('msr_migrations_applied_total 0\n'), out)
  const esm = ok(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { healthHandler, metricsHandler, registerMetrics } from '${pkg.name}/health'; console.log(typeof healthHandler, typeof metricsHandler, typeof registerMetrics)`,
    ],
    { cwd: app },
  )
  assert.equal(esm.trim(), 'function function function')
})

function assertMissingMessage(text, why) {
  assert.match(text, new RegExp(`could not load its native addon for ${HOST_WORDS.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
  assert.ok(text.includes(why), `names the cause: ${why}\n${text}`)
  assert.ok(text.includes('--omit=optional') && text.includes('npm install --include=optional'), `fix 1: reinstall with optional dependencies\n${text}`)
  assert.ok(text.includes(`git clone ${pkg.repository.url}`) && text.includes('Rust'), `fix 2: build from source\n${text}`)
  assert.doesNotMatch(text, /npm has a bug|wasm32-wasi/, 'not napi-rs’s generic message')
}

/** Run `fn` with the installed platform package moved away (as after `npm install --omit=optional`). */
function withoutPlatformPackage(fn) {
  const dir = path.join(app, 'node_modules', ...PLATFORM_PKG.split('/'))
  fs.renameSync(dir, `${dir}.hidden`)
  try {
    fn()
  } finally {
    fs.renameSync(`${dir}.hidden`, dir)
  }
}

test('without the platform package: --version, --help, require and import say what is missing and how to fix it', () => {
  withoutPlatformPackage(() => {
    const why = `optional dependency ${PLATFORM_PKG}@${pkg.version}, which is not installed`
    for (const args of [['--version'], ['--help'], ['migrate']]) {
      const r = run('npx', ['--offline', 'msr-firebase', ...args], { cwd: app })
      assert.equal(r.status, 1, `msr-firebase ${args} exits 1\n${r.stdout}${r.stderr}`)
      assert.equal(r.stdout, '')
      assert.match(r.stderr, /^✗ /)
      assertMissingMessage(r.stderr, why)
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace')
    }
    const cjs = run(process.execPath, ['-e', `try { require('${pkg.name}') } catch (e) { console.log(e.code); console.log(e.message) }`], { cwd: app })
    assert.match(cjs.stdout, /^NATIVE_BINDING_MISSING\n/)
    assertMissingMessage(cjs.stdout, why)
    const esm = run(process.execPath, ['--input-type=module', '-e', `import('${pkg.name}').catch((e) => console.log(e.code + '\\n' + e.message))`], { cwd: app })
    assert.match(esm.stdout, /^NATIVE_BINDING_MISSING\n/)
    assertMissingMessage(esm.stdout, why)
  })
})

test('a platform package whose addon does not load: the message names the load error', () => {
  const binary = path.join(app, 'node_modules', ...PLATFORM_PKG.split('/'), BINARY)
  const good = fs.readFileSync(binary)
  fs.writeFileSync(binary, 'not a shared library')
  try {
    const r = run('npx', ['--offline', 'msr-firebase', '--version'], { cwd: app })
    assert.equal(r.status, 1, r.stderr)
    assertMissingMessage(r.stderr, `It comes from ${PLATFORM_PKG}, which is installed but did not load: `)
    assert.ok(r.stderr.includes(BINARY), `the load error names the file\n${r.stderr}`)
  } finally {
    fs.writeFileSync(binary, good)
  }
})
