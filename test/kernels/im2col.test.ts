// im2col and col2im: the WebAssembly kernels equal the TypeScript ones bit for bit (im2col copies; col2im
// adds each column entry into its image position in the same order), over random geometries, offsets and
// operands inside and outside the WebAssembly heap; and im2col against the definition.
import { afterAll, describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { type ConvGeometry, col2im, im2col } from '../../src/kernels/im2col.js';
import { setKernels, wasmHeap } from '../../src/kernels/wasm/runtime.js';

afterAll(() => setKernels('auto'));

const geometry: fc.Arbitrary<ConvGeometry> = fc
  .record({
    C: fc.integer({ min: 1, max: 3 }), kh: fc.integer({ min: 1, max: 4 }), kw: fc.integer({ min: 1, max: 4 }),
    sh: fc.integer({ min: 1, max: 3 }), sw: fc.integer({ min: 1, max: 3 }), ph: fc.integer({ min: 0, max: 2 }), pw: fc.integer({ min: 0, max: 2 }),
    dh: fc.integer({ min: 1, max: 2 }), dw: fc.integer({ min: 1, max: 2 }), spareH: fc.integer({ min: 0, max: 9 }), spareW: fc.integer({ min: 0, max: 9 }),
  })
  .map(({ C, kh, kw, sh, sw, ph, pw, dh, dw, spareH, spareW }) => {
    const H = Math.max(1, dh * (kh - 1) + 1 - 2 * ph) + spareH;
    const W = Math.max(1, dw * (kw - 1) + 1 - 2 * pw) + spareW;
    const oh = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
    const ow = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
    return { C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow };
  });

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** A copy of `a` in the heap (so the kernel works in place) or outside it (so it is staged). */
function place(a: Float32Array, inHeap: boolean): Float32Array {
  const heap = wasmHeap();
  if (!inHeap || heap === null) return a.slice();
  const v = heap.view('f32', heap.alloc(a.byteLength), a.length) as Float32Array;
  v.set(a);
  return v;
}

describe('im2col and col2im, WebAssembly against TypeScript', () => {
  test('bit-identical for random geometries, offsets, strides, padding, dilation, in or out of the heap', () => {
    fc.assert(
      fc.property(geometry, fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 5 }), fc.boolean(), fc.integer({ min: 1, max: 1e9 }), (g, srcOff, dstOff, inHeap, seed) => {
        const img = g.C * g.H * g.W;
        const cols = g.C * g.kh * g.kw * g.oh * g.ow;
        const x = values(srcOff + img + 3, seed);
        const c = values(srcOff + cols + 3, seed + 1);
        const base = values(dstOff + img + 3, seed + 2);
        const out: Float32Array[][] = [];
        for (const kind of ['ts', 'wasm'] as const) {
          setKernels(kind);
          const colsOut = place(new Float32Array(dstOff + cols + 3).fill(7), inHeap);
          im2col(place(x, inHeap), srcOff, g, colsOut, dstOff);
          const imgOut = place(base, inHeap);
          col2im(place(c, inHeap), srcOff, g, imgOut, dstOff);
          out.push([Float32Array.from(colsOut), Float32Array.from(imgOut)]);
        }
        expect(out[1]![0]).toEqual(out[0]![0]);
        expect(out[1]![1]).toEqual(out[0]![1]);
      }),
      { numRuns: 300 },
    );
  });

  test('im2col reads x[c, oy·sh − ph + i·dh, ox·sw − pw + j·dw], 0 in the padding', () => {
    setKernels('wasm');
    fc.assert(
      fc.property(geometry, (g) => {
        const x = values(g.C * g.H * g.W, 3);
        const cols = new Float32Array(g.C * g.kh * g.kw * g.oh * g.ow);
        im2col(x, 0, g, cols, 0);
        let r = 0;
        for (let c = 0; c < g.C; c++)
          for (let i = 0; i < g.kh; i++)
            for (let j = 0; j < g.kw; j++, r++)
              for (let oy = 0; oy < g.oh; oy++)
                for (let ox = 0; ox < g.ow; ox++) {
                  const y = oy * g.sh - g.ph + i * g.dh;
                  const z = ox * g.sw - g.pw + j * g.dw;
                  const want = y < 0 || y >= g.H || z < 0 || z >= g.W ? 0 : x[(c * g.H + y) * g.W + z]!;
                  expect(cols[(r * g.oh + oy) * g.ow + ox]).toBe(want);
                }
      }),
      { numRuns: 100 },
    );
  });
});
