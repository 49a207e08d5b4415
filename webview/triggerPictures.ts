// The reconstructed trigger as pictures side by side: the mask m, the pattern p, and one
// clean image before and after stamping it as (1 − m)·x + m·p. Pixels are drawn as
// blocks (no smoothing), so what is shown is exactly what the scan stored.
import type { ScanReport } from '../src/core/types';
import { heat, prepare, repaintOnTheme } from './canvas';
import { h } from './dom';
import { describeMask } from './scanFormat';

type Preview = NonNullable<ScanReport['preview']>;

const SCALE_MAX = 5;
const BOX = 240;

/** RGBA bytes of an H×W×C image in model units, scaled from [min, max] to 0..255. */
export function imageBytes(values: readonly number[], p: Preview): Uint8ClampedArray<ArrayBuffer> {
  const { height: hgt, width: w, channels: c, min, max } = p;
  const span = max > min ? max - min : 1;
  const out = new Uint8ClampedArray(hgt * w * 4);
  for (let i = 0; i < hgt * w; i++) {
    for (let k = 0; k < 3; k++) out[i * 4 + k] = ((values[i * c + (c === 1 ? 0 : k)] - min) / span) * 255;
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** RGBA bytes of the mask on the heat scale 0..1. */
function maskBytes(mask: readonly number[]): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(mask.length * 4);
  mask.forEach((m, i) => {
    const [r, g, b] = heat(m, 1).match(/\d+/g)!.map(Number);
    out.set([r, g, b, 255], i * 4);
  });
  return out;
}

function picture(id: string, caption: string, alt: string, p: Preview, bytes: () => Uint8ClampedArray<ArrayBuffer>): HTMLElement {
  const scale = Math.max(1, Math.min(SCALE_MAX, Math.floor(BOX / Math.max(p.height, p.width))));
  const canvas = h('canvas', { id, role: 'img', 'aria-label': alt, class: 'picture' });
  const draw = () => {
    const ctx = prepare(canvas, p.width * scale, p.height * scale);
    const src = document.createElement('canvas');
    src.width = p.width;
    src.height = p.height;
    src.getContext('2d')!.putImageData(new ImageData(bytes(), p.width, p.height), 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(src, 0, 0, p.width * scale, p.height * scale);
  };
  draw();
  repaintOnTheme(canvas, draw);
  return h('figure', { class: 'picture-box' }, canvas, h('figcaption', {}, caption));
}

export function triggerPictures(r: ScanReport): HTMLElement {
  const p = r.preview;
  if (!p?.mask || !p.pattern || !p.stamped) {
    return h('p', { class: 'note' }, r.verdict === 'clean'
      ? 'No trigger to show: the scan found no target label.'
      : 'This scan stored no trigger preview.');
  }
  const { mask, pattern, stamped } = p;
  const who = p.label !== undefined ? ` for label ${p.label}` : '';
  return h('div', { class: 'pictures' },
    h('div', { class: 'picture-row' },
      picture('picture-mask', 'mask m (0 → 1)', `Reconstructed mask${who}. ${describeMask(mask, p.height, p.width)}`, p, () => maskBytes(mask)),
      picture('picture-pattern', 'pattern p', `Reconstructed pattern${who}, in the input's value range`, p, () => imageBytes(pattern, p)),
      picture('picture-clean', 'clean image x', 'A clean image from the scan data', p, () => imageBytes(p.image, p)),
      picture('picture-stamped', `(1 − m)·x + m·p${who}`, `The same image with the reconstructed trigger${who} stamped on`, p, () => imageBytes(stamped, p))),
    h('p', { class: 'summary', id: 'mask-text' }, describeMask(mask, p.height, p.width)));
}
