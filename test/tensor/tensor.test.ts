// Tests of src/tensor/tensor.ts: construction from numbers, nested and flat arrays, the errors for ragged
// or mis-shaped input, storage kinds, and the small accessors.
import { describe, expect, test } from 'vitest';
import { DTypeError, ValueError } from '../../src/errors.js';
import { Tensor, empty, full, ones, scalar, tensor, zeros } from '../../src/tensor/tensor.js';
import { expectThrows } from '../helpers/grad.js';

describe('construction', () => {
  test('from nested arrays, a number, and a flat array with a shape', () => {
    const t = tensor([[1, 2, 3], [4, 5, 6]]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('f32');
    expect(t.strides).toEqual([3, 1]);
    expect(Array.from(t.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const s = tensor(2.5, { dtype: 'f64' });
    expect(s.shape).toEqual([]);
    expect(s.ndim).toBe(0);
    expect(s.item()).toBe(2.5);
    const f = tensor(new Float64Array([1, 2, 3, 4]), { shape: [2, 2], dtype: 'f64' });
    expect(f.toArray()).toEqual([[1, 2], [3, 4]]);
    expect(tensor([]).shape).toEqual([0]);
    expect(tensor([[]]).shape).toEqual([1, 0]);
  });

  test('f32 rounds, f64 keeps every bit', () => {
    expect(tensor([0.1]).data[0]).toBe(Math.fround(0.1));
    expect(tensor([0.1], { dtype: 'f64' }).data[0]).toBe(0.1);
  });

  test('full, zeros, ones, scalar, empty', () => {
    expect(Array.from(full([2, 2], 7).data)).toEqual([7, 7, 7, 7]);
    expect(Array.from(zeros([3], { dtype: 'f64' }).data)).toEqual([0, 0, 0]);
    expect(ones([2], { requiresGrad: true }).requiresGrad).toBe(true);
    expect(scalar(3, 'f64').dtype).toBe('f64');
    expect(empty([2, 3], 'f64').size).toBe(6);
  });

  test('storage outside an arena is a view over a SharedArrayBuffer', () => {
    expect(tensor([1, 2]).data.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(zeros([4], { dtype: 'f64' }).data.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  test('ragged nested arrays', () => {
    expectThrows(() => tensor([[1, 2], [3]]), ValueError, 'tensor: nested arrays are ragged at [1] (expected 2 elements)');
    expectThrows(() => tensor([[1, 2], 3] as never), ValueError, 'tensor: nested arrays are ragged at [1] (expected 2 elements)');
    expectThrows(() => tensor([[[1], [2]], [[3], [4, 5]]]), ValueError, 'tensor: nested arrays are ragged at [1][1] (expected 1 elements)');
    expectThrows(() => tensor([1, [2]] as never), ValueError, 'tensor: element [1] must be a number (got [2])');
    expectThrows(() => tensor([1, 'a'] as never), ValueError, 'tensor: element [1] must be a number (got "a")');
  });

  test('values that do not fill the shape, and bad shapes or dtypes', () => {
    expectThrows(() => tensor([1, 2, 3], { shape: [2, 2] }), ValueError, 'tensor: 3 values do not fill shape [2,2] (4 elements)');
    expectThrows(() => tensor([1, 2], { shape: [2, -1] }), ValueError, 'tensor: shape must be an array of non-negative integers (got [2,-1])');
    expectThrows(() => zeros([1.5]), ValueError, 'full: shape must be an array of non-negative integers (got [1.5])');
    expectThrows(() => tensor([1], { dtype: 'f16' as never }), DTypeError, 'tensor: dtype must be \'f32\' or \'f64\' (got "f16")');
    expectThrows(() => new Tensor(new Float64Array(3), [2, 2]), ValueError, 'Tensor: storage holds 3 elements but shape [2,2] needs 4');
  });

  test('item needs exactly one element', () => {
    expectThrows(() => tensor([1, 2]).item(), ValueError, 'item: tensor of shape [2] has 2 elements, expected 1');
    expect(tensor([[5]]).item()).toBe(5);
  });
});

describe('accessors and copies', () => {
  test('detach shares storage and leaves the graph; clone copies into persistent storage, optionally converting', () => {
    const x = tensor([1.5, 2], { dtype: 'f64', requiresGrad: true });
    const d = x.detach();
    expect(d.data).toBe(x.data);
    expect(d.requiresGrad).toBe(false);
    const c = x.clone('f32');
    expect(c.dtype).toBe('f32');
    expect(Array.from(c.data)).toEqual([1.5, 2]);
    expect(c.data.buffer).not.toBe(x.data.buffer);
    expect(c.requiresGrad).toBe(false);
  });

  test('toString and isLeaf', () => {
    const x = tensor([[1, 2]], { dtype: 'f64', requiresGrad: true });
    expect(String(x)).toBe('Tensor([1,2], f64, requiresGrad)');
    expect(x.isLeaf).toBe(true);
    expect(String(tensor(1))).toBe('Tensor([], f32)');
  });
});
