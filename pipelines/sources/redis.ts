// Redis Streams as a record source: one consumer of a consumer group, reading at most `window` entries
// per XREADGROUP, XACKing them after the update that used them, resumable from an entry id.
//
// Order of reading: first entries idle longer than `claimIdleMs` in the pending lists of other (dead)
// consumers are claimed (XAUTOCLAIM), then this consumer's own pending list is read (what it was given
// and never acked: its last run's unapplied records, and the claimed ones), then new entries ('>').
//
// Resume (`from: id`): acks run ahead of checkpoints, so entries after the checkpoint may already be
// acked; the group's last-delivered id is set back to `from` (XGROUP SETID) so they are read again, and
// pending entries at or below `from` (applied before the checkpoint) are acked and skipped. Every entry is
// then applied exactly once relative to the checkpoint. A group being resumed belongs to one trainer.
//
// Two connections: XREADGROUP BLOCK holds its connection, and an XACK queued behind it would wait out the
// block, so acks and setup go on their own connection.
//
// The record's value is the JSON object in the entry's field `field` (default 'data'), made a record as
// broker-config.ts says; an entry without that field becomes a record with a 'missing field' fault.
import { createClient } from 'redis';
import { SourceError, ValueError, fmtValue } from '../../src/errors.js';
import type { RecordReader, SourceRecord } from '../records.js';
import { ConfigReader, type ReaderOpenOptions, causeOf, parsePayloadText } from './broker-config.js';

export interface RedisSourceConfig {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  username?: string;
  password?: string;
  /** The stream's key. */
  stream: string;
  group: string;
  /** This reader's name in the group: fixed across runs, so a restart finds its own pending entries. */
  consumer: string;
  /** The entry field holding the JSON payload (default 'data'). */
  field?: string;
  /** Create the group (and the stream, MKSTREAM) when missing, reading from the start; default false: missing is an error. */
  create?: boolean;
  /** Entries read per XREADGROUP at most, the credit window (default: the run's batch size). */
  window?: number;
  /** How long one XREADGROUP waits for new entries (default 2000 ms). */
  blockMs?: number;
  /** next() returns null after this long without an entry; unset waits for ever. */
  idleTimeoutMs?: number;
  /** Pending entries of other consumers idle longer than this are taken over at start (default 60000 ms). */
  claimIdleMs?: number;
  /** Give up connecting after this long (default 2000 ms). */
  connectTimeoutMs?: number;
}

const DEFAULT_FIELD = 'data';
const DEFAULT_BLOCK_MS = 2_000;
const DEFAULT_CLAIM_IDLE_MS = 60_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
/** Entries claimed per XAUTOCLAIM call: only the start pays for it, in round trips of this size. */
const CLAIM_COUNT = 100;

type Client = ReturnType<typeof makeClient>;

interface Settings {
  name: string;
  url: string;
  shownUrl: string;
  username: string | undefined;
  password: string | undefined;
  stream: string;
  group: string;
  consumer: string;
  field: string;
  create: boolean;
  window: number;
  blockMs: number;
  idleTimeoutMs: number | undefined;
  claimIdleMs: number;
  connectTimeoutMs: number;
  from: string | undefined;
}

/** Opens a reader: connects (twice), checks or creates the group, resets it to `from`, claims dead consumers' entries. */
export async function openRedisReader(config: RedisSourceConfig, opts: ReaderOpenOptions): Promise<RedisReader> {
  const c = new ConfigReader('Redis source', config);
  const url = c.string('url');
  const stream = c.string('stream');
  const group = c.string('group');
  const consumer = c.string('consumer');
  const name = `Redis stream '${stream}' group '${group}' consumer '${consumer}'`;
  const s: Settings = {
    name,
    url,
    shownUrl: hidePassword(url),
    username: c.optionalString('username'),
    password: c.optionalString('password'),
    stream,
    group,
    consumer,
    field: c.optionalString('field') ?? DEFAULT_FIELD,
    create: c.optionalBool('create') ?? false,
    window: c.window(opts),
    blockMs: c.optionalInt('blockMs', 1) ?? DEFAULT_BLOCK_MS,
    idleTimeoutMs: c.optionalInt('idleTimeoutMs', 0),
    claimIdleMs: c.optionalInt('claimIdleMs', 0) ?? DEFAULT_CLAIM_IDLE_MS,
    connectTimeoutMs: c.optionalInt('connectTimeoutMs', 1) ?? DEFAULT_CONNECT_TIMEOUT_MS,
    from: checkFrom(name, opts.from),
  };
  const cmd = await connectTo(s);
  let blocking: Client | null = null;
  try {
    await checkGroup(cmd, s);
    if (s.from !== undefined) await cmd.xGroupSetId(s.stream, s.group, s.from);
    const start = s.from ?? (await startOf(cmd, s));
    await claimDead(cmd, s);
    blocking = cmd.duplicate();
    blocking.on('error', () => {}); // a failure reaches next() through the rejected command
    await blocking.connect();
    return new RedisReader(s, cmd, blocking, start);
  } catch (e) {
    cmd.destroy();
    blocking?.destroy();
    throw e instanceof SourceError ? e : new SourceError(`${s.name}: ${causeOf(e)}`);
  }
}

function hidePassword(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, (_, auth: string) => `//${auth.includes(':') ? `${auth.slice(0, auth.indexOf(':'))}:***` : auth}@`);
}

function checkFrom(name: string, from: unknown): string | undefined {
  if (from === undefined) return undefined;
  if (typeof from !== 'string' || !/^\d+-\d+$/.test(from)) throw new ValueError(`${name}: from must be a stream entry id like "1700000000000-0" (got ${fmtValue(from)})`);
  return from;
}

/** Stream ids compared as numbers (ms, then seq): as strings "9-0" > "10-0". */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  const d = BigInt(am!) - BigInt(bm!) || BigInt(as ?? '0') - BigInt(bs ?? '0');
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

function makeClient(s: Settings) {
  return createClient({
    url: s.url,
    username: s.username,
    password: s.password,
    // No reconnect loop: a wrong address fails now, and a connection lost mid-run fails the run, which
    // resumes from its checkpoint (the group keeps what was not acked).
    socket: { connectTimeout: s.connectTimeoutMs, reconnectStrategy: false },
  });
}

async function connectTo(s: Settings): Promise<Client> {
  const client = makeClient(s);
  client.on('error', () => {}); // reported through connect() and the commands instead
  try {
    await client.connect();
    return client;
  } catch (e) {
    client.destroy();
    const msg = causeOf(e);
    if (/^(WRONGPASS|NOAUTH|NOPERM)/.test(msg)) {
      const who = s.username !== undefined ? `user '${s.username}'` : s.password !== undefined || /\/\/[^/]*@/.test(s.url) ? 'a password' : 'no credentials';
      throw new SourceError(`${s.name}: ${s.shownUrl} refused the credentials (${who}): ${msg}`);
    }
    throw new SourceError(`${s.name}: cannot connect to Redis at ${s.shownUrl} (${msg})`);
  }
}

async function checkGroup(cmd: Client, s: Settings): Promise<void> {
  if (s.create) {
    try {
      await cmd.xGroupCreate(s.stream, s.group, '0', { MKSTREAM: true });
    } catch (e) {
      if (!causeOf(e).startsWith('BUSYGROUP')) throw new SourceError(`${s.name}: cannot create group '${s.group}' on '${s.stream}' (${causeOf(e)})`);
    }
    return;
  }
  let groups: { name: unknown }[];
  try {
    groups = (await cmd.xInfoGroups(s.stream)) as { name: unknown }[];
  } catch (e) {
    const msg = causeOf(e);
    if (msg.startsWith('ERR no such key')) throw new SourceError(`${s.name}: stream '${s.stream}' does not exist (create: false)`);
    if (msg.startsWith('WRONGTYPE')) throw new SourceError(`${s.name}: key '${s.stream}' is not a stream`);
    throw new SourceError(`${s.name}: cannot look up the groups of '${s.stream}' (${msg})`);
  }
  if (!groups.some((g) => String(g.name) === s.group)) throw new SourceError(`${s.name}: group '${s.group}' does not exist on stream '${s.stream}' (create: false)`);
}

/**
 * Where a reader opened without `from` starts, as a `from` would say it: just before the group's oldest
 * pending entry (delivered, never acked), or the group's last-delivered id when none is pending.
 */
async function startOf(cmd: Client, s: Settings): Promise<string> {
  const pending = await cmd.xPending(s.stream, s.group);
  if (Number(pending.pending) > 0 && pending.firstId !== null) return idBefore(String(pending.firstId));
  const groups = (await cmd.xInfoGroups(s.stream)) as { name: unknown; 'last-delivered-id': unknown }[];
  return String(groups.find((g) => String(g.name) === s.group)!['last-delivered-id']);
}

/** The greatest id below `id`: a reader resumed after it reads `id` again. */
export function idBefore(id: string): string {
  const [ms, seq] = id.split('-').map((p) => BigInt(p));
  if (seq! > 0n) return `${ms}-${seq! - 1n}`;
  return ms! > 0n ? `${ms! - 1n}-18446744073709551615` : '0-0';
}

/** XAUTOCLAIM until the whole pending list was scanned: dead consumers' entries move to this one. */
async function claimDead(cmd: Client, s: Settings): Promise<void> {
  let start = '0-0';
  do {
    const r = await cmd.xAutoClaim(s.stream, s.group, s.consumer, s.claimIdleMs, start, { COUNT: CLAIM_COUNT });
    start = String(r.nextId);
  } while (start !== '0-0');
}

interface Entry {
  id: string;
  message: Record<string, string> | null;
}

export class RedisReader implements RecordReader {
  readonly name: string;
  readonly replays = true;
  /** The credit window: entries read per XREADGROUP at most. */
  readonly window: number;
  /** Read from Redis, not yet returned by next(): at most `window` (one XREADGROUP's COUNT). */
  private buffer: Entry[] = [];
  /** Returned by next(), not yet acked. */
  private readonly outstanding = new Set<string>();
  /** Reading this consumer's pending list (from this id on) before new entries; null once done. */
  private pendingCursor: string | null = '0-0';
  private lastId = '0-0';
  private count = 0;
  private closed = false;

  /** Use openRedisReader, which checks the group first. */
  constructor(
    private readonly s: Settings,
    private readonly cmd: Client,
    private readonly blocking: Client,
    /** Where this reader starts (see startOf). */
    private readonly start = '0-0',
  ) {
    this.name = s.name;
    this.window = s.window;
  }

  /**
   * The id of the last entry returned; before the first, where this reader starts: its `from`, or just
   * before the group's oldest pending entry. A checkpoint taken then resumes at the same place, so
   * entries acked after it are read again rather than skipped.
   */
  position(): string {
    return this.count === 0 ? this.start : this.lastId;
  }

  async next(): Promise<SourceRecord | null> {
    const idleSince = performance.now();
    for (;;) {
      if (this.closed) return null;
      const e = this.buffer.shift();
      if (e !== undefined) {
        if (this.s.from !== undefined && compareIds(e.id, this.s.from) <= 0) {
          await this.xack([e.id]); // applied before the checkpoint: only its ack was lost
          continue;
        }
        if (e.message === null) {
          await this.xack([e.id]); // deleted from the stream (XDEL/XTRIM) while pending: nothing to read
          continue;
        }
        if (compareIds(e.id, this.lastId) <= 0) continue; // already returned (defensive: ids only grow)
        this.lastId = e.id;
        this.outstanding.add(e.id);
        const text = e.message[this.s.field];
        const index = ++this.count;
        if (text === undefined) {
          const fields = e.message;
          return { value: fields, index, bytes: 0, position: e.id, ackHandle: e.id, fault: { reason: 'missing field', message: `entry ${e.id} has no field '${this.s.field}'` } };
        }
        return { ...parsePayloadText(text), index, bytes: Buffer.byteLength(text), position: e.id, ackHandle: e.id };
      }
      let remaining: number | undefined;
      if (this.s.idleTimeoutMs !== undefined) {
        remaining = this.s.idleTimeoutMs - (performance.now() - idleSince);
        if (remaining <= 0 && this.pendingCursor === null) return null;
      }
      await this.read(remaining);
    }
  }

  /** One XREADGROUP of at most `window` entries, issued only when the buffer is empty. */
  private async read(remainingMs: number | undefined): Promise<void> {
    const s = this.s;
    try {
      if (this.pendingCursor !== null) {
        // This consumer's pending list, oldest first, without blocking. With `from`, entries above it are
        // left for '>' (the group was set back to `from`, so they come again there).
        const r = await this.cmd.xReadGroup(s.group, s.consumer, { key: s.stream, id: this.pendingCursor }, { COUNT: this.window });
        const entries = (r?.[0]?.messages ?? []) as Entry[];
        if (entries.length === 0) {
          this.pendingCursor = null;
          return;
        }
        this.pendingCursor = entries[entries.length - 1]!.id;
        this.buffer = s.from === undefined ? entries : entries.filter((e) => compareIds(e.id, s.from!) <= 0);
        return;
      }
      const block = Math.max(1, Math.min(s.blockMs, remainingMs ?? s.blockMs));
      const r = await this.blocking.xReadGroup(s.group, s.consumer, { key: s.stream, id: '>' }, { COUNT: this.window, BLOCK: Math.ceil(block) });
      this.buffer = (r?.[0]?.messages ?? []) as Entry[];
    } catch (e) {
      if (this.closed) return;
      throw new SourceError(`${this.name}: XREADGROUP on ${this.s.shownUrl} failed (${causeOf(e)})`);
    }
  }

  private async xack(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    try {
      await this.cmd.xAck(this.s.stream, this.s.group, ids);
    } catch (e) {
      throw new SourceError(`${this.name}: XACK of ${ids[0]}${ids.length > 1 ? ` and ${ids.length - 1} more` : ''} failed (${causeOf(e)})`);
    }
  }

  /** XACKs the records' entries (one round trip). */
  async ack(records: readonly SourceRecord[]): Promise<void> {
    const ids: string[] = [];
    for (const r of records) {
      const id = r.ackHandle as string;
      if (!this.outstanding.has(id)) throw new ValueError(`${this.name}: record ${r.index} is not awaiting an ack from this reader (acked twice, or read by another reader)`);
      ids.push(id);
    }
    for (const id of ids) this.outstanding.delete(id);
    await this.xack(ids);
  }

  /** Disconnects; entries read and not acked stay in this consumer's pending list for its next run. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.blocking.destroy(); // cuts a pending XREADGROUP BLOCK short
    this.cmd.destroy();
  }
}
