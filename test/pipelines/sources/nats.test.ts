// NATS JetStream reader against the local nats-server (127.0.0.1:4222, -js): order, the credit window,
// acks, resume from a position, a SIGKILL mid-stream, and the errors for bad input.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SourceError, ValueError } from '../../../src/errors.js';
import { type NatsReader, type NatsSourceConfig, openNatsReader } from '../../../pipelines/sources/nats.js';
import { range, readAll, readN, seqs, NATS_SERVER, delay, hasBinary, natsServerWithAuth, natsStream, tempDir, uniqueName, waitUntil } from '../../helpers/services.js';


async function open(stream: string, extra: Partial<NatsSourceConfig> = {}, from?: number): Promise<NatsReader> {
  const reader = await openNatsReader({ servers: NATS_SERVER, stream, consumer: 'trainer', idleTimeoutMs: 1000, ...extra }, { batchSize: 10, from });
  return reader;
}

describe('NATS JetStream reader', () => {
  it('reads what was published, in order, with stream sequences as positions; a payload that is not a JSON object becomes a record with a fault', async () => {
    const s = await natsStream();
    await s.publishSeq(1, 12);
    await s.publish('{"seq": 13,');
    await s.publish('[1,2]');
    await s.publish(new Uint8Array([0xff]));
    const reader = await open(s.name, { window: 5 });
    expect(reader.name).toBe(`NATS stream '${s.name}' consumer 'trainer'`);
    const rs = await readAll(reader);
    expect(rs).toHaveLength(15);
    expect(seqs(rs.slice(0, 12))).toEqual(range(1, 12));
    expect(rs.map((r) => r.position)).toEqual(range(1, 15));
    expect(rs.map((r) => r.index)).toEqual(range(1, 15));
    expect(rs[0]).toMatchObject({ value: { seq: 1, x: [1, -1] }, bytes: Buffer.byteLength('{"seq":1,"x":[1,-1]}') });
    expect(rs[0]!.fault).toBeUndefined();
    expect(rs[12]).toMatchObject({ value: '{"seq": 13,', bytes: 11, fault: { reason: 'invalid JSON', message: expect.stringMatching(/^invalid JSON: /) } });
    expect(rs[13]).toMatchObject({ value: '[1,2]', fault: { reason: 'invalid JSON', message: 'invalid JSON: expected an object, got an array' } });
    expect(rs[14]).toMatchObject({ value: '\xff', fault: { reason: 'invalid JSON', message: 'invalid JSON: not valid UTF-8' } });
    await reader.ack(rs);
    await reader.close();
  });

  it('position() before the first record is where the reader starts: 0 on a new consumer, its ack floor when reopened, `from` when given', async () => {
    const s = await natsStream();
    await s.publishSeq(1, 10);
    const first = await open(s.name);
    expect(first.position()).toBe(0);
    const rs = await readN(first, 4);
    await first.ack(rs);
    expect(first.position()).toBe(4);
    await first.close();
    await waitUntil('the acks to reach the server', async () => (await s.jsm.consumers.info(s.name, 'trainer')).ack_floor.stream_seq === 4);
    const again = await open(s.name);
    expect(again.position()).toBe(4); // a checkpoint taken now resumes here: nothing acked is skipped, nothing read twice
    expect(seqs(await readN(again, 1))).toEqual([5]);
    await again.close();
    const resumed = await open(s.name, {}, 2);
    expect(resumed.position()).toBe(2);
    expect(seqs(await readN(resumed, 3))).toEqual([3, 4, 5]);
    await resumed.close();
  });

  it('never holds more than `window` messages: one fetch of at most window, only when the buffer is empty', async () => {
    const s = await natsStream();
    const window = 8;
    await s.publishSeq(1, 10 * window);
    const reader = await open(s.name, { window });
    const got: number[] = [];
    for (let i = 0; i < 3 * window + 3; i++) {
      const [r] = await readN(reader, 1);
      got.push((r!.value as { seq: number }).seq);
      const info = await s.jsm.consumers.info(s.name, 'trainer');
      // delivered and not acked: the one just read plus what is still buffered, at most one window
      expect(info.num_ack_pending).toBeLessThanOrEqual(window);
      expect(info.num_ack_pending).toBe(window - (i % window));
      expect(info.num_pending).toBe(10 * window - window * (Math.floor(i / window) + 1));
      await reader.ack([r!]);
      await delay(5); // a slow trainer
    }
    expect(got).toEqual(range(1, 3 * window + 3));
    await reader.close();
  });

  it('acks only when ack() is called; close hands unacked messages back and a restart gets them first', async () => {
    const s = await natsStream();
    await s.publishSeq(1, 8);
    const reader = await open(s.name, { window: 5, ackWaitMs: 60_000 });
    const rs = await readN(reader, 5);
    let info = await s.jsm.consumers.info(s.name, 'trainer');
    expect(info.num_ack_pending).toBe(5);
    expect(info.ack_floor.stream_seq).toBe(0);
    expect(info.config.ack_wait).toBe(60_000 * 1e6);
    await reader.ack(rs.slice(0, 3));
    info = await s.jsm.consumers.info(s.name, 'trainer');
    expect(info.num_ack_pending).toBe(2);
    expect(info.ack_floor.stream_seq).toBe(3);
    await expect(reader.ack(rs.slice(0, 1))).rejects.toThrow(
      new ValueError(`NATS stream '${s.name}' consumer 'trainer': record 1 is not awaiting an ack from this reader (acked twice, or read by another reader)`),
    );
    await reader.close();

    const again = await open(s.name, { window: 5, ackWaitMs: 60_000 });
    const rest = await readAll(again);
    expect(seqs(rest)).toEqual([4, 5, 6, 7, 8]);
    await again.ack(rest);
    await again.close();
    info = await s.jsm.consumers.info(s.name, 'trainer');
    expect(info.num_ack_pending).toBe(0);
    expect(info.ack_floor.stream_seq).toBe(8);
  });

  it('a message never acked is redelivered after ack_wait (here to a second reader of the same durable consumer)', async () => {
    const s = await natsStream();
    await s.publishSeq(1, 2);
    const hung = await open(s.name, { window: 2, ackWaitMs: 1000 });
    expect(seqs(await readN(hung, 2))).toEqual([1, 2]); // read, never acked: a trainer that hangs
    const t0 = performance.now();
    const other = await open(s.name, { window: 2, ackWaitMs: 1000, idleTimeoutMs: 4000 });
    const rs = await readN(other, 2);
    expect(seqs(rs)).toEqual([1, 2]);
    expect(performance.now() - t0).toBeGreaterThan(700);
    await other.ack(rs);
    await other.close();
    await hung.close();
  });

  it('resumes after a position: exactly the records after it, whether acks were behind or ahead of it', async () => {
    const s = await natsStream();
    await s.publishSeq(1, 50);
    // acks behind the checkpoint: 20 read, 15 acked
    let reader = await open(s.name);
    let rs = await readN(reader, 20);
    await reader.ack(rs.slice(0, 15));
    const position = rs[19]!.position as number;
    expect(position).toBe(20);
    await reader.close();
    reader = await open(s.name, {}, position);
    rs = await readAll(reader);
    expect(seqs(rs)).toEqual(range(21, 50));
    expect(rs[0]!.index).toBe(1);
    await reader.ack(rs);
    await reader.close();

    // acks ahead of the checkpoint (the update of 21..30 applied and acked, then the run died before its
    // next checkpoint at 30): the weights are back at 20, so 21..30 must come again
    reader = await open(s.name, {}, 20);
    rs = await readN(reader, 10);
    await reader.ack(rs);
    await reader.close();
    reader = await open(s.name, {}, 20);
    rs = await readAll(reader);
    expect(seqs(rs)).toEqual(range(21, 50));
    await reader.ack(rs);
    await reader.close();
    const info = await s.jsm.consumers.info(s.name, 'trainer');
    expect(info.num_ack_pending).toBe(0);
    expect(info.config.opt_start_seq).toBe(21);
  });

  it('killed with SIGKILL mid-stream and resumed from its checkpoint, applies every message exactly once', async () => {
    const s = await natsStream();
    const n = 300;
    await s.publishSeq(1, n);
    const dir = tempDir();
    const config: NatsSourceConfig = { servers: NATS_SERVER, stream: s.name, consumer: 'trainer', idleTimeoutMs: 1000 };
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../helpers/nats-kill-child.mjs', import.meta.url)), JSON.stringify(config), dir, '10', '3'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const checkpointFile = join(dir, 'checkpoint.json');
    const readCheckpoint = (): { position: number; applied: number[] } => JSON.parse(readFileSync(checkpointFile, 'utf8'));
    const ackedSeqs = (): number[] => readFileSync(join(dir, 'acked.log'), 'utf8').trim().split('\n').map(Number);
    // kill once acks have run ahead of the last checkpoint, so the resumed run must re-read acked messages
    await waitUntil(
      `a checkpoint past 100 with acks beyond it (child stderr: ${stderr})`,
      () => existsSync(checkpointFile) && readCheckpoint().position > 100 && Math.max(...ackedSeqs()) > readCheckpoint().position,
      15_000,
    );
    child.kill('SIGKILL');
    expect(await exited).toBe(null);

    const cp = readCheckpoint();
    expect(cp.position).toBeLessThan(n);
    const acked = ackedSeqs();
    expect(Math.max(...acked)).toBeGreaterThan(cp.position);
    const reader = await open(s.name, {}, cp.position);
    const resumed = seqs(await readAll(reader));
    await reader.close();
    expect(resumed[0]).toBe(cp.position + 1);
    expect([...cp.applied, ...resumed]).toEqual(range(1, n)); // each exactly once, in order
    // the acks that ran ahead of the checkpoint were re-read, not lost
    const ahead = acked.filter((q) => q > cp.position);
    expect(resumed.slice(0, ahead.length)).toEqual(ahead);
  }, 20_000);

  describe('bad input', () => {
    it('an unreachable server', async () => {
      await expect(openNatsReader({ servers: '127.0.0.1:1', stream: 'events', consumer: 'trainer' }, { batchSize: 4 })).rejects.toThrow(
        new SourceError(`NATS stream 'events' consumer 'trainer': cannot connect to a NATS server at 127.0.0.1:1 (connection refused)`),
      );
    });

    it('a stream that does not exist', async () => {
      const stream = uniqueName('missing');
      await expect(openNatsReader({ servers: NATS_SERVER, stream, consumer: 'trainer' }, { batchSize: 4 })).rejects.toThrow(
        new SourceError(`NATS stream '${stream}' consumer 'trainer': stream '${stream}' does not exist on ${NATS_SERVER}`),
      );
    });

    it('a consumer that does not exist, with create: false', async () => {
      const s = await natsStream();
      await expect(openNatsReader({ servers: NATS_SERVER, stream: s.name, consumer: 'nobody', create: false }, { batchSize: 4 })).rejects.toThrow(
        new SourceError(`NATS stream '${s.name}' consumer 'nobody': consumer 'nobody' does not exist on stream '${s.name}' (create: false)`),
      );
    });

    it('an existing consumer with another subject filter', async () => {
      const s = await natsStream();
      await (await open(s.name, { subject: `${s.name}.a` })).close();
      await expect(open(s.name, { subject: `${s.name}.b` })).rejects.toThrow(
        new SourceError(`NATS stream '${s.name}' consumer 'trainer': consumer 'trainer' filters "${s.name}.a", the config asks for "${s.name}.b"`),
      );
    });

    it.skipIf(!hasBinary('/usr/sbin/nats-server'))('wrong credentials, on a server that requires them', async () => {
      const server = await natsServerWithAuth('trainer', 'right');
      await expect(openNatsReader({ servers: server, stream: 'events', consumer: 'c', user: 'trainer', pass: 'wrong' }, { batchSize: 4 })).rejects.toThrow(
        new SourceError(`NATS stream 'events' consumer 'c': ${server} refused the credentials (user 'trainer'): Authorization Violation`),
      );
      await expect(openNatsReader({ servers: server, stream: 'events', consumer: 'c' }, { batchSize: 4 })).rejects.toThrow(
        new SourceError(`NATS stream 'events' consumer 'c': ${server} refused the credentials (no credentials): Authorization Violation`),
      );
    });

    it('a server without JetStream', async () => {
      // the same throwaway server: right credentials, but no -js
      const server = await natsServerWithAuth('trainer', 'right');
      await expect(openNatsReader({ servers: server, stream: 'events', consumer: 'c', user: 'trainer', pass: 'right' }, { batchSize: 4 })).rejects.toThrow(
        new SourceError(`NATS stream 'events' consumer 'c': JetStream is not enabled on ${server} (start nats-server with -js)`),
      );
    });

    it('a token on the local server, which has no auth, is not checked: the server lets anyone in', async () => {
      const s = await natsStream();
      const reader = await open(s.name, { token: 'anything' });
      await reader.close();
    });

    it('bad config and positions', async () => {
      await expect(openNatsReader({ servers: NATS_SERVER, stream: '', consumer: 'c' }, { batchSize: 4 })).rejects.toThrow(
        new ValueError(`NATS source: stream must be a non-empty string (got "")`),
      );
      await expect(openNatsReader({ servers: NATS_SERVER, stream: 's', consumer: 'c', window: 0 }, { batchSize: 4 })).rejects.toThrow(
        new ValueError(`NATS source: window must be an integer >= 1 (got 0)`),
      );
      await expect(openNatsReader({ servers: NATS_SERVER, stream: 's', consumer: 'c' }, { batchSize: 4, from: '12' })).rejects.toThrow(
        new ValueError(`NATS stream 's' consumer 'c': from must be a stream sequence, an integer >= 0 (got "12")`),
      );
    });
  });
});
