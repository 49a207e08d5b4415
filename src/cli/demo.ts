// `backdoor-audit demo`: audits the bundled demo BadNet with the default
// settings and leaves the report, repaired models and an offline HTML page.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../core/errors';
import type { AuditOptions, Backend } from '../core/types';
import { writeReportHtml } from './html';

export function demoDir(): string {
  const here = typeof __dirname === 'string' ? __dirname : process.cwd();
  for (const d of [path.join(here, '../demo'), path.join(process.cwd(), 'demo')]) {
    if (existsSync(path.join(d, 'bd_net.h5'))) return d;
  }
  throw new UserError('the bundled demo (demo/bd_net.h5) is missing; run `npm run make-demo`');
}

export function demoOptions(out: string, backend?: Backend): AuditOptions {
  const d = demoDir();
  return {
    model: path.join(d, 'bd_net.h5'),
    cleanValid: path.join(d, 'valid.h5'), poisonedValid: path.join(d, 'bd_valid.h5'),
    cleanTest: path.join(d, 'test.h5'), poisonedTest: path.join(d, 'bd_test.h5'),
    thresholds: [2, 4, 10], order: 'increasing', rankBy: 'pool', fullSweep: false, batchSize: 256,
    out: path.resolve(out), backend,
  };
}
