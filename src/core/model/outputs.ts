// Reading a network's output rows: top-1 and top-k, the first index winning a
// tie as tf.argMax and tf.topk do, so every engine labels rows the same way.

/** Index of the largest value of each of the `n` rows of `values` (n, classes). */
export function argMaxRows(values: Float32Array, n: number): Int32Array {
  const k = values.length / n;
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const base = r * k;
    let best = 0, max = values[base];
    for (let j = 1; j < k; j++) if (values[base + j] > max) { max = values[base + j]; best = j; }
    out[r] = best;
  }
  return out;
}

/** The `k` largest (label, value) pairs of row `r`, largest first, lower label first on ties. */
export function topRow(values: Float32Array, classes: number, r: number, k: number): { label: number; prob: number }[] {
  const row = values.subarray(r * classes, (r + 1) * classes);
  const top: { label: number; prob: number }[] = [];
  for (let j = 0; j < classes; j++) {
    const v = row[j];
    if (top.length === k && !(v > top[k - 1].prob)) continue;
    let at = top.length;
    while (at > 0 && v > top[at - 1].prob) at--;
    top.splice(at, 0, { label: j, prob: v });
    if (top.length > k) top.pop();
  }
  return top;
}
