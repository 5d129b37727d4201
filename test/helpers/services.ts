// Helpers for tests against the local brokers (NATS JetStream :4222, Redis :6379, Mosquitto :1883): unique
// names per test, cleanup when the test finishes, and throwaway servers with auth on free ports.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, connect as natsConnect } from '@nats-io/transport-node';
import mqtt, { type MqttClient } from 'mqtt';
import { createClient } from 'redis';
import { onTestFinished } from 'vitest';
import type { RecordReader, SourceRecord } from '../../pipelines/records.js';

export const NATS_SERVER = '127.0.0.1:4222';
export const REDIS_URL = 'redis://127.0.0.1:6379';
export const MQTT_URL = 'mqtt://127.0.0.1:1883';

let counter = 0;

/** A name no other test (or concurrent run) uses: letters, digits and '-' only, valid for every broker. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++counter}`;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` until it holds; fails with `what` after `timeoutMs`. */
export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}

/** The next n records of a reader; failing, naming the reader, if it ends first. */
export async function readN(reader: RecordReader, n: number): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for (let i = 0; i < n; i++) {
    const r = await reader.next();
    if (r === null) throw new Error(`${reader.name}: ended after ${i} of ${n} records`);
    out.push(r);
  }
  return out;
}

/** Every record until the reader ends (an idle timeout, for brokers). */
export async function readAll(reader: RecordReader): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for (let r = await reader.next(); r !== null; r = await reader.next()) out.push(r);
  return out;
}

export const seqs = (rs: readonly SourceRecord[]): number[] => rs.map((r) => (r.value as { seq: number }).seq);
export const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** A JSON payload with a sequence field, as the tests publish them. */
export function payload(seq: number): string {
  return JSON.stringify({ seq, x: [seq, -seq] });
}

// ---- NATS ---------------------------------------------------------------------------------------

export interface NatsStream {
  name: string;
  /** The subject messages are published on (the stream holds `${name}.>`). */
  subject: string;
  nc: NatsConnection;
  jsm: JetStreamManager;
  /** Publishes payload(from..to) and waits for each ack from the stream. */
  publishSeq(from: number, to: number): Promise<void>;
  publish(data: string | Uint8Array): Promise<number>;
}

/** A fresh stream (deleted when the test finishes) and a connection to publish and inspect it. */
export async function natsStream(): Promise<NatsStream> {
  const name = uniqueName('sg');
  const nc = await natsConnect({ servers: NATS_SERVER });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${name}.>`] });
  onTestFinished(async () => {
    await jsm.streams.delete(name).catch(() => {});
    await nc.close();
  });
  const js = jsm.jetstream();
  const subject = `${name}.data`;
  const publish = async (data: string | Uint8Array): Promise<number> => (await js.publish(subject, data)).seq;
  return {
    name,
    subject,
    nc,
    jsm,
    publish,
    async publishSeq(from, to) {
      for (let i = from; i <= to; i++) await publish(payload(i));
    },
  };
}

// ---- Redis --------------------------------------------------------------------------------------

function newRedis() {
  return createClient({ url: REDIS_URL });
}
export type Redis = ReturnType<typeof newRedis>;

/** A client for setup and inspection, and a fresh key name; both cleaned up when the test finishes. */
export async function redisKey(): Promise<{ key: string; redis: Redis }> {
  const key = uniqueName('sg');
  const redis = newRedis();
  redis.on('error', () => {}); // surfaced by the failing command instead
  await redis.connect();
  onTestFinished(async () => {
    await redis.del(key).catch(() => {});
    redis.destroy();
  });
  return { key, redis };
}

// ---- MQTT ---------------------------------------------------------------------------------------

/** A publisher connection, closed when the test finishes. */
export async function mqttPublisher(): Promise<MqttClient> {
  const c = await mqtt.connectAsync(MQTT_URL, { protocolVersion: 5, reconnectPeriod: 0 });
  onTestFinished(async () => {
    await c.endAsync();
  });
  return c;
}

/** Forgets the broker's session of `clientId` when the test finishes (clean start, expiry 0). */
export function forgetMqttSession(clientId: string): void {
  onTestFinished(async () => {
    const c = await mqtt.connectAsync(MQTT_URL, { protocolVersion: 5, clientId, clean: true, reconnectPeriod: 0, properties: { sessionExpiryInterval: 0 } });
    await c.endAsync();
  });
}

// ---- Throwaway servers ----------------------------------------------------------------------------

/** A TCP port free right now on 127.0.0.1 (the OS picks it). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export function hasBinary(path: string): boolean {
  return existsSync(path);
}

/**
 * Starts a server binary on `port` for this test and kills it (by its own pid) when the test finishes.
 * Resolves once the port accepts connections.
 */
export async function startServer(cmd: string, args: string[], port: number): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  await waitUntil(`${cmd} on port ${port} (${stderr.trim()})`, async () => child.exitCode === null && (await portOpen(port)), 5_000);
  return child;
}

/** A temporary folder removed when the test finishes. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'streamgrad-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** nats-server with user/pass auth on a free port (no JetStream: connecting is all these tests do). */
export async function natsServerWithAuth(user: string, pass: string): Promise<string> {
  const port = await freePort();
  await startServer('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(port), '--user', user, '--pass', pass], port);
  return `127.0.0.1:${port}`;
}

/** redis-server with a password on a free port; `server` is its process, for tests that kill it. */
export async function redisServerWithPassword(password: string): Promise<{ url: string; server: ChildProcess }> {
  const port = await freePort();
  const server = await startServer('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--save', '', '--appendonly', 'no'], port);
  return { url: `redis://127.0.0.1:${port}`, server };
}

/** mosquitto that accepts only `user`/`pass`, on a free port. */
export async function mosquittoWithPassword(user: string, pass: string): Promise<string> {
  const dir = tempDir();
  const port = await freePort();
  const pw = join(dir, 'passwords');
  await new Promise<void>((resolve, reject) => {
    const p = spawn('/usr/bin/mosquitto_passwd', ['-c', '-b', pw, user, pass], { stdio: 'ignore' });
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mosquitto_passwd exited with ${code}`))));
  });
  const conf = join(dir, 'mosquitto.conf');
  // `user root`: as root, mosquitto would otherwise drop to the mosquitto user, who cannot read this folder.
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${pw}\npersistence false\nuser root\n`);
  await startServer('/usr/sbin/mosquitto', ['-c', conf], port);
  return `mqtt://127.0.0.1:${port}`;
}
