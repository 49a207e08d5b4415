// Pure formatting shared by the webview table, "Copy as Markdown", "Export CSV" and the
// CLI. No DOM here, so Node can import it and every view shows the very same strings.
import type { AuditReport, ThresholdResult } from '../src/core/types';

/** Rates in the report are fractions 0..1; the lab's tables show percent with 4 decimals. */
export function pct(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '' : (v * 100).toFixed(4);
}

/** Same as pct but with a unit, for prose and tooltips. */
export function pctUnit(v: number | undefined): string {
  const s = pct(v);
  return s ? `${s}%` : '—';
}

export function int(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

/** Compact number for activations: enough digits to compare channels. */
export function num(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(3);
  return v.toPrecision(4).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
}

export function seconds(s: number): string {
  if (!Number.isFinite(s)) return '—';
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 90) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export function shape(s: readonly (number | null)[]): string {
  return `(${s.map((d) => (d === null ? 'None' : String(d))).join(', ')})`;
}

export function basename(p: string): string {
  return p.split(/[\\/]/).filter(Boolean).pop() ?? p;
}

/** "2", "2.5": thresholds are usually whole points, keep them short. */
export function drop(d: number): string {
  return Number.isInteger(d) ? String(d) : String(Number(d.toFixed(4)));
}

/** Said wherever an attack rate is shown when the poisoned sets were made with a scan's trigger. */
export const ESTIMATED_ATTACK = 'attack rate estimated with a reconstructed trigger';

export function attackEstimated(r: Pick<AuditReport, 'attackEstimate'>): boolean {
  return r.attackEstimate === 'reconstructed-trigger';
}

// ---------- the threshold results table ----------

export type ColumnId =
  | 'model' | 'drop' | 'pruned' | 'validAcc' | 'testAcc' | 'attack'
  | 'gAcc' | 'gAttack' | 'gClean' | 'gPoisoned';

export interface Column { id: ColumnId; label: string; title: string; numeric: boolean }

export interface ResultRow {
  /** 'repaired': the threshold's B′ after fine-tuning or unlearning, and G from B and it */
  kind: 'baseline' | 'threshold' | 'repaired';
  threshold?: ThresholdResult;
  /** display strings, one per column, '' where there is no value */
  cells: string[];
}

export interface ResultsTable { columns: Column[]; rows: ResultRow[] }

const ALL_COLUMNS: Column[] = [
  { id: 'model', label: 'Model', title: 'B is the original net; B′ the pruned net at that threshold', numeric: false },
  { id: 'drop', label: 'Accuracy drop (%)', title: 'Pruning stopped once validation accuracy fell this many points below the baseline', numeric: true },
  { id: 'pruned', label: 'Channels pruned', title: 'Channels of the audited layer removed, least active on clean data first', numeric: true },
  { id: 'validAcc', label: 'Valid acc (%)', title: 'Accuracy on the clean validation set', numeric: true },
  { id: 'testAcc', label: 'Test acc (%)', title: 'B / B′ accuracy on the clean test set', numeric: true },
  { id: 'attack', label: 'Attack rate (%)', title: 'B / B′ share of poisoned test images classified as the attacker’s target', numeric: true },
  { id: 'gAcc', label: 'G test acc (%)', title: 'Repaired net G (B and B′ agree → label, else flagged) on the clean test set', numeric: true },
  { id: 'gAttack', label: 'G attack rate (%)', title: 'Repaired net G attack success rate on the poisoned test set', numeric: true },
  { id: 'gClean', label: 'G clean flagged (%)', title: 'Clean test images G flags as “backdoor suspected” (false alarms)', numeric: true },
  { id: 'gPoisoned', label: 'G poisoned flagged (%)', title: 'Poisoned test images G flags as “backdoor suspected” (caught)', numeric: true },
];

type Raw = Partial<Record<ColumnId, string | number | undefined>>;

function baselineRaw(r: AuditReport): Raw {
  return {
    model: 'B (original)', drop: undefined, pruned: 0,
    validAcc: r.baseline.validAccuracy, testAcc: r.baseline.testAccuracy, attack: r.baseline.testAttackRate,
  };
}

function thresholdRaw(t: ThresholdResult): Raw {
  return {
    model: `B′ (${drop(t.drop)}% drop)${t.reached ? '' : ' – not reached'}`,
    drop: t.drop,
    pruned: t.pruned,
    validAcc: t.validAccuracy,
    testAcc: t.prunedModel.testAccuracy,
    attack: t.prunedModel.testAttackRate,
    gAcc: t.goodNet.testAccuracy,
    gAttack: t.goodNet.testAttackRate,
    gClean: t.goodNet.cleanFlagged,
    gPoisoned: t.goodNet.poisonedFlagged,
  };
}

/** The same columns for B′ after training: valid accuracy is the last epoch's. */
function repairedRaw(t: ThresholdResult): Raw {
  const f = t.fineTuned!;
  const last = f.epochs[f.epochs.length - 1];
  return {
    model: `B′ (${drop(t.drop)}% drop) ${f.method === 'unlearn' ? 'unlearned' : 'fine-tuned'} for ${f.epochs.length - 1} epoch${f.epochs.length === 2 ? '' : 's'}`,
    drop: t.drop,
    pruned: t.pruned,
    validAcc: last?.validAccuracy,
    testAcc: f.prunedModel.testAccuracy,
    attack: f.prunedModel.testAttackRate,
    gAcc: f.goodNet.testAccuracy,
    gAttack: f.goodNet.testAttackRate,
    gClean: f.goodNet.cleanFlagged,
    gPoisoned: f.goodNet.poisonedFlagged,
  };
}

function cellText(id: ColumnId, v: string | number | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  if (id === 'drop') return drop(v);
  if (id === 'pruned') return String(v);
  return pct(v);
}

/**
 * The rows and the columns that have at least one value: no poisoned set means no
 * attack-rate columns, no test sets means no G columns.
 */
export function resultsTable(r: AuditReport): ResultsTable {
  const thresholds = [...r.thresholds].sort((a, b) => a.drop - b.drop);
  const raws: { kind: ResultRow['kind']; t?: ThresholdResult; raw: Raw }[] = [
    { kind: 'baseline', raw: baselineRaw(r) },
    ...thresholds.flatMap((t) => [
      { kind: 'threshold' as const, t, raw: thresholdRaw(t) },
      ...(t.fineTuned ? [{ kind: 'repaired' as const, t, raw: repairedRaw(t) }] : []),
    ]),
  ];
  const always: ColumnId[] = ['model', 'drop', 'pruned', 'validAcc'];
  const columns = ALL_COLUMNS.filter(
    (c) => always.includes(c.id) || raws.some((x) => x.raw[c.id] !== undefined && Number.isFinite(x.raw[c.id] as number)),
  );
  const rows = raws.map((x) => ({
    kind: x.kind, threshold: x.t, cells: columns.map((c) => cellText(c.id, x.raw[c.id])),
  }));
  return { columns: attackEstimated(r) ? columns.map(estimatedColumn) : columns, rows };
}

/** Attack-rate columns of an audit whose poisoned sets were stamped with a reconstructed trigger. */
function estimatedColumn(c: Column): Column {
  if (c.id !== 'attack' && c.id !== 'gAttack') return c;
  return { ...c, label: c.label.replace('attack rate', 'est. attack rate').replace(/^Attack rate/, 'Est. attack rate'), title: `${c.title} (${ESTIMATED_ATTACK})` };
}

const mdEscape = (s: string) => s.replace(/\|/g, '\\|');

/** GitHub-flavoured Markdown table, numbers identical to the webview table. */
export function resultsMarkdown(r: AuditReport): string {
  const { columns, rows } = resultsTable(r);
  const line = (cells: string[]) => `| ${cells.map(mdEscape).join(' | ')} |`;
  return [
    line(columns.map((c) => c.label)),
    `|${columns.map((c) => (c.numeric ? ' ---: ' : ' --- ')).join('|')}|`,
    ...rows.map((row) => line(row.cells.map((c) => c || '—'))),
  ].join('\n') + '\n' + (attackEstimated(r) ? `\nEst.: ${ESTIMATED_ATTACK}${r.reconstructedTrigger ? ` (${basename(r.reconstructedTrigger)})` : ''}, not with the attacker’s data.\n` : '');
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV with a `reached` column so a script can filter; empty fields where no value. */
export function resultsCsv(r: AuditReport): string {
  const { columns, rows } = resultsTable(r);
  const header = [...columns.map((c) => c.label), 'Reached'];
  const body = rows.map((row) => [...row.cells, row.threshold ? String(row.threshold.reached) : '']);
  return [header, ...body].map((cells) => cells.map(csvField).join(',')).join('\r\n') + '\r\n';
}
