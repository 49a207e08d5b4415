// Short texts for notifications, the status bar and the audits tree. Pure: unit-tested.
import { verdictWord } from '../core/scan/verdict';
import type { AuditReport, JobProgress, Progress, ScanReport, SweepStep, ThresholdResult } from '../protocol';

/** Accuracies and attack rates in the report are fractions 0..1; shown as percent, up to 2 decimals. */
export function pct(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return `${Number((v * 100).toFixed(2))}%`;
}

const PHASES: Record<JobProgress['phase'], string> = {
  reading: 'Reading data',
  'lower-layers': 'Computing the lower layers',
  ranking: 'Ranking channels',
  sweep: 'Pruning sweep',
  evaluating: 'Evaluating repaired networks',
  training: 'Training the pruned networks',
  stimulation: 'Stimulating channels',
  'channel-trigger': 'Reversing channels\' triggers',
  trigger: 'Reconstructing triggers',
  writing: 'Writing results',
  done: 'Done',
};

/** "Pruning sweep · step 12/60 · acc 97.1% · attack 88% · 1,320 images/s" */
export function progressText(job: JobProgress): string {
  const p = job as Partial<Progress> & JobProgress; // a scan's progress has no accuracies or speed
  const parts = [PHASES[p.phase] ?? p.phase];
  if (p.step !== undefined && p.total !== undefined) parts.push(`step ${p.step}/${p.total}`);
  if (p.epoch !== undefined) parts.push(`epoch ${p.epoch}`);
  if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(4)}`);
  if (p.validAccuracy !== undefined) parts.push(`acc ${pct(p.validAccuracy)}`);
  if (p.validAttackRate !== undefined) parts.push(`attack ${pct(p.validAttackRate)}`);
  if (p.imagesPerSecond !== undefined && Number.isFinite(p.imagesPerSecond)) {
    parts.push(`${Math.round(p.imagesPerSecond).toLocaleString('en-US')} images/s`);
  }
  // The engine's own message adds detail (file names, counts) the phase name lacks.
  if (p.message && !parts.includes(p.message)) parts.push(p.message);
  return parts.join(' · ');
}

/**
 * The tree's row for one threshold: "2% · 45 pruned · G acc 95.74% · attack 100%" with
 * test data; without it, the validation figures at that step of the sweep.
 */
export function dropRowLabel(t: ThresholdResult, steps: readonly SweepStep[] = [], estimated = false): string {
  const est = estimated ? 'est. ' : '';
  const parts = [`${t.drop}%`, `${t.pruned} pruned`];
  const g = t.goodNet;
  if (g.testAccuracy !== undefined) {
    parts.push(`G acc ${pct(g.testAccuracy)}`);
    const attack = g.testAttackRate ?? t.prunedModel.testAttackRate;
    if (attack !== undefined) parts.push(`${est}attack ${pct(attack)}`);
  } else {
    parts.push(`valid acc ${pct(t.validAccuracy)}`);
    const attack = steps.find((s) => s.pruned === t.pruned)?.validAttackRate;
    if (attack !== undefined) parts.push(`valid ${est}attack ${pct(attack)}`);
  }
  if (!t.reached) parts.push('not reached');
  return parts.join(' · ');
}

/** The tree's description for one audit: "conv_3 · B acc 98.65% · attack 100% · 2024-05-01 12:00". */
export function auditSummary(r: AuditReport): string {
  const b = r.baseline;
  const parts = [r.layer, `B acc ${pct(b.testAccuracy ?? b.validAccuracy)}`];
  const attack = b.testAttackRate ?? b.validAttackRate;
  // "est.": measured with a scan's reconstructed trigger, not the attacker's data
  if (attack !== undefined) parts.push(`${r.attackEstimate === 'reconstructed-trigger' ? 'est. ' : ''}attack ${pct(attack)}`);
  const when = new Date(r.createdAt);
  if (!Number.isNaN(when.getTime())) parts.push(when.toISOString().slice(0, 16).replace('T', ' '));
  return parts.join(' · ');
}

/** The tree's description for one scan: "backdoor → 0 · conv_3 · 200 images · 2024-05-01 12:00". */
export function scanSummary(r: ScanReport): string {
  const parts = [r.verdict === 'backdoor' && r.targets.length
    ? `backdoor → ${r.targets.map((t) => t.label).join(', ')}` : verdictWord(r), r.layer, `${r.images} images`];
  const when = new Date(r.createdAt);
  if (!Number.isNaN(when.getTime())) parts.push(when.toISOString().slice(0, 16).replace('T', ' '));
  return parts.join(' · ');
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
