import { describe, expect, it } from 'vitest';
import { backpressure } from '../../bench/stream.js';

// 10 s here; the slow suite (npm run test:slow) and `npm run bench` run it for 60 s.
const SECONDS = process.env.SLOW === '1' ? 60 : 10;

describe('backpressure from a NATS producer far faster than training', () => {
  it(`keeps memory flat, reads no further ahead than the credit window and loses nothing (${SECONDS} s)`, async () => {
    const r = await backpressure(SECONDS);
    console.log(JSON.stringify(r));
    expect(r.speedRatio).toBeGreaterThanOrEqual(10);
    expect(r.maxAckPending).toBeLessThanOrEqual(r.readAheadBound);
    expect(r.rssGrowthMiB).toBeLessThanOrEqual(64);
    expect(r.lost).toBe(0);
    expect(r.duplicates).toBe(0);
    expect(r.applied + r.drained).toBe(r.published);
  }, (SECONDS + 60) * 1000);
});
