// The offline report page: the webview bundle and the report in one HTML file.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { standaloneHtml } from '../../webview/html';
import type { AuditReport } from '../core/types';

function bundleDir(): string {
  return typeof __dirname === 'string' ? __dirname : path.join(process.cwd(), 'dist');
}

export function writeReportHtml(report: AuditReport, outDir: string): string {
  const dist = bundleDir();
  const html = standaloneHtml(
    { view: 'audit', report, reportDir: outDir },
    readFileSync(path.join(dist, 'webview.js'), 'utf8'),
    readFileSync(path.join(dist, 'webview.css'), 'utf8'),
  );
  const file = path.join(outDir, 'report.html');
  writeFileSync(`${file}.partial`, html);
  renameSync(`${file}.partial`, file);
  return file;
}
