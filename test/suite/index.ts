// Entry point VS Code loads as extensionTestsPath (bundled to out/test/suite/index.js
// by scripts/host/build-suite.mjs). Runs every out/test/suite/*.test.js with mocha
// inside the extension host. Both runners use it: scripts/host/run-suite.ts
// (code-server, offline) and test/runTestElectron.ts (desktop VS Code).
//
// The extension host's stdout is not reliably visible to the runner, so each
// result is also appended as one JSON line to $BDA_TEST_RESULTS when set.
import { appendFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import Mocha from 'mocha';

type Line =
  | { event: 'start'; total: number }
  | { event: 'pass' | 'fail' | 'pending'; title: string; ms?: number; error?: string }
  | { event: 'end'; passed: number; failed: number; pending: number };

export function run(): Promise<void> {
  const resultsFile = process.env.BDA_TEST_RESULTS;
  const emit = (line: Line) => {
    if (resultsFile) appendFileSync(resultsFile, `${JSON.stringify(line)}\n`);
  };
  const mocha = new Mocha({
    ui: 'tdd',
    color: false,
    timeout: Number(process.env.BDA_TEST_TIMEOUT ?? 60_000),
    grep: process.env.BDA_TEST_GREP || undefined,
  });
  const dir = __dirname;
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.test.js')).sort()) mocha.addFile(path.join(dir, f));

  return new Promise((resolve, reject) => {
    try {
      const runner = mocha.run((failures) => {
        if (failures > 0) reject(new Error(`${failures} in-host test(s) failed`));
        else resolve();
      });
      let passed = 0, failed = 0, pending = 0;
      runner.on('start', () => emit({ event: 'start', total: runner.total }));
      runner.on('pass', (t) => { passed++; emit({ event: 'pass', title: t.fullTitle(), ms: t.duration }); });
      runner.on('fail', (t, err: Error) => {
        failed++;
        emit({ event: 'fail', title: t.fullTitle(), ms: t.duration, error: `${err?.stack ?? err}` });
      });
      runner.on('pending', (t) => { pending++; emit({ event: 'pending', title: t.fullTitle() }); });
      runner.on('end', () => emit({ event: 'end', passed, failed, pending }));
    } catch (err) {
      emit({ event: 'fail', title: 'loading the in-host suite', error: `${(err as Error)?.stack ?? err}` });
      reject(err);
    }
  });
}
