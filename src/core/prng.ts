// Seeded pseudo-random numbers for training, the demo generator, the fuzzer and seeded tests:
// never Math.random, so the same seed gives the same images, net and cases.

export interface Rng {
  /** uniform in [0, 1) */
  next(): number;
  /** uniform in [lo, hi) */
  uniform(lo: number, hi: number): number;
  /** integer in [0, n) */
  int(n: number): number;
  /** standard normal (Box-Muller) */
  normal(): number;
  pick<T>(items: readonly T[]): T;
  /** in-place Fisher-Yates shuffle */
  shuffle<T>(items: T[]): T[];
  /** an independent stream, so adding draws in one part does not shift another */
  fork(label: string): Rng;
}

/** mulberry32: 32-bit state, good enough for data augmentation and init. */
export function rng(seed: number): Rng {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const self: Rng = {
    next,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    int: (n) => Math.floor(next() * n),
    normal: () => {
      const u = 1 - next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
    },
    pick: (items) => items[Math.floor(next() * items.length)],
    shuffle: (items) => {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [items[i], items[j]] = [items[j], items[i]];
      }
      return items;
    },
    fork: (label) => rng(hash32(`${seed}:${label}`)),
  };
  return self;
}

/** FNV-1a, to derive stream seeds from names. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
