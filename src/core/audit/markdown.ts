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
    ...(r.attackEstimate === 'reconstructed-trigger' ? [`**Attack rates are estimated with a reconstructed trigger** (\`${r.reconstructedTrigger}\`): the poisoned sets are the clean images not of label ${r.target}, stamped with it.`, ''] : []),
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
    ...repairLines(r),
    '',
    `Pruned channels, in order: ${r.steps.map((s) => s.channel).join(' ')}`,
    '',
    `Time: ${r.timing.totalSeconds.toFixed(1)} s (${Object.entries(r.timing.phases).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')}).`,
    '',
  ];
  return lines.join('\n');
}

/** The repair rows beside the pruning-only ones, and each training curve. */
function repairLines(r: AuditReport): string[] {
  const done = r.thresholds.filter((t) => t.fineTuned);
  if (!done.length) return [];
  const o = r.options.repair!;
  const f0 = done[0].fineTuned!;
  const how = f0.method === 'unlearn'
    ? `unlearning: ${Math.round(o.share * 100)}% of each batch stamped with the trigger${r.trigger ? ` (${r.trigger.source === 'file' ? `\`${r.trigger.file}\`` : `derived from \`${r.trigger.file}\`: ${r.trigger.note}`}, ${r.trigger.pixels} pixels)` : ''}, keeping their true labels`
    : 'fine-tuning on clean data';
  const lines = [
    '',
    '## After pruning: repair by training',
    '',
    `Each B'_X trained for ${o.epochs} epoch(s), ${how}; ${o.layers === 'all' ? 'every Conv2D/Dense layer' : `only the layers above \`${r.layer}\``} trained, pruned channels held at zero; ${o.optimizer} at learning rate ${o.learningRate}, batch ${o.batchSize}, seed ${o.seed}, on \`${o.data ?? r.data.cleanValid.file}\`.`,
    '',
    '| drop | repair | G clean accuracy | G attack rate | flagged clean | flagged poisoned | B\' clean accuracy | B\' attack rate | repaired model |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const t of done) {
    const f = t.fineTuned!;
    lines.push(`| ${t.drop}% | pruning only | ${pct(t.goodNet.testAccuracy)} | ${pct(t.goodNet.testAttackRate)} | ${pct(t.goodNet.cleanFlagged)} | ${pct(t.goodNet.poisonedFlagged)} | ${pct(t.prunedModel.testAccuracy)} | ${pct(t.prunedModel.testAttackRate)} | \`${t.repairedModel}\` |`);
    lines.push(`| ${t.drop}% | ${f.method} | ${pct(f.goodNet.testAccuracy)} | ${pct(f.goodNet.testAttackRate)} | ${pct(f.goodNet.cleanFlagged)} | ${pct(f.goodNet.poisonedFlagged)} | ${pct(f.prunedModel.testAccuracy)} | ${pct(f.prunedModel.testAttackRate)} | \`${f.repairedModel ?? ''}\` |`);
  }
  lines.push('', 'Training curves (epoch 0 is B\'_X before training; validation data):', '', '| drop | epoch | loss | valid accuracy | valid attack rate | seconds |', '|---|---|---|---|---|---|');
  for (const t of done) {
    for (const e of t.fineTuned!.epochs) {
      lines.push(`| ${t.drop}% | ${e.epoch} | ${e.loss === null ? '—' : e.loss.toFixed(4)} | ${pct(e.validAccuracy)} | ${pct(e.validAttackRate)} | ${e.seconds.toFixed(1)} |`);
    }
  }
  return lines;
}
