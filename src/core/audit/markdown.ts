import type { AuditReport } from '../types';

const pct = (v: number | undefined) => (v === undefined ? '—' : (v * 100).toFixed(4));

/** report.md: the lab's results table plus what was run on what. */
export function reportMarkdown(r: AuditReport): string {
  const d = r.data;
  const lines = [
    `# Backdoor audit of \`${r.model}\``,
    '',
    `Fine-pruning of \`${r.layer}\` (${r.ranking.length} channels), ranked by the mean activation of \`${r.rankedBy}\` on clean validation data, ${r.order} order. ${r.classes} classes${r.target !== undefined ? `; attacker target ${r.target}` : ''}. Backend ${r.backend} × ${r.workers}, ${new Date(r.createdAt).toISOString()}.`,
    '',
    ...(r.attackEstimate === 'reconstructed-trigger' ? [`**Attack rates are estimated with a reconstructed trigger** (\`${r.trigger}\`): the poisoned sets are the clean images not of label ${r.target}, stamped with it.`, ''] : []),
    '| data | file | images |',
    '|---|---|---|',
    ...(['cleanValid', 'poisonedValid', 'cleanTest', 'poisonedTest'] as const).filter((k) => d[k]).map((k) => `| ${k} | \`${d[k]!.file}\` | ${d[k]!.count} |`),
    '',
    `Baseline B: clean valid accuracy ${pct(r.baseline.validAccuracy)}%` +
      (r.baseline.validAttackRate !== undefined ? `, valid attack rate ${pct(r.baseline.validAttackRate)}%` : '') +
      (r.baseline.testAccuracy !== undefined ? `, clean test accuracy ${pct(r.baseline.testAccuracy)}%` : '') +
      (r.baseline.testAttackRate !== undefined ? `, test attack rate ${pct(r.baseline.testAttackRate)}%` : '') + '.',
    '',
    '## Repaired network G (B and B\' agree → that label, else class ' + r.repairedNetwork.flaggedClass + ')',
    '',
    '| drop | channels pruned | G clean accuracy | G attack rate | flagged clean | flagged poisoned | B\' clean accuracy | B\' attack rate | repaired model |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.thresholds.map((t) => t.reached
      ? `| ${t.drop}% | ${t.pruned} | ${pct(t.goodNet.testAccuracy)} | ${pct(t.goodNet.testAttackRate)} | ${pct(t.goodNet.cleanFlagged)} | ${pct(t.goodNet.poisonedFlagged)} | ${pct(t.prunedModel.testAccuracy)} | ${pct(t.prunedModel.testAttackRate)} | \`${t.repairedModel}\` |`
      : `| ${t.drop}% | not reached after ${t.pruned} | | | | | | | |`),
    '',
    `Pruned channels, in order: ${r.steps.map((s) => s.channel).join(' ')}`,
    '',
    `Time: ${r.timing.totalSeconds.toFixed(1)} s (${Object.entries(r.timing.phases).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')}).`,
    '',
  ];
  return lines.join('\n');
}
