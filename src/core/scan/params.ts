// A trigger under optimisation, in plain arrays. Neural Cleanse's tanh
// parametrisation: mask m = (tanh a + 1) / 2 (H, W) and pattern
// p = low + (tanh b + 1) / 2 · (high − low) (H, W, C), so both stay in range
// whatever a and b become. A step's arithmetic around the model's gradient is a
// few passes over ~10^5 numbers: cheaper as loops than as dozens of tfjs kernels.
import { stamp, type Trigger } from '../data/trigger';

/** Adam with Neural Cleanse's settings (learning rate 0.1, betas 0.5 and 0.9). */
export const ADAM = { lr: 0.1, beta1: 0.5, beta2: 0.9, eps: 1e-7 };

export class Adam {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private t = 0;
  constructor(size: number) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }
  /** Updates `param` in place. */
  step(param: Float32Array, grad: Float32Array) {
    const { lr, beta1, beta2, eps } = ADAM;
    this.t++;
    const c1 = 1 - beta1 ** this.t, c2 = 1 - beta2 ** this.t;
    for (let i = 0; i < param.length; i++) {
      const g = grad[i];
      const m = (this.m[i] = beta1 * this.m[i] + (1 - beta1) * g);
      const v = (this.v[i] = beta2 * this.v[i] + (1 - beta2) * g * g);
      param[i] -= (lr * (m / c1)) / (Math.sqrt(v / c2) + eps);
    }
  }
}

export class TriggerParams {
  /** the mask (H·W) and pattern (H·W·C) for the current parameters */
  readonly m: Float32Array;
  readonly p: Float32Array;
  private readonly ta: Float32Array;
  private readonly tb: Float32Array;
  private readonly adamA: Adam;
  private readonly adamB: Adam;

  constructor(readonly shape: [number, number, number], private readonly low: number, private readonly high: number,
    private readonly a: Float32Array, private readonly b: Float32Array) {
    this.m = new Float32Array(a.length);
    this.p = new Float32Array(b.length);
    this.ta = new Float32Array(a.length);
    this.tb = new Float32Array(b.length);
    this.adamA = new Adam(a.length);
    this.adamB = new Adam(b.length);
    this.refresh();
  }

  private refresh() {
    for (let i = 0; i < this.a.length; i++) {
      this.ta[i] = Math.tanh(this.a[i]);
      this.m[i] = (this.ta[i] + 1) / 2;
    }
    for (let i = 0; i < this.b.length; i++) {
      this.tb[i] = Math.tanh(this.b[i]);
      this.p[i] = this.low + ((this.tb[i] + 1) / 2) * (this.high - this.low);
    }
  }

  /** The mask's L1 norm. */
  l1(): number {
    let s = 0;
    for (const v of this.m) s += v;
    return s;
  }

  /** A stamped copy of `n` images (H, W, C each, flat): (1 − m)·x + m·p. */
  stamp(x: Float32Array, n: number): Float32Array {
    const [height, width, channels] = this.shape;
    return stamp(Float32Array.from(x), n, { height, width, channels, mask: this.m, pattern: this.p });
  }

  /**
   * From dL/d(stamped) on `n` images x to dL/dm (H·W: summed over images and channels of dx·(p − x)) and
   * dL/dp (H·W·C: summed over images of dx·m).
   */
  maskPatternGrads(dx: Float32Array, x: Float32Array, n: number): { gm: Float32Array; gp: Float32Array } {
    const c = this.shape[2];
    const gm = new Float32Array(this.m.length), gp = new Float32Array(this.p.length);
    const per = this.p.length;
    for (let k = 0; k < n; k++) {
      const o = k * per;
      for (let i = 0, j = 0; i < this.m.length; i++) {
        let s = 0;
        const mi = this.m[i];
        for (let ch = 0; ch < c; ch++, j++) {
          const g = dx[o + j];
          s += g * (this.p[j] - x[o + j]);
          gp[j] += g * mi;
        }
        gm[i] += s;
      }
    }
    return { gm, gp };
  }

  /** dL/da and dL/db from dL/dm and dL/dp, through the tanh parametrisation; `maskExtra` is added to every pixel of dL/dm first. */
  paramGrads(gm: Float32Array, gp: Float32Array, maskExtra = 0): { ga: Float32Array; gb: Float32Array } {
    const ga = new Float32Array(this.a.length), gb = new Float32Array(this.b.length);
    for (let i = 0; i < ga.length; i++) ga[i] = ((gm[i] + maskExtra) * (1 - this.ta[i] * this.ta[i])) / 2;
    const span = this.high - this.low;
    for (let i = 0; i < gb.length; i++) gb[i] = ((gp[i] * (1 - this.tb[i] * this.tb[i])) / 2) * span;
    return { ga, gb };
  }

  /** One Adam step on a and b (see paramGrads). */
  step(gm: Float32Array, gp: Float32Array, maskExtra = 0) {
    const { ga, gb } = this.paramGrads(gm, gp, maskExtra);
    this.adamA.step(this.a, ga);
    this.adamB.step(this.b, gb);
    this.refresh();
  }

  /** The current trigger (copies). */
  trigger(): Trigger {
    const [height, width, channels] = this.shape;
    return { height, width, channels, mask: Float32Array.from(this.m), pattern: Float32Array.from(this.p) };
  }
}

/** A random start: the mask (tanh⁻¹ of 0.8·U − 0.4, plus `maskShift`) and pattern (tanh⁻¹ of 1.8·U − 0.9) parameters. */
export function randomStart(shape: [number, number, number], random: () => number, maskShift = 0): { a: Float32Array; b: Float32Array } {
  const [h, w, c] = shape;
  return {
    a: Float32Array.from({ length: h * w }, () => Math.atanh(0.8 * random() - 0.4) + maskShift),
    b: Float32Array.from({ length: h * w * c }, () => Math.atanh(1.8 * random() - 0.9)),
  };
}
