'use strict'
// Loads the native addon through the generated napi loader (binding.js). When no addon loads on this
// machine, napi-rs's generic "npm has a bug related to optional dependencies" error is replaced by
// one that names the platform looked for, the package that should have provided it, and the fixes.

const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const pkg = require('../package.json')
const REPOSITORY = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '')
const ARCH = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' }
const PLATFORM = { linux: 'linux', darwin: 'darwin', windows: 'win32' }

/** A `napi.targets` triple as napi-rs names its package suffix: `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`. */
function targetSuffix(triple) {
  const [arch, , system, abi] = triple.split('-')
  return [PLATFORM[system] || system, ARCH[arch] || arch, abi].filter(Boolean).join('-')
}

// The same order of checks as binding.js, so both name the same package.
function isMusl() {
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    if (!process.report || typeof process.report.getReport !== 'function') return false
    process.report.excludeNetwork = true
    return !process.report.getReport().header.glibcVersionRuntime
  }
}

/** This machine as a package suffix, and in words. */
function hostPlatform() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const musl = isMusl()
    return { suffix: `linux-${arch}-${musl ? 'musl' : 'gnu'}`, words: `linux-${arch} with ${musl ? 'musl' : 'glibc'}` }
  }
  if (platform === 'win32') return { suffix: `win32-${arch}-msvc`, words: `win32-${arch}` }
  return { suffix: `${platform}-${arch}`, words: `${platform}-${arch}` }
}

function causes(err) {
  const out = []
  for (let e = err && err.cause; e && out.length < 20; e = e.cause) out.push(String(e.message).split('\n')[0])
  return out
}

function isInstalled(name) {
  try {
    require.resolve(`${name}/package.json`, { paths: [ROOT] })
    return true
  } catch {
    return false
  }
}

const RUST = 'needs a Rust toolchain, https://rustup.rs'

/** The error a user sees when the platform's addon is missing or does not load. */
function missingBindingError(cause) {
  const host = hostPlatform()
  const supported = pkg.napi.targets.map(targetSuffix)
  const name = `${pkg.name}-${host.suffix}`
  const fromSource = [`git clone ${REPOSITORY} && cd msr-firebase && npm install`, `then, in your project: npm install <path to that msr-firebase checkout>`]
  let lines
  if (fs.existsSync(path.join(ROOT, 'Cargo.toml'))) {
    // A source checkout: the addon is built here, not installed from a platform package.
    lines = [`${pkg.name} could not load its native addon for ${host.words}: no ${pkg.napi.binaryName}.${host.suffix}.node in ${ROOT}.`, `Build it (${RUST}):`, `    npm run build`]
  } else if (!supported.includes(host.suffix)) {
    lines = [
      `${pkg.name} has no prebuilt native addon for ${host.words} (no package ${name}; prebuilt: ${supported.join(', ')}).`,
      `Build it from source (${RUST}):`,
      ...fromSource.map((l) => `    ${l}`),
    ]
  } else {
    const loadError = causes(cause).find((m) => !m.startsWith('Cannot find module'))
    lines = [
      `${pkg.name} could not load its native addon for ${host.words}.`,
      isInstalled(name)
        ? `It comes from ${name}, which is installed but did not load: ${loadError || 'unknown error'}`
        : `It comes from the optional dependency ${name}@${pkg.version}, which is not installed.`,
      `Fix it in one of two ways:`,
      `  1. Reinstall with optional dependencies, on the machine that runs the code (not with --omit=optional or`,
      `     --no-optional; node_modules copied from another OS, CPU or libc lacks ${name}):`,
      `       npm install --include=optional`,
      `     If it is still missing, delete node_modules and package-lock.json and run npm install again.`,
      `  2. Build it from source (${RUST}):`,
      ...fromSource.map((l) => `       ${l}`),
    ]
  }
  const err = new Error(lines.join('\n'))
  err.code = 'NATIVE_BINDING_MISSING'
  // what binding.js tried, one line each (its own error only adds napi-rs's generic advice)
  err.loadErrors = causes(cause)
  return err
}

let binding = null

/** The native addon (loaded once); throws the missing-binding error when there is none for this machine. */
function load() {
  if (binding) return binding
  try {
    binding = require('../binding.js')
  } catch (err) {
    if (err && /^(Cannot find native binding|Failed to load native binding)/.test(err.message)) throw missingBindingError(err)
    throw err
  }
  return binding
}

/** For the CLI: like `load()`, but a missing addon prints the message (no stack trace) and exits 1. */
function loadOrExit() {
  try {
    return load()
  } catch (err) {
    if (err.code !== 'NATIVE_BINDING_MISSING') throw err
    process.stderr.write(`✗ ${err.message}\n`)
    process.exit(1)
  }
}

module.exports = { load, loadOrExit, targetSuffix }
