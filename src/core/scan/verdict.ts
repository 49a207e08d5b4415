// The scan's decision, with the numbers that made it. Thresholds come from the
// papers, not from the models here:
// - Neural Cleanse: a label is a target when its mask L1 lies on the small side
//   of the others by an anomaly index (|L1 - median| / (1.4826·MAD)) above 2,
//   which is about 95% confidence for a normal spread of the other labels.
// - Its reconstructed trigger must also work: it must turn most held-out clean
//   images (not used to find it, not of that label) into the label.
// - ABS (Liu et al., CCS 2019): a channel singled out by stimulation is a
//   backdoor's when a trigger within ABS's size bound, optimised only to
//   excite that channel, turns most held-out clean images into one label.
//   Stimulation alone does not decide. The same holds for a site (a channel at
//   one position of the map), which stimulation must first mark compromised.
import type { ScanChannel, ScanChannelTrigger, ScanLabel, ScanSite, ScanTarget } from '../types';

export const ANOMALY_THRESHOLD = 2;
/** "works": the attack rate BadNets-style backdoors reach and NC reports for its reversed triggers is ≥ 0.9 */
export const TRIGGER_WORKS = 0.9;
/**
 * ... and on enough images to say so: with 95% confidence it turns a majority of them (one-sided Clopper–Pearson
 * lower bound ≥ 0.5). 2 of 2 is not enough (bound 0.22); 5 of 5 is (0.55); 95 images change nothing.
 */
export const MAJORITY = 0.5;

/** One-sided 95% Clopper–Pearson lower bound of a rate seen as k of n: the p at which P(X ≥ k) = 5%. */
export function rateLowerBound(k: number, n: number, alpha = 0.05): number {
  if (k <= 0 || n <= 0) return 0;
  if (k >= n) return alpha ** (1 / n);
  let lo = 0, hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (atLeast(k, n, mid) < alpha) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** P(X ≥ k) for X ~ Binomial(n, p), 0 < p < 1, summed from log terms. */
function atLeast(k: number, n: number, p: number): number {
  let logTerm = k * Math.log(p) + (n - k) * Math.log1p(-p);
  for (let i = 1; i <= k; i++) logTerm += Math.log((n - k + i) / i);
  let sum = 0;
  for (let j = k; j <= n; j++) {
    sum += Math.exp(logTerm);
    logTerm += Math.log((n - j) / (j + 1)) + Math.log(p) - Math.log1p(-p);
  }
  return sum;
}

/** The trigger turns ≥ 90% of the held-out images, and with 95% confidence a majority of them. */
export function works(rate: number, n: number): boolean {
  return rate >= TRIGGER_WORKS && rateLowerBound(Math.round(rate * n), n) >= MAJORITY;
}

/** A channel's trigger speaks for the channel only if it raised the channel above its clean mean. */
export const excites = (t: ScanChannelTrigger) => t.activation > t.cleanActivation;

/** A channel's or site's trigger that counts for its label: it excited the channel and works on the held-out images. */
export const confirmed = (t: ScanChannelTrigger) => excites(t) && works(t.attackRate, t.heldOut);

/** The trigger that excited its channel and turns the most held-out images (then on the most images). */
const strongestOf = (ts: ScanChannelTrigger[]) => ts.filter(excites).sort((a, b) => b.attackRate - a.attackRate || b.heldOut - a.heldOut)[0];

/** Why a trigger does not count as working, in words. */
function fallsShort(rate: number, n: number): string {
  const k = Math.round(rate * n);
  return rate < TRIGGER_WORKS
    ? `${pct(rate)} of ${n} held-out clean images (< ${pct(TRIGGER_WORKS)})`
    : `${k} of ${n} held-out clean images, too few to say: with 95% confidence only ≥ ${pct(rateLowerBound(k, n))} (< ${pct(MAJORITY)})`;
}

/** Signed anomaly index: positive when the mask is smaller than the median (NC flags only that side). */
export function anomalyIndices(l1: number[]): number[] {
  const med = median(l1);
  const mad = median(l1.map((v) => Math.abs(v - med)));
  // All masks equal: nothing stands out (and no division by zero).
  return l1.map((v) => (mad > 0 ? (med - v) / (1.4826 * mad) : 0));
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
}

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

export interface Verdict {
  verdict: 'backdoor' | 'clean';
  /** false when the held-out images were too few for any test to confirm a trigger: a clean verdict then says nothing */
  conclusive: boolean;
  targets: ScanTarget[];
  evidence: string[];
}

export const TOO_FEW_TO_CONFIRM = 'too few held-out clean images to confirm any trigger';

/** The verdict as the views say it: a clean verdict that could not have been anything else is inconclusive. */
export function verdictWord(r: { verdict: 'backdoor' | 'clean'; conclusive?: boolean }): 'backdoor' | 'clean' | 'inconclusive' {
  return r.verdict === 'clean' && r.conclusive === false ? 'inconclusive' : r.verdict;
}

/** Compromised sites and their triggers (scans before sites have none). */
export interface SiteEvidence {
  sites: ScanSite[];
  siteTriggers: ScanChannelTrigger[];
  /** the map the sites' positions are in */
  cachePoint: string;
}

/** Where a trigger acts: a site's (row, column), or the whole map. */
export const where = (t: { position?: [number, number] }) => (t.position ? `(${t.position.join(', ')})` : 'whole map');

/** "lo–hi" of some values (one value when all are equal). */
function span(values: number[], show: (v: number) => string): string {
  const lo = Math.min(...values), hi = Math.max(...values);
  return lo === hi ? show(lo) : `${show(lo)}–${show(hi)}`;
}

/** One sentence for every working trigger of one kind: a channel's, or a site's (several sites in one sentence). */
function triggerSentences(ts: ScanChannelTrigger[], cachePoint: string, maxArea: number): string[] {
  const one = (c: ScanChannelTrigger) => `${c.position ? `the trigger of channel ${c.channel} at ${where(c)} of ${cachePoint}` : `channel ${c.channel}'s own trigger`} (mask L1 ${c.maskL1.toFixed(1)}, ≤ ${pct(maxArea)} of the image; activation ${c.activation.toFixed(1)} against ${c.cleanActivation.toFixed(1)} clean${c.position ? ' there' : ''}) turns ${pct(c.attackRate)} of ${c.heldOut} held-out clean images into it`;
  const sites = ts.filter((t) => t.position);
  const rest = ts.filter((t) => !t.position).map(one);
  if (sites.length < 2) return [...rest, ...sites.map(one)];
  const f1 = (v: number) => v.toFixed(1);
  return [...rest, `the triggers of ${sites.length} sites (${sites.map((t) => `channel ${t.channel} at ${where(t)}`).join(', ')} of ${cachePoint}; masks L1 ${span(sites.map((t) => t.maskL1), f1)}, ≤ ${pct(maxArea)} of the image; each raised its channel there from ${span(sites.map((t) => t.cleanActivation), f1)} clean to ${span(sites.map((t) => t.activation), f1)}) turn ${span(sites.map((t) => t.attackRate), pct)} of ${span(sites.map((t) => t.heldOut), String)} held-out clean images into it`];
}

export function decide(labels: ScanLabel[], channels: ScanChannel[], channelTriggers: ScanChannelTrigger[], layer: string, maxArea: number, site: SiteEvidence = { sites: [], siteTriggers: [], cachePoint: layer }): Verdict {
  const l1s = labels.map((l) => l.maskL1);
  const med = median(l1s);
  const evidence: string[] = [];
  const serves = (label: number) => (t: ScanChannelTrigger) => t.label === label && confirmed(t);
  const serving = (label: number) => channelTriggers.filter(serves(label));
  const servingSites = (label: number) => site.siteTriggers.filter(serves(label));
  const pushing = (label: number) => channels.filter((c) => c.compromised && c.label === label).map((c) => c.channel);
  const pushingSites = (label: number) => site.sites.filter((c) => c.label === label);
  const smallMask = (l: ScanLabel) => l.anomalyIndex > ANOMALY_THRESHOLD && works(l.triggerAttackRate, l.heldOut);
  const targets: ScanTarget[] = labels
    .filter((l) => smallMask(l) || serving(l.label).length > 0 || servingSites(l.label).length > 0)
    .map((l): ScanTarget => ({
      label: l.label, anomalyIndex: l.anomalyIndex, maskL1: l.maskL1, triggerAttackRate: l.triggerAttackRate,
      channels: [...new Set([...serving(l.label), ...servingSites(l.label)].map((t) => t.channel).concat(pushing(l.label), pushingSites(l.label).map((c) => c.channel)))],
      trigger: l.trigger ?? `trigger_${l.label}.h5`,
      foundBy: [
        ...(smallMask(l) ? ['mask-size' as const] : []),
        ...(serving(l.label).length ? ['channel-trigger' as const] : []),
        ...(servingSites(l.label).length ? ['site-trigger' as const] : []),
      ],
    }))
    .sort((a, b) => b.foundBy.length - a.foundBy.length || b.anomalyIndex - a.anomalyIndex);
  evidence.push(`${labels.length} labels optimised; median mask L1 ${med.toFixed(1)}`);
  for (const t of targets) {
    const nc = `mask L1 ${t.maskL1.toFixed(1)}, anomaly index ${t.anomalyIndex.toFixed(2)} ${t.anomalyIndex > ANOMALY_THRESHOLD ? '>' : '≤'} ${ANOMALY_THRESHOLD}, its trigger turns ${pct(t.triggerAttackRate)} of held-out clean images into it`;
    const own = triggerSentences([...serving(t.label), ...servingSites(t.label)], site.cachePoint, maxArea);
    const stim = pushing(t.label);
    const stimSites = pushingSites(t.label);
    evidence.push([
      `label ${t.label}: ${nc}`,
      ...own,
      stim.length ? `stimulating ${layer} channel${stim.length > 1 ? 's' : ''} ${stim.join(', ')} alone turns ≥ 90% of the clean images into it` : '',
      stimSites.length ? `so does stimulating ${stimSites.length === 1 ? 'one site' : `any of ${stimSites.length} sites`} alone (channel at one position of ${site.cachePoint}: ${stimSites.slice(0, 8).map((c) => `${c.channel}${where(c)}`).join(', ')}${stimSites.length > 8 ? ', …' : ''})` : '',
    ].filter(Boolean).join('; '));
  }
  // Every test needs a trigger that works on the held-out images: with too few of them none can fire.
  const most = Math.max(0, ...labels.map((l) => l.heldOut), ...channelTriggers.map((t) => t.heldOut), ...site.siteTriggers.map((t) => t.heldOut));
  const conclusive = targets.length > 0 || works(1, most);
  if (!targets.length) {
    const smallest = [...labels].sort((a, b) => b.anomalyIndex - a.anomalyIndex)[0];
    if (smallest) {
      const why = smallest.anomalyIndex <= ANOMALY_THRESHOLD
        ? `anomaly index ${smallest.anomalyIndex.toFixed(2)} ≤ ${ANOMALY_THRESHOLD}`
        : `anomaly index ${smallest.anomalyIndex.toFixed(2)}, but its trigger turns ${fallsShort(smallest.triggerAttackRate, smallest.heldOut)} into it`;
      evidence.push(`no label's mask stands out: the smallest (label ${smallest.label}, L1 ${smallest.maskL1.toFixed(1)}) has ${why}`);
    }
    const strongest = strongestOf(channelTriggers);
    if (channelTriggers.length && !strongest) evidence.push(`no channel's own trigger raised its ${layer} channel above its clean mean`);
    if (strongest) {
      evidence.push(`no channel's own trigger serves a label: of the ${channelTriggers.length} most elevating ${layer} channels, the best (channel ${strongest.channel}) turns ${fallsShort(strongest.attackRate, strongest.heldOut)} into label ${strongest.label}`);
    }
    if (!conclusive) {
      evidence.push(`only ${most} held-out clean image${most === 1 ? '' : 's'} to check triggers on: too few to confirm any trigger (a majority shows with 95% confidence from 5 of 5 images up), so no test could have found a backdoor and this clean verdict is inconclusive; scan at least 10 clean images`);
    }
    const strongestSite = strongestOf(site.siteTriggers);
    if (strongestSite) {
      evidence.push(`no site's trigger serves a label: of the ${site.siteTriggers.length} most elevating compromised sites, the best (channel ${strongestSite.channel} at ${where(strongestSite)} of ${site.cachePoint}) turns ${fallsShort(strongestSite.attackRate, strongestSite.heldOut)} into label ${strongestSite.label}`);
    }
    evidence.push(site.sites.length
      ? `stimulation per position: ${site.sites.length} site(s) (a ${layer} channel at one position of ${site.cachePoint}) flip ≥ 90% of images to one label (${site.sites.slice(0, 8).map((c) => `${c.channel}${where(c)}→${c.label}`).join(', ')}${site.sites.length > 8 ? ', …' : ''})`
      : `stimulation per position: no ${layer} channel at one position of ${site.cachePoint} flips ≥ 90% of the images to one label`);
    const compromised = channels.filter((c) => c.compromised);
    evidence.push(compromised.length
      ? `stimulation: ${compromised.length} ${layer} channel(s) flip ≥ 90% of images to one label (${compromised.slice(0, 8).map((c) => `${c.channel}→${c.label}`).join(', ')}${compromised.length > 8 ? ', …' : ''}); stimulation alone does not decide`
      : `stimulation: no ${layer} channel flips ≥ 90% of the images to one label`);
  }
  return { verdict: targets.length ? 'backdoor' : 'clean', conclusive, targets, evidence };
}
