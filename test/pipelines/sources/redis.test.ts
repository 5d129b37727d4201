// Redis Streams reader against the local redis-server (127.0.0.1:6379): order, the credit window, acks,
// pending entries first (own and claimed from dead consumers), resume from an id, and bad input.
import { describe, expect, it } from 'vitest';
import { SourceError, ValueError } from '../../../src/errors.js';
import { type RedisReader, type RedisSourceConfig, compareIds, idBefore, openRedisReader } from '../../../pipelines/sources/redis.js';
import { range, readAll, readN, seqs, REDIS_URL, type Redis, delay, hasBinary, payload, redisKey, redisServerWithPassword } from '../../helpers/services.js';


/** XADDs payload(from..to) in one pipeline; returns their ids. */
async function addSeq(redis: Redis, key: string, from: number, to: number): Promise<string[]> {
  const multi = redis.multi();
  for (let i = from; i <= to; i++) multi.xAdd(key, '*', { data: payload(i) });
  return (await multi.exec()) as unknown as string[];
}

function open(key: string, extra: Partial<RedisSourceConfig> = {}, from?: string): Promise<RedisReader> {
  return openRedisReader({ url: REDIS_URL, stream: key, group: 'trainers', consumer: 'c1', create: true, idleTimeoutMs: 300, blockMs: 100, ...extra }, { batchSize: 10, from });
}

async function pendingCount(redis: Redis, key: string): Promise<number> {
  return Number((await redis.xPending(key, 'trainers')).pending);
}

describe('Redis Streams reader', () => {
  it('position() before the first entry is where the reader starts: the group\'s last-delivered id, or just before its oldest pending entry', async () => {
    const { key, redis } = await redisKey();
    const first = await open(key);
    expect(first.position()).toBe('0-0');
    const ids = await addSeq(redis, key, 1, 10);
    const rs = await readN(first, 4);
    await first.ack(rs.slice(0, 2)); // the last two stay pending, as after a crash
    expect(first.position()).toBe(ids[3]);
    await first.close();
    const again = await open(key);
    expect(again.position()).toBe(idBefore(ids[2]!));
    await again.close();
    const resumed = await open(key, {}, again.position());
    expect(seqs(await readN(resumed, 4))).toEqual([3, 4, 5, 6]); // the pending two, then the rest
    await resumed.close();
    expect(idBefore('5-3')).toBe('5-2');
    expect(idBefore('5-0')).toBe('4-18446744073709551615');
    expect(idBefore('0-0')).toBe('0-0');
  });

  it('reads what was added, in order, with entry ids as positions; bad JSON and a missing field become records with a fault', async () => {
    const { key, redis } = await redisKey();
    const reader = await open(key); // create: true makes the stream and the group, reading from the start
    const ids = await addSeq(redis, key, 1, 12);
    ids.push(await redis.xAdd(key, '*', { data: '{"seq": 13,' }));
    ids.push(await redis.xAdd(key, '*', { other: '1' }));
    expect(reader.name).toBe(`Redis stream '${key}' group 'trainers' consumer 'c1'`);
    const rs = await readAll(reader);
    expect(rs).toHaveLength(14);
    expect(seqs(rs.slice(0, 12))).toEqual(range(1, 12));
    expect(rs.map((r) => r.position)).toEqual(ids);
    expect(rs.map((r) => r.index)).toEqual(range(1, 14));
    expect(rs[0]).toMatchObject({ value: { seq: 1, x: [1, -1] }, bytes: Buffer.byteLength(payload(1)) });
    expect(rs[0]!.fault).toBeUndefined();
    expect(rs[12]).toMatchObject({ value: '{"seq": 13,', bytes: 11, fault: { reason: 'invalid JSON', message: expect.stringMatching(/^invalid JSON: /) } });
    expect(rs[13]).toMatchObject({ value: { other: '1' }, bytes: 0, fault: { reason: 'missing field', message: `entry ${ids[13]} has no field 'data'` } });
    await reader.ack(rs);
    expect(await pendingCount(redis, key)).toBe(0);
    await reader.close();
  });

  it('never holds more than `window` entries: XREADGROUP COUNT window, only when the buffer is empty', async () => {
    const { key, redis } = await redisKey();
    const window = 8;
    const reader = await open(key, { window });
    await addSeq(redis, key, 1, 10 * window);
    const got: number[] = [];
    for (let i = 0; i < 3 * window + 3; i++) {
      const [r] = await readN(reader, 1);
      got.push((r!.value as { seq: number }).seq);
      const pending = await pendingCount(redis, key);
      expect(pending).toBeLessThanOrEqual(window);
      expect(pending).toBe(window - (i % window));
      await reader.ack([r!]);
      await delay(5); // a slow trainer
    }
    expect(got).toEqual(range(1, 3 * window + 3));
    await reader.close();
  });

  it('acks only when ack() is called; unacked entries stay pending and a restart reads them first', async () => {
    const { key, redis } = await redisKey();
    let reader = await open(key, { window: 5 });
    await addSeq(redis, key, 1, 8);
    const rs = await readN(reader, 5);
    expect(await pendingCount(redis, key)).toBe(5);
    await reader.ack(rs.slice(0, 3));
    expect(await pendingCount(redis, key)).toBe(2);
    await expect(reader.ack(rs.slice(0, 1))).rejects.toThrow(
      new ValueError(`Redis stream '${key}' group 'trainers' consumer 'c1': record 1 is not awaiting an ack from this reader (acked twice, or read by another reader)`),
    );
    await reader.close();
    expect(await pendingCount(redis, key)).toBe(2);

    reader = await open(key, { window: 5 });
    const rest = await readAll(reader);
    expect(seqs(rest)).toEqual([4, 5, 6, 7, 8]);
    await reader.ack(rest);
    await reader.close();
    expect(await pendingCount(redis, key)).toBe(0);
  });

  it('claims the entries a dead consumer left pending and reads them first', async () => {
    const { key, redis } = await redisKey();
    await redis.xGroupCreate(key, 'trainers', '0', { MKSTREAM: true });
    await addSeq(redis, key, 1, 6);
    await redis.xReadGroup('trainers', 'dead', { key, id: '>' }, { COUNT: 3 }); // 1..3, never acked
    await delay(60);
    const reader = await open(key, { create: false, claimIdleMs: 50 });
    const rs = await readAll(reader);
    expect(seqs(rs)).toEqual([1, 2, 3, 4, 5, 6]);
    const before = await redis.xPending(key, 'trainers');
    expect(before.consumers).toEqual([{ name: 'c1', deliveriesCounter: 6 }]);
    await reader.ack(rs);
    await reader.close();
    expect(await pendingCount(redis, key)).toBe(0);
  });

  it('leaves a consumer alone that was idle for less than claimIdleMs', async () => {
    const { key, redis } = await redisKey();
    await redis.xGroupCreate(key, 'trainers', '0', { MKSTREAM: true });
    await addSeq(redis, key, 1, 4);
    await redis.xReadGroup('trainers', 'alive', { key, id: '>' }, { COUNT: 2 });
    const reader = await open(key, { claimIdleMs: 60_000 });
    const rs = await readAll(reader);
    expect(seqs(rs)).toEqual([3, 4]);
    await reader.ack(rs);
    await reader.close();
  });

  it('resumes after a position: exactly the entries after it, whether acks were behind or ahead of it', async () => {
    const { key, redis } = await redisKey();
    let reader = await open(key);
    const ids = await addSeq(redis, key, 1, 50);
    let rs = await readN(reader, 20);
    await reader.ack(rs.slice(0, 15)); // acks behind the checkpoint
    const position = rs[19]!.position as string;
    expect(position).toBe(ids[19]);
    await reader.close();
    reader = await open(key, {}, position);
    rs = await readAll(reader);
    expect(seqs(rs)).toEqual(range(21, 50));
    await reader.ack(rs);
    await reader.close();
    expect(await pendingCount(redis, key)).toBe(0); // 16..20 were acked on the way

    // acks ahead of the checkpoint: 21..30 applied and acked, then the run died before checkpointing them
    reader = await open(key, {}, ids[19]);
    rs = await readN(reader, 10);
    await reader.ack(rs);
    await reader.close();
    reader = await open(key, {}, ids[19]);
    rs = await readAll(reader);
    expect(seqs(rs)).toEqual(range(21, 50));
    await reader.ack(rs);
    await reader.close();
    expect(await pendingCount(redis, key)).toBe(0);
  });

  it('compares entry ids as numbers', () => {
    expect(compareIds('9-0', '10-0')).toBe(-1);
    expect(compareIds('10-2', '10-10')).toBe(-1);
    expect(compareIds('1700000000000-5', '1700000000000-5')).toBe(0);
    expect(compareIds('18446744073709551615-1', '18446744073709551615-0')).toBe(1);
  });

  it('a pending entry deleted from the stream is acked and skipped', async () => {
    const { key, redis } = await redisKey();
    let reader = await open(key, { window: 3 });
    const ids = await addSeq(redis, key, 1, 3);
    await readN(reader, 3);
    await reader.close(); // all three pending
    await redis.xDel(key, ids[1]!);
    reader = await open(key, { window: 3 });
    const rs = await readAll(reader);
    expect(seqs(rs)).toEqual([1, 3]);
    await reader.ack(rs);
    await reader.close();
    expect(await pendingCount(redis, key)).toBe(0);
  });

  describe('bad input', () => {
    const name = (key: string): string => `Redis stream '${key}' group 'trainers' consumer 'c1'`;

    it('an unreachable server', async () => {
      await expect(open('events', { url: 'redis://127.0.0.1:1' })).rejects.toThrow(
        new SourceError(`${name('events')}: cannot connect to Redis at redis://127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1)`),
      );
    });

    it('a stream or group that does not exist, with create: false', async () => {
      const { key, redis } = await redisKey();
      await expect(open(key, { create: false })).rejects.toThrow(new SourceError(`${name(key)}: stream '${key}' does not exist (create: false)`));
      await redis.xAdd(key, '*', { data: '1' });
      await expect(open(key, { create: false })).rejects.toThrow(new SourceError(`${name(key)}: group 'trainers' does not exist on stream '${key}' (create: false)`));
    });

    it('a key that is not a stream', async () => {
      const { key, redis } = await redisKey();
      await redis.set(key, 'x');
      await expect(open(key, { create: false })).rejects.toThrow(new SourceError(`${name(key)}: key '${key}' is not a stream`));
      await expect(open(key)).rejects.toThrow(
        new SourceError(`${name(key)}: cannot create group 'trainers' on '${key}' (WRONGTYPE Operation against a key holding the wrong kind of value)`),
      );
    });

    it.skipIf(!hasBinary('/usr/bin/redis-server'))('a wrong password, on a server that requires one', async () => {
      const { url } = await redisServerWithPassword('right');
      await expect(open('events', { url, password: 'wrong' })).rejects.toThrow(
        new SourceError(`${name('events')}: ${url} refused the credentials (a password): WRONGPASS invalid username-password pair or user is disabled.`),
      );
      const withAuth = url.replace('//', '//:wrong@');
      await expect(open('events', { url: withAuth })).rejects.toThrow(
        new SourceError(`${name('events')}: ${url.replace('//', '//:***@')} refused the credentials (a password): WRONGPASS invalid username-password pair or user is disabled.`),
      );
      await expect(open('events', { url })).rejects.toThrow(
        new SourceError(
          `${name('events')}: ${url} refused the credentials (no credentials): NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time`,
        ),
      );
      const reader = await open('events', { url, password: 'right' });
      await reader.close();
    });

    it.skipIf(!hasBinary('/usr/bin/redis-server'))('a server that goes away mid-run fails next() with a SourceError', async () => {
      const { url, server } = await redisServerWithPassword('right');
      const reader = await open('events', { url, password: 'right', idleTimeoutMs: 5000, blockMs: 2000 });
      const pending = reader.next();
      await delay(100);
      server.kill('SIGKILL');
      await expect(pending).rejects.toThrow(new SourceError(`${name('events')}: XREADGROUP on ${url} failed (Socket closed unexpectedly)`));
      await reader.close();
    });

    it('a password on the local server, which has none set, is accepted: its default user takes any password', async () => {
      const { key } = await redisKey();
      const reader = await open(key, { password: 'anything' });
      await reader.close();
    });

    it('bad config and positions', async () => {
      await expect(openRedisReader({ url: REDIS_URL, stream: 'k', group: 'g', consumer: '' }, { batchSize: 4 })).rejects.toThrow(
        new ValueError(`Redis source: consumer must be a non-empty string (got "")`),
      );
      await expect(openRedisReader({ url: REDIS_URL, stream: 'k', group: 'g', consumer: 'c', blockMs: -1 }, { batchSize: 4 })).rejects.toThrow(
        new ValueError(`Redis source: blockMs must be an integer >= 1 (got -1)`),
      );
      await expect(openRedisReader({ url: REDIS_URL, stream: 'k', group: 'g', consumer: 'c' }, { batchSize: 4, from: 17 })).rejects.toThrow(
        new ValueError(`Redis stream 'k' group 'g' consumer 'c': from must be a stream entry id like "1700000000000-0" (got 17)`),
      );
    });
  });
});
