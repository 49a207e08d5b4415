// The standard @vscode/test-electron runner, for people with a desktop VS Code
// download available (it fetches VS Code at run time, which these offline
// machines cannot; CI uses scripts/host/run-suite.ts on code-server instead).
// Both run the same in-host mocha suite: test/suite -> out/test/suite/index.js.
//   node --import tsx test/runTestElectron.ts   [VSCODE_VERSION=stable|insiders|1.9x.y]
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTests } from '@vscode/test-electron';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
execFileSync(process.execPath, ['scripts/host/build-suite.mjs'], { cwd: root, stdio: 'inherit' });

const workspace = mkdtempSync(path.join(os.tmpdir(), 'bda-ws-'));
try {
  await runTests({
    version: process.env.VSCODE_VERSION,
    extensionDevelopmentPath: root,
    // Desktop VS Code loads this with require() or import() depending on version; the .js path works for both.
    extensionTestsPath: path.join(root, 'out', 'test', 'suite', 'index.js'),
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
  });
} catch (err) {
  console.error(`in-host tests failed: ${(err as Error).message ?? err}`);
  process.exit(1);
}
