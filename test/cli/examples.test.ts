import { describe, expect, it } from 'vitest';
import { addingExample, cnnExample, irisExample, mnistExample, seedExample } from '../../cli/examples.js';

describe('examples', () => {
  it('seed network: forward is 0.871843204787514 and autograd equals the hand-written chain rule', () => {
    const lines: string[] = [];
    const r = seedExample(1, (l) => lines.push(l));
    expect(r.output).toBe(0.871843204787514);
    expect(lines[0]).toBe('forward: 0.871843204787514');
    expect(r.maxAbsDiff).toBeLessThan(1e-16);
    expect(Object.keys(r.gradients)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect(r.gradients['2.bias']![0]![0]).toBeCloseTo(-0.0286385918329, 12);
  });

  it('Iris reaches at least 95% test accuracy', () => {
    const r = irisExample();
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.95);
  });

  it('MNIST digits: the MLP reaches at least 95% test accuracy on the 2,000 held-out digits', () => {
    const r = mnistExample();
    expect(r.reports).toHaveLength(10);
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.95);
  }, 240_000);

  it('MNIST digits: the CNN reaches at least 98% test accuracy', () => {
    const r = cnnExample();
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.98);
  }, 600_000);

  it('adding problem, length 50: the LSTM gets the test MSE below 0.01 (the mean predictor scores ≈ 0.167)', () => {
    const r = addingExample();
    expect(r.curve[0]!.testMse).toBeGreaterThan(0.1);
    expect(r.testMse).toBeLessThan(0.01);
  }, 600_000);
});
