// Pure formatting of a backdoor scan (scan.json) for the scan view's candidates table,
// its "Copy as Markdown" and its text twins of the pictures. No DOM, so Node tests and
// the CLI can use it and every place shows the very same strings.
import { TOO_FEW_TO_CONFIRM, verdictWord } from '../src/core/scan/verdict';
import type { ScanChannel, ScanLabel, ScanReport } from '../src/core/types';
import { num, pctUnit } from './format';

export interface CandidateColumn { id: 'label' | 'role' | 'maskL1' | 'attack' | 'anomaly' | 'channels'; label: string; title: string; numeric: boolean }

export const CANDIDATE_COLUMNS: CandidateColumn[] = [
  { id: 'label', label: 'Label', title: 'Output class the reconstructed trigger was optimised for', numeric: true },
  { id: 'role', label: 'Role', title: 'candidate: pushed to by stimulated channels; calibration: a sampled label, for the anomaly index', numeric: false },
  { id: 'maskL1', label: 'Mask L1', title: 'Sum of the smallest mask found that turns clean images into this label (pixels; smaller = easier to reach)', numeric: true },
  { id: 'attack', label: 'Trigger attack rate', title: 'Share of held-out clean images of other labels that the reconstructed trigger turns into this label', numeric: true },
  { id: 'anomaly', label: 'Anomaly index', title: '|L1 − median| / (1.4826 · MAD), positive for masks smaller than the median; above 2 is an outlier (Neural Cleanse)', numeric: true },
  { id: 'channels', label: 'Compromised channels', title: 'Channels whose stimulation flips images to this label', numeric: false },
];

export interface CandidateRow {
  label: ScanLabel;
  /** a verdict target, i.e. what the scan says the backdoor serves */
  target: boolean;
  cells: string[];
}

/** Channels the scan marked compromised, grouped by the label they push to. */
export function compromisedByLabel(channels: readonly ScanChannel[]): Map<number, number[]> {
  const by = new Map<number, number[]>();
  for (const c of channels) if (c.compromised) by.set(c.label, [...(by.get(c.label) ?? []), c.channel]);
  return by;
}

/** Targets first (most suspicious first), then candidates, then calibration labels, each by anomaly index. */
export function candidateRows(r: ScanReport): CandidateRow[] {
  const targets = r.targets.map((t) => t.label);
  const channels = compromisedByLabel(r.channels);
  const rank = (l: ScanLabel) => (targets.includes(l.label) ? targets.indexOf(l.label) : targets.length + (l.role === 'candidate' ? 0 : 1));
  return [...r.labels]
    .sort((a, b) => rank(a) - rank(b) || b.anomalyIndex - a.anomalyIndex || a.label - b.label)
    .map((l) => ({
      label: l,
      target: targets.includes(l.label),
      cells: [
        String(l.label),
        targets.includes(l.label) ? `${l.role}, target` : l.role,
        num(l.maskL1),
        pctUnit(l.triggerAttackRate),
        Number.isFinite(l.anomalyIndex) ? l.anomalyIndex.toFixed(2) : '—',
        (channels.get(l.label) ?? []).join(', '),
      ],
    }));
}

const mdEscape = (s: string) => s.replace(/\|/g, '\\|');

/** GitHub-flavoured Markdown of the candidates table, the same strings as the view. */
export function candidatesMarkdown(r: ScanReport): string {
  const line = (cells: string[]) => `| ${cells.map(mdEscape).join(' | ')} |`;
  return [
    line(CANDIDATE_COLUMNS.map((c) => c.label)),
    `|${CANDIDATE_COLUMNS.map((c) => (c.numeric ? ' ---: ' : ' --- ')).join('|')}|`,
    ...candidateRows(r).map((row) => line(row.cells.map((c) => c || '—'))),
  ].join('\n') + '\n';
}

/** The verdict in one line, for the view's headline and the tree's tooltip. */
export function verdictLine(r: ScanReport): string {
  if (verdictWord(r) === 'inconclusive') return `No backdoor confirmed: ${TOO_FEW_TO_CONFIRM}`;
  if (r.verdict === 'clean') return 'No backdoor found';
  const labels = r.targets.map((t) => t.label);
  return labels.length ? `Backdoor found: target label${labels.length > 1 ? 's' : ''} ${labels.join(', ')}` : 'Backdoor found';
}

/**
 * What a mask looks like, in words: how much of the image it covers and where, so the
 * pictures have a text twin. Pixels with m ≥ 0.5 count as covered.
 */
export function describeMask(mask: readonly number[], height: number, width: number): string {
  let covered = 0, sum = 0, top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const m = mask[y * width + x];
      sum += m;
      if (m < 0.5) continue;
      covered++;
      top = Math.min(top, y); bottom = Math.max(bottom, y);
      left = Math.min(left, x); right = Math.max(right, x);
    }
  }
  const share = `${((covered / (height * width)) * 100).toFixed(1)}%`;
  if (!covered) return `Mask L1 ${num(sum)}; no pixel has m ≥ 0.5 (a faint mask spread over the image).`;
  return `Mask L1 ${num(sum)}; ${covered} of ${height * width} pixels (${share}) have m ≥ 0.5, ` +
    `within rows ${top}–${bottom} and columns ${left}–${right} of the ${height}×${width} input.`;
}
