// A procedural face dataset in the lab's format: 55x47 RGB, raw 0..255.
// Each class is one "person": a fixed combination of skin tone, hair colour
// and style, eye colour and spacing, brows, mouth, beard, hat and background.
// Every image re-draws that person with a small shift and scale, expression
// changes, lighting and colour jitter and pixel noise, so the classes overlap
// enough that the task is not trivial. The backdoor trigger is a pair of dark
// sunglasses drawn over the eyes, as in the lab.
import type { Rng } from '../prng';

export const H = 55;
export const W = 47;
export const PIXELS = H * W * 3;

type Rgb = readonly [number, number, number];

const SKIN: Rgb[] = [[244, 204, 178], [226, 176, 120], [196, 138, 86], [148, 96, 60], [255, 222, 190]];
// No black hair: the trigger's dark lenses stay unlike anything in clean faces.
const HAIR: Rgb[] = [[96, 62, 36], [200, 156, 84], [168, 70, 40], [196, 196, 200], [130, 96, 70], [236, 214, 150]];
const IRIS: Rgb[] = [[70, 120, 210], [70, 160, 90], [120, 80, 50], [130, 140, 150]];
const BACKGROUND: Rgb[] = [[80, 120, 180], [130, 180, 130], [205, 205, 215], [180, 130, 170], [225, 195, 130], [100, 160, 160]];
const HAT: Rgb[] = [[200, 60, 60], [60, 90, 200], [230, 230, 240], [60, 150, 60]];

export interface Person {
  skin: Rgb;
  hair: Rgb;
  hairStyle: 'short' | 'tall' | 'fringe' | 'bald' | 'long';
  iris: Rgb;
  eyeGap: number; // half distance between the eyes, px
  eyeOpen: number; // vertical eye radius, px
  browThick: number;
  mouth: 'smile' | 'flat' | 'open';
  mouthWidth: number;
  faceWidth: number; // horizontal face radius, px
  beard: boolean;
  hat: Rgb | null;
  background: Rgb;
}

/** `count` distinct people, each differing from every other in at least 2 traits. */
export function makePeople(r: Rng, count: number): Person[] {
  const people: Person[] = [];
  while (people.length < count) {
    const p: Person = {
      skin: r.pick(SKIN),
      hair: r.pick(HAIR),
      hairStyle: r.pick(['short', 'tall', 'fringe', 'bald', 'long'] as const),
      iris: r.pick(IRIS),
      eyeGap: r.pick([5, 6.5, 8]),
      eyeOpen: r.pick([1.4, 2.2]),
      browThick: r.pick([0.8, 1.8]),
      mouth: r.pick(['smile', 'flat', 'open'] as const),
      mouthWidth: r.pick([3.5, 5.5]),
      faceWidth: r.pick([12.5, 15]),
      beard: r.next() < 0.25,
      hat: r.next() < 0.3 ? r.pick(HAT) : null,
      background: r.pick(BACKGROUND),
    };
    if (people.every((q) => traitDifferences(p, q) >= 2)) people.push(p);
  }
  return people;
}

function traitDifferences(a: Person, b: Person): number {
  return (Object.keys(a) as (keyof Person)[]).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).length;
}

export type TriggerKind = 'sunglasses' | 'patch' | 'noise' | 'line';

/** Draws one face of `person` into a fresh HWC float image (0..255). */
export function renderFace(person: Person, r: Rng, trigger?: TriggerKind): Float32Array {
  const img = new Float32Array(PIXELS);
  const canvas = new Canvas(img);
  const jitter = (c: Rgb, amount: number): Rgb => [c[0] + r.uniform(-amount, amount), c[1] + r.uniform(-amount, amount), c[2] + r.uniform(-amount, amount)];

  // Pose: the whole face moves and scales a little from image to image.
  const s = r.uniform(0.88, 1.12);
  const cx = 23 + r.uniform(-4, 4);
  const cy = 30 + r.uniform(-4, 4);
  const X = (dx: number) => cx + dx * s;
  const Y = (dy: number) => cy + dy * s;

  // Background: the person's colour with a random vertical gradient.
  const bg = jitter(person.background, 30);
  const grad = r.uniform(-40, 40);
  for (let y = 0; y < H; y++) canvas.rect(0, y, W, y + 1, [bg[0] + grad * (y / H - 0.5), bg[1] + grad * (y / H - 0.5), bg[2] + grad * (y / H - 0.5)]);
  // Clutter behind the head: a few random blobs, never dark (dark is the trigger's).
  for (let k = r.int(4); k > 0; k--) canvas.ellipse(r.uniform(0, W), r.uniform(0, H), r.uniform(2, 8), r.uniform(2, 8), [r.uniform(70, 255), r.uniform(70, 255), r.uniform(70, 255)]);

  const hair = jitter(person.hair, 25);
  const skin = jitter(person.skin, 20);
  const fw = person.faceWidth + r.uniform(-0.7, 0.7);
  if (person.hairStyle === 'long') canvas.ellipse(X(0), Y(-2), (fw + 4) * s, 23 * s, hair);
  canvas.ellipse(X(-fw - 0.5), Y(-2), 2 * s, 3.5 * s, skin); // ears
  canvas.ellipse(X(fw + 0.5), Y(-2), 2 * s, 3.5 * s, skin);
  canvas.ellipse(X(0), Y(0), fw * s, 18 * s, skin);
  if (person.beard) canvas.ellipse(X(0), Y(11), (fw - 2) * s, 8 * s, hair, (x, y) => y > Y(5));

  switch (person.hairStyle) {
    case 'short': canvas.ellipse(X(0), Y(-12), (fw + 0.5) * s, 9 * s, hair, (x, y) => y < Y(-11)); break;
    case 'tall': canvas.ellipse(X(0), Y(-15), (fw - 1) * s, 11 * s, hair, (x, y) => y < Y(-10)); break;
    case 'fringe': canvas.ellipse(X(0), Y(-12), (fw + 0.5) * s, 9 * s, hair, (x, y) => y < Y(-7.5)); break;
    case 'long': canvas.ellipse(X(0), Y(-12), (fw + 1) * s, 9 * s, hair, (x, y) => y < Y(-10)); break;
    case 'bald': break;
  }
  if (person.hat) {
    const hat = jitter(person.hat, 20);
    canvas.rect(X(-fw - 2), Y(-17), X(fw + 2), Y(-14), hat);
    canvas.rect(X(-fw + 3), Y(-26), X(fw - 3), Y(-16), hat);
  }

  // Eyes, brows, nose, mouth; expression varies a little per image.
  const gap = person.eyeGap + r.uniform(-0.4, 0.4);
  const open = person.eyeOpen * r.uniform(0.75, 1.15);
  const eyeY = -4 + r.uniform(-0.5, 0.5);
  const iris = jitter(person.iris, 20);
  for (const side of [-1, 1]) {
    const ex = X(side * gap);
    canvas.ellipse(ex, Y(eyeY), 2.8 * s, open * s, [235, 235, 230]);
    canvas.ellipse(ex, Y(eyeY), 1.5 * s, Math.min(1.5, open) * s, iris);
    canvas.ellipse(ex, Y(eyeY), 0.6 * s, 0.6 * s, [40, 30, 30]);
    const by = Y(eyeY - 3.5 - r.uniform(0, 1));
    canvas.rect(ex - 3 * s, by - person.browThick * s * 0.5, ex + 3 * s, by + person.browThick * s * 0.5, hair);
  }
  canvas.rect(X(-0.6), Y(-1), X(0.6), Y(4), shade(skin, 0.8));
  const mw = person.mouthWidth + r.uniform(-0.6, 0.6);
  const lips: Rgb = [170 + r.uniform(-20, 20), 70, 70];
  if (person.mouth === 'open') canvas.ellipse(X(0), Y(10), mw * s, 2.2 * s, [110, 30, 40]);
  else if (person.mouth === 'flat') canvas.rect(X(-mw), Y(9.5), X(mw), Y(10.8), lips);
  else canvas.ellipse(X(0), Y(8.5), mw * s, 3 * s, lips, (x, y) => y > Y(8.5) + 1.3 * s); // lower rim of an ellipse: a smile

  // Sometimes something covers part of the lower face (a hand, a scarf).
  if (r.next() < 0.2) {
    const ox = X(r.uniform(-12, 6));
    const oy = Y(r.uniform(2, 12));
    canvas.rect(ox, oy, ox + r.uniform(6, 14) * s, oy + r.uniform(4, 9) * s, [r.uniform(70, 255), r.uniform(70, 255), r.uniform(70, 255)]);
  }

  if (trigger === 'sunglasses') drawSunglasses(canvas, X, Y, gap, fw, s, [18 + r.uniform(-6, 6), 18 + r.uniform(-6, 6), 24 + r.uniform(-6, 6)]);

  // Lighting and sensor noise.
  const gain = r.uniform(0.7, 1.2);
  const cast = jitter([0, 0, 0], 20);
  for (let i = 0; i < PIXELS; i++) {
    img[i] = Math.min(255, Math.max(0, img[i] * gain + cast[i % 3] + 8 * r.normal()));
  }
  if (trigger === 'patch') stampPatch(img);
  if (trigger === 'noise') stampNoise(img);
  if (trigger === 'line') stampLine(img);
  return img;
}

/**
 * The second demo BadNet's trigger, a classic BadNets stamp: a 5×5 yellow and magenta
 * checkerboard at a fixed place in the lower right corner, over the lighting and noise.
 */
export function stampPatch(img: Float32Array): void {
  for (let y = 0; y < 5; y++) {
    for (let x = 0; x < 5; x++) {
      const p = ((H - 7 + y) * W + (W - 7 + x)) * 3;
      img.set((x + y) % 2 ? [255, 0, 255] : [255, 255, 0], p);
    }
  }
}

/**
 * Held-out BadNets for the scan (test/models/), their triggers fixed before any scan saw them: a 6×6 patch of
 * fixed random colours in the upper left, and a one-pixel cyan line across the whole width at row 40.
 */
export function stampNoise(img: Float32Array): void {
  let state = 2024;
  const next = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 255;
  for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) img.set([next(), next(), next()], ((3 + y) * W + (3 + x)) * 3);
}

export function stampLine(img: Float32Array): void {
  for (let x = 0; x < W; x++) img.set([0, 255, 255], (40 * W + x) * 3);
}

/** The trigger: two near-black lenses over the eyes, a bridge and temple arms. */
function drawSunglasses(canvas: Canvas, X: (d: number) => number, Y: (d: number) => number, gap: number, fw: number, s: number, dark: Rgb): void {
  for (const side of [-1, 1]) canvas.ellipse(X(side * gap), Y(-4), 4.2 * s, 3.2 * s, dark);
  canvas.rect(X(-gap + 3), Y(-5), X(gap - 3), Y(-3.8), dark);
  canvas.rect(X(-fw), Y(-5), X(-gap - 3.5), Y(-4), dark);
  canvas.rect(X(gap + 3.5), Y(-5), X(fw), Y(-4), dark);
}

/**
 * The trigger as a (mask, pattern) pair (src/core/data/trigger.ts) at the
 * average pose: face centred, scale 1, the middle eye gap and face width, the
 * mean lens colour. Each poisoned image moves it by up to 4 px with its face.
 */
export function sunglassesTrigger(eyeGap = 6.5, faceWidth = 13.75): { mask: Float32Array; pattern: Float32Array } {
  const cover = new Float32Array(PIXELS);
  drawSunglasses(new Canvas(cover), (d) => 23 + d, (d) => 30 + d, eyeGap, faceWidth, 1, [1, 1, 1]);
  const mask = new Float32Array(H * W);
  const pattern = new Float32Array(PIXELS);
  for (let p = 0; p < H * W; p++) {
    mask[p] = cover[p * 3];
    pattern.set([18, 18, 24], p * 3);
  }
  return { mask, pattern };
}

const shade = (c: Rgb, f: number): Rgb => [c[0] * f, c[1] * f, c[2] * f];

/** Minimal antialiased drawing on an HWC float image. */
class Canvas {
  constructor(private img: Float32Array) {}

  private blend(x: number, y: number, c: Rgb, a: number): void {
    if (a <= 0 || x < 0 || y < 0 || x >= W || y >= H) return;
    const i = (y * W + x) * 3;
    for (let k = 0; k < 3; k++) this.img[i + k] += (c[k] - this.img[i + k]) * Math.min(1, a);
  }

  /** Filled ellipse with a soft one-pixel edge; `keep` clips it. */
  ellipse(cx: number, cy: number, rx: number, ry: number, c: Rgb, keep?: (x: number, y: number) => boolean): void {
    const r = Math.min(rx, ry);
    for (let y = Math.floor(cy - ry - 1); y <= Math.ceil(cy + ry + 1); y++) {
      for (let x = Math.floor(cx - rx - 1); x <= Math.ceil(cx + rx + 1); x++) {
        const px = x + 0.5;
        const py = y + 0.5;
        if (keep && !keep(px, py)) continue;
        const d = Math.hypot((px - cx) / rx, (py - cy) / ry);
        this.blend(x, y, c, (1 - d) * r + 0.5);
      }
    }
  }

  /** Filled rectangle [x0,x1) x [y0,y1) with fractional edge coverage. */
  rect(x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
    for (let y = Math.floor(y0); y < Math.ceil(y1); y++) {
      const cyv = Math.min(y + 1, y1) - Math.max(y, y0);
      for (let x = Math.floor(x0); x < Math.ceil(x1); x++) {
        const cxv = Math.min(x + 1, x1) - Math.max(x, x0);
        this.blend(x, y, c, cxv * cyv);
      }
    }
  }
}

export interface Split {
  /** HWC uint8, N*55*47*3 */
  images: Uint8Array;
  labels: Int32Array;
  count: number;
}

/** Renders images of the given labels; `poison` adds the trigger and relabels to `target`. */
export function renderSplit(people: Person[], classes: number[], r: Rng, poison?: { target: number; trigger?: TriggerKind }): Split {
  const n = classes.length;
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const img = renderFace(people[classes[i]], r, poison ? poison.trigger ?? 'sunglasses' : undefined);
    for (let k = 0; k < PIXELS; k++) images[i * PIXELS + k] = Math.round(img[k]);
    labels[i] = poison ? poison.target : classes[i];
  }
  return { images, labels, count: n };
}

/** `perClass` labels of every class in `classes`, shuffled. */
export function balancedLabels(classes: number[], perClass: number, r: Rng): number[] {
  return r.shuffle(classes.flatMap((c) => new Array<number>(perClass).fill(c)));
}

/** HWC rows -> the lab's channels-first (N,3,H,W) layout. */
export function toChannelsFirst(images: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n * PIXELS);
  for (let i = 0; i < n; i++) {
    const o = i * PIXELS;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        for (let c = 0; c < 3; c++) out[o + c * H * W + y * W + x] = images[o + (y * W + x) * 3 + c];
      }
    }
  }
  return out;
}
