// Streaming f32 vector kernels, four lanes at a time, then a scalar tail: the reducer's slot sum and its
// squared norm, the engine's gradient accumulation, ReLU and its backward, a bias added to every row
// and its gradient's sum over the rows. Each gives the bits of its TypeScript loop. Beside them,
// ownLines: a pass that takes cache lines over from other cores before a kernel writes them.

/** out[j] = a[j] + b[j] (out may be a). Each sum is one f32 rounding, as a + b stored to a Float32Array. */
export function addF32(out: usize, a: usize, b: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const q = <usize>j * 4;
    v128.store(out + q, f32x4.add(v128.load(a + q), v128.load(b + q)));
  }
  for (; j < n; j++) {
    const q = <usize>j * 4;
    store<f32>(out + q, load<f32>(a + q) + load<f32>(b + q));
  }
}

/**
 * Takes the 64-byte lines of [p, p + bytes) into this core's cache in a state it may write, without
 * changing a byte: one store per line of the byte it holds. Stores to lines another core holds wait
 * until that core drops its copy; a kernel writing such lines element after element has few distinct
 * lines in flight and pays that wait line by line, this pass has a store buffer's worth in flight.
 * Only for memory no other thread writes meanwhile (its store would be lost).
 */
export function ownLines(p: usize, bytes: usize): void {
  const end = p + bytes;
  // Bytes of the range only: its first line may hold another thread's bytes before p.
  for (let q = p; q < end; q = (q + 64) & ~(<usize>63)) store<u8>(q, load<u8>(q));
}

/** out[j] = a[j]. */
export function copyF32(out: usize, a: usize, n: i32): void {
  memory.copy(out, a, <usize>n * 4);
}

/**
 * The reduce of k gradient slots, `stride` bytes apart from `first`, in one pass: out[j] = first[j] +
 * slot1[j] + … + slot(k−1)[j], added left to right with each partial sum rounded to f32 (the bits of a
 * copyF32 or addF32 chain), and returns Σ out[j]² in f64 (each square exact) in a fixed order: lanes
 * 0-1 and lanes 2-3 of each group of four go to two f64x2 sums, combined lane by lane at the end, then
 * the tail one by one. With k = 1 and out = first it is the sum of squares alone.
 */
export function sumSlotsF32(out: usize, first: usize, stride: usize, k: i32, n: i32): f64 {
  let lo = f64x2.splat(0);
  let hi = f64x2.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const q = <usize>j * 4;
    let v = v128.load(first + q);
    for (let s = 1; s < k; s++) v = f32x4.add(v, v128.load(first + <usize>s * stride + q));
    v128.store(out + q, v);
    const x = f64x2.promote_low_f32x4(v);
    const y = f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1));
    lo = f64x2.add(lo, f64x2.mul(x, x));
    hi = f64x2.add(hi, f64x2.mul(y, y));
  }
  let sq = (f64x2.extract_lane(lo, 0) + f64x2.extract_lane(lo, 1)) + (f64x2.extract_lane(hi, 0) + f64x2.extract_lane(hi, 1));
  for (; j < n; j++) {
    const q = <usize>j * 4;
    let v = load<f32>(first + q);
    for (let s = 1; s < k; s++) v += load<f32>(first + <usize>s * stride + q);
    store<f32>(out + q, v);
    const x = <f64>v;
    sq += x * x;
  }
  return sq;
}

/** out[j] = x[j] > 0 ? x[j] : +0 (NaN and −0 give +0, as the TypeScript loop's comparison does). */
export function reluF32(out: usize, x: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const q = <usize>j * 4;
    const v = v128.load(x + q);
    v128.store(out + q, v128.and(v, f32x4.gt(v, zero)));
  }
  for (; j < n; j++) {
    const q = <usize>j * 4;
    const v = load<f32>(x + q);
    store<f32>(out + q, v > 0 ? v : 0);
  }
}

/** ReLU's backward from its output y: dx[j] = y[j] > 0 ? gy[j] : +0. */
export function reluBackwardF32(dx: usize, gy: usize, y: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const q = <usize>j * 4;
    v128.store(dx + q, v128.and(v128.load(gy + q), f32x4.gt(v128.load(y + q), zero)));
  }
  for (; j < n; j++) {
    const q = <usize>j * 4;
    store<f32>(dx + q, load<f32>(y + q) > 0 ? load<f32>(gy + q) : 0);
  }
}

/** out[r, c] = a[r, c] + row[c] over a rows × cols matrix (a bias added to every row; out may be a). */
export function addRowsF32(out: usize, a: usize, row: usize, rows: i32, cols: i32): void {
  const stride = <usize>cols * 4;
  for (let r = 0; r < rows; r++) {
    addF32(out, a, row, cols);
    out += stride;
    a += stride;
  }
}

/**
 * out[c] = 0 + a[0, c] + a[1, c] + … over the rows, each partial sum rounded to f32 in row order, as the
 * TypeScript sumToShape accumulates into a zeroed Float32Array (a bias gradient).
 */
export function sumRowsF32(out: usize, a: usize, rows: i32, cols: i32): void {
  memory.fill(out, 0, <usize>cols * 4);
  const stride = <usize>cols * 4;
  for (let r = 0; r < rows; r++) {
    addF32(out, out, a, cols);
    a += stride;
  }
}
