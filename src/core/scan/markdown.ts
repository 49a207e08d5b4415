import type { ScanReport } from '../types';
import { TOO_FEW_TO_CONFIRM, verdictWord, where } from './verdict';

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

/** scan.md: the verdict, the numbers behind it, and every optimised label. */
export function scanMarkdown(r: ScanReport): string {
  const compromised = r.channels.filter((c) => c.compromised);
  return [
    `# Backdoor scan of \`${r.model}\``,
    '',
    `**Verdict: ${r.verdict}${verdictWord(r) === 'inconclusive' ? `, inconclusive** (${TOO_FEW_TO_CONFIRM})` : '**'}${r.targets.length ? ` (target label${r.targets.length > 1 ? 's' : ''} ${r.targets.map((t) => t.label).join(', ')})` : ''}`,
    '',
    ...r.evidence.map((e) => `- ${e}`),
    '',
    `${r.images} clean images from \`${r.data.file}\`; ${r.classes} classes; layer \`${r.layer}\`; backend ${r.backend}${r.kernels ? ` (${r.kernels} kernels)` : ''}; ${new Date(r.createdAt).toISOString()}.`,
    '',
    '## Reconstructed triggers (Neural Cleanse)',
    '',
    '| label | role | mask L1 | anomaly index | held-out attack rate | trigger |',
    '|---|---|---|---|---|---|',
    ...[...r.labels].sort((a, b) => b.anomalyIndex - a.anomalyIndex)
      .map((l) => `| ${l.label} | ${l.role} | ${l.maskL1.toFixed(1)} | ${l.anomalyIndex.toFixed(2)} | ${pct(l.triggerAttackRate)} | ${l.trigger ? `\`${l.trigger}\`` : ''} |`),
    '',
    '## Channel stimulation (ABS)',
    '',
    `Levels: ${r.levels.join(', ')} × the layer's largest clean value. ${compromised.length} of ${r.channels.length} channels flip ≥ 90% of the images to one label.`,
    '',
    '| channel | label | flip rate | level | logit rise | elevation | compromised |',
    '|---|---|---|---|---|---|---|',
    ...r.channels.map((c) => `| ${c.channel} | ${c.label} | ${pct(c.flipRate)} | ${c.level.toFixed(2)} | ${c.logitRise.toFixed(2)} | ${c.elevation.toFixed(2)} | ${c.compromised ? 'yes' : ''} |`),
    '',
    '## Channels\' own triggers (ABS)',
    '',
    `A trigger covering at most ${pct(r.maxTriggerArea)} of the image, optimised to excite one channel (never a label), then stamped on the held-out clean images.`,
    '',
    `Sites: each channel stimulated at one position of its map at a time; ${(r.sites ?? []).length} site(s) flip ≥ 90% of the images to one label${(r.sites ?? []).length ? ` (${(r.sites ?? []).slice(0, 12).map((st) => `${st.channel} at ${where(st)} → ${st.label}`).join('; ')})` : ''}. The most elevating of them get a trigger that excites the channel there.`,
    '',
    '| channel | where | stimulated label | mask L1 | activation (clean) | turns into | attack rate |',
    '|---|---|---|---|---|---|---|',
    ...[...r.channelTriggers, ...(r.siteTriggers ?? [])].map((t) => `| ${t.channel} | ${where(t)} | ${t.stimulatedLabel} | ${t.maskL1.toFixed(1)} | ${t.activation.toFixed(2)} (${t.cleanActivation.toFixed(2)}) | ${t.label} | ${pct(t.attackRate)} of ${t.heldOut} |`),
    '',
    `Time: ${r.timing.totalSeconds.toFixed(1)} s (${Object.entries(r.timing.phases).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')}).`,
    '',
  ].join('\n');
}
