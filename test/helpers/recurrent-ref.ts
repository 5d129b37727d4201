// Plain-JS reference forward of RNN, LSTM and GRU (nested loops over numbers, no library code), written
// from PyTorch's documented equations, to check src/nn/recurrent.ts against.

export type RefKind = 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU';

export interface RefConfig {
  kind: RefKind;
  inputSize: number;
  hiddenSize: number;
  numLayers: number;
  bias: boolean;
  batchFirst: boolean;
}

export interface RefResult {
  /** Flat, in the module's output layout ([T, N, H] or [N, T, H]). */
  output: number[];
  /** Flat [numLayers, N, H]. */
  h: number[];
  /** Flat [numLayers, N, H] (LSTM only). */
  c: number[];
}

const sigma = (v: number): number => 1 / (1 + Math.exp(-v));

/** Gate rows per kind: LSTM i,f,g,o; GRU r,z,n; RNN one. */
export function gateCount(kind: RefKind): number {
  return kind === 'LSTM' ? 4 : kind === 'GRU' ? 3 : 1;
}

/**
 * The forward pass. `params` holds each parameter's flat values by PyTorch name; `x` is flat in the
 * input layout with T steps and N samples; h0 / c0 are flat [numLayers, N, H] (zeros when omitted).
 */
export function refForward(cfg: RefConfig, params: Record<string, ArrayLike<number>>, x: ArrayLike<number>, T: number, N: number, h0?: ArrayLike<number>, c0?: ArrayLike<number>): RefResult {
  const { kind, hiddenSize: H, numLayers: L } = cfg;
  const G = gateCount(kind);
  // seq[t][n] = feature vector of sample n at step t
  let seq: number[][][] = [];
  for (let t = 0; t < T; t++) {
    const row: number[][] = [];
    for (let n = 0; n < N; n++) {
      const base = cfg.batchFirst ? (n * T + t) * cfg.inputSize : (t * N + n) * cfg.inputSize;
      row.push(Array.from({ length: cfg.inputSize }, (_, f) => x[base + f]!));
    }
    seq.push(row);
  }
  const hOut: number[] = [];
  const cOut: number[] = [];
  for (let l = 0; l < L; l++) {
    const inK = l === 0 ? cfg.inputSize : H;
    const Wih = params[`weight_ih_l${l}`]!;
    const Whh = params[`weight_hh_l${l}`]!;
    const bih = cfg.bias ? params[`bias_ih_l${l}`]! : new Array<number>(G * H).fill(0);
    const bhh = cfg.bias ? params[`bias_hh_l${l}`]! : new Array<number>(G * H).fill(0);
    // row r of W·v
    const dot = (W: ArrayLike<number>, r: number, v: number[], k: number): number => {
      let s = 0;
      for (let j = 0; j < k; j++) s += W[r * k + j]! * v[j]!;
      return s;
    };
    const h = Array.from({ length: N }, (_, n) => Array.from({ length: H }, (_, j) => (h0 ? h0[(l * N + n) * H + j]! : 0)));
    const c = Array.from({ length: N }, (_, n) => Array.from({ length: H }, (_, j) => (c0 ? c0[(l * N + n) * H + j]! : 0)));
    const next: number[][][] = [];
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < N; n++) {
        const xv = seq[t]![n]!;
        const hv = h[n]!.slice();
        // a[r] = W_ih x + b_ih, b[r] = W_hh h + b_hh, row r of the [G·H] gate vector
        const a = Array.from({ length: G * H }, (_, r) => dot(Wih, r, xv, inK) + bih[r]!);
        const b = Array.from({ length: G * H }, (_, r) => dot(Whh, r, hv, H) + bhh[r]!);
        for (let j = 0; j < H; j++) {
          if (kind === 'RNN_TANH') h[n]![j] = Math.tanh(a[j]! + b[j]!);
          else if (kind === 'RNN_RELU') h[n]![j] = Math.max(0, a[j]! + b[j]!);
          else if (kind === 'LSTM') {
            const i = sigma(a[j]! + b[j]!);
            const f = sigma(a[H + j]! + b[H + j]!);
            const g = Math.tanh(a[2 * H + j]! + b[2 * H + j]!);
            const o = sigma(a[3 * H + j]! + b[3 * H + j]!);
            c[n]![j] = f * c[n]![j]! + i * g;
            h[n]![j] = o * Math.tanh(c[n]![j]!);
          } else {
            const r = sigma(a[j]! + b[j]!);
            const z = sigma(a[H + j]! + b[H + j]!);
            const nn = Math.tanh(a[2 * H + j]! + r * b[2 * H + j]!);
            h[n]![j] = (1 - z) * nn + z * hv[j]!;
          }
        }
      }
      next.push(h.map((v) => v.slice()));
    }
    seq = next;
    for (let n = 0; n < N; n++) hOut.push(...h[n]!);
    for (let n = 0; n < N; n++) cOut.push(...c[n]!);
  }
  const output: number[] = [];
  if (cfg.batchFirst) {
    for (let n = 0; n < N; n++) for (let t = 0; t < T; t++) output.push(...seq[t]![n]!);
  } else {
    for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) output.push(...seq[t]![n]!);
  }
  return { output, h: hOut, c: kind === 'LSTM' ? cOut : [] };
}
