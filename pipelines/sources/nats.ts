// NATS JetStream as a record source: a durable pull consumer on an existing stream, fetched at most
// `window` messages at a time, acked after the update that used them, resumable from a stream sequence.
//
// Resume (`from: seq`): acks run ahead of checkpoints (a record is acked when its update is applied, a
// checkpoint is written every few steps), so after a crash the consumer's ack floor can be past the
// checkpoint, and the server would never redeliver the records between the two. So a reader opened with
// `from` deletes and recreates its durable consumer (even with create: false, once it is found) with
// deliver_policy by_start_sequence at seq+1, and skips anything it still sees at or below seq: every
// message is applied exactly once relative to the checkpoint. A durable consumer belongs to one reader.
// Without `from`, the durable consumer's own state says where to go on.
//
// Payloads become records as broker-config.ts says: a JSON object, or a record with a `fault` to dead-letter.
import { AckPolicy, type Consumer, type ConsumerConfig, type ConsumerInfo, type ConsumerMessages, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { AuthorizationError, type NatsConnection, NoRespondersError, connect, nanos } from '@nats-io/transport-node';
import { SourceError, ValueError, fmtValue } from '../../src/errors.js';
import type { RecordReader, SourceRecord } from '../records.js';
import { ConfigReader, type ReaderOpenOptions, causeOf, decodePayload, signal } from './broker-config.js';

export interface NatsSourceConfig {
  /** Server addresses: 'nats://127.0.0.1:4222', '127.0.0.1:4222', or a list of them. */
  servers: string | string[];
  /** The stream to read; it must exist (streams are the operator's, not the trainer's). */
  stream: string;
  /** Durable consumer name: the server remembers under it what was acked, between runs. */
  consumer: string;
  /** Subject filter of the consumer (default: the whole stream). */
  subject?: string;
  user?: string;
  pass?: string;
  token?: string;
  /** Messages fetched ahead at most, the credit window (default: the run's batch size). */
  window?: number;
  /** Create the durable consumer when it is missing (default true); false makes that an error. */
  create?: boolean;
  /**
   * How long the server waits for an ack before it redelivers (default 300000 ms). A record is acked only
   * after its update is applied, so this must outlast a few training steps, or slow steps cause storms of
   * redeliveries (which this reader drops, but the server still sends).
   */
  ackWaitMs?: number;
  /** Give up connecting after this long (default 2000 ms). */
  connectTimeoutMs?: number;
  /** next() returns null after this long without a message (at least 1000 ms: the server's minimum pull expiry); unset waits for ever. */
  idleTimeoutMs?: number;
}

const DEFAULT_ACK_WAIT_MS = 300_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
/** A pull request's expiry bounds, from the client library: at least 1 s, and 30 s is its default. */
const MIN_EXPIRES_MS = 1_000;
const MAX_EXPIRES_MS = 30_000;

/** Opens a reader: connects, checks the stream, finds or creates the durable consumer (recreated at `from`+1 when resuming). */
export async function openNatsReader(config: NatsSourceConfig, opts: ReaderOpenOptions): Promise<NatsReader> {
  const c = new ConfigReader('NATS source', config);
  const servers = c.strings('servers');
  const stream = c.string('stream');
  const consumer = c.string('consumer');
  const name = `NATS stream '${stream}' consumer '${consumer}'`;
  const settings: Settings = {
    name,
    servers,
    stream,
    consumer,
    subject: c.optionalString('subject'),
    user: c.optionalString('user'),
    pass: c.optionalString('pass'),
    token: c.optionalString('token'),
    window: c.window(opts),
    create: c.optionalBool('create') ?? true,
    ackWaitMs: c.optionalInt('ackWaitMs', 1) ?? DEFAULT_ACK_WAIT_MS,
    connectTimeoutMs: c.optionalInt('connectTimeoutMs', 1) ?? DEFAULT_CONNECT_TIMEOUT_MS,
    idleTimeoutMs: c.optionalInt('idleTimeoutMs', 0),
    from: checkFrom(name, opts.from),
  };
  if (settings.user !== undefined && settings.pass === undefined) throw new ValueError(`NATS source: user '${settings.user}' needs a pass`);

  const nc = await connectTo(settings);
  try {
    const jsm = await managerOf(nc, settings);
    const info = await consumerFor(jsm, settings);
    const pull = jetstream(nc).consumers.getConsumerFromInfo(info);
    return new NatsReader(settings, nc, pull, info.ack_floor.stream_seq);
  } catch (e) {
    await nc.close();
    throw e;
  }
}

interface Settings {
  name: string;
  servers: string[];
  stream: string;
  consumer: string;
  subject: string | undefined;
  user: string | undefined;
  pass: string | undefined;
  token: string | undefined;
  window: number;
  create: boolean;
  ackWaitMs: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number | undefined;
  from: number | undefined;
}

function checkFrom(name: string, from: unknown): number | undefined {
  if (from === undefined) return undefined;
  if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0) {
    throw new ValueError(`${name}: from must be a stream sequence, an integer >= 0 (got ${fmtValue(from)})`);
  }
  return from;
}

async function connectTo(s: Settings): Promise<NatsConnection> {
  try {
    // No reconnect loop at the start: a wrong address should fail now, not retry in the background.
    return await connect({ servers: s.servers, user: s.user, pass: s.pass, token: s.token, timeout: s.connectTimeoutMs, name: s.name });
  } catch (e) {
    const at = s.servers.join(', ');
    if (e instanceof AuthorizationError) {
      const creds = s.user !== undefined ? `user '${s.user}'` : s.token !== undefined ? 'a token' : 'no credentials';
      throw new SourceError(`${s.name}: ${at} refused the credentials (${creds}): ${e.message}`);
    }
    throw new SourceError(`${s.name}: cannot connect to a NATS server at ${at} (${causeOf(e)})`);
  }
}

async function managerOf(nc: NatsConnection, s: Settings): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(nc);
  } catch (e) {
    // The client's JetStreamNotEnabled class is not exported; its name is the stable part.
    if (e instanceof NoRespondersError || (e instanceof Error && e.name === 'JetStreamNotEnabled')) {
      throw new SourceError(`${s.name}: JetStream is not enabled on ${s.servers.join(', ')} (start nats-server with -js)`);
    }
    throw new SourceError(`${s.name}: JetStream is not usable on ${s.servers.join(', ')} (${causeOf(e)})`);
  }
}

function isApiError(e: unknown, code: number): boolean {
  return e instanceof JetStreamApiError && e.code === code;
}

/** Finds (or creates) the durable pull consumer; with `from`, recreates it to start at from+1 (see the header). */
async function consumerFor(jsm: JetStreamManager, s: Settings): Promise<ConsumerInfo> {
  try {
    await jsm.streams.info(s.stream);
  } catch (e) {
    if (isApiError(e, JetStreamApiCodes.StreamNotFound)) throw new SourceError(`${s.name}: stream '${s.stream}' does not exist on ${s.servers.join(', ')}`);
    throw new SourceError(`${s.name}: cannot look up stream '${s.stream}' (${causeOf(e)})`);
  }
  let existing: ConsumerInfo | null = null;
  try {
    existing = await jsm.consumers.info(s.stream, s.consumer);
  } catch (e) {
    if (!isApiError(e, JetStreamApiCodes.ConsumerNotFound)) throw new SourceError(`${s.name}: cannot look up consumer '${s.consumer}' (${causeOf(e)})`);
  }
  if (existing === null && !s.create) throw new SourceError(`${s.name}: consumer '${s.consumer}' does not exist on stream '${s.stream}' (create: false)`);
  if (existing !== null) {
    if (existing.config.deliver_subject !== undefined) throw new SourceError(`${s.name}: consumer '${s.consumer}' is a push consumer; a pull consumer is needed`);
    if (existing.config.ack_policy !== AckPolicy.Explicit) {
      throw new SourceError(`${s.name}: consumer '${s.consumer}' has ack_policy '${existing.config.ack_policy}'; 'explicit' is needed so records are acked one by one after their update`);
    }
  }
  const subject = s.subject ?? existing?.config.filter_subject;
  if (existing !== null && s.from === undefined) {
    if (s.subject !== undefined && s.subject !== existing.config.filter_subject) {
      throw new SourceError(`${s.name}: consumer '${s.consumer}' filters ${fmtValue(existing.config.filter_subject ?? '(all)')}, the config asks for ${fmtValue(s.subject)}`);
    }
    if (existing.config.ack_wait !== nanos(s.ackWaitMs)) return await jsm.consumers.update(s.stream, s.consumer, { ack_wait: nanos(s.ackWaitMs) });
    return existing;
  }
  // deliver_policy and opt_start_seq cannot be updated in place, hence delete + add when resuming.
  if (existing !== null) await jsm.consumers.delete(s.stream, s.consumer);
  const cfg: Partial<ConsumerConfig> = {
    durable_name: s.consumer,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(s.ackWaitMs),
    ...(s.from === undefined ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: s.from + 1 }),
    ...(subject === undefined ? {} : { filter_subject: subject }),
  };
  return await jsm.consumers.add(s.stream, cfg);
}

export class NatsReader implements RecordReader {
  readonly name: string;
  readonly replays = true;
  /** The credit window: messages fetched ahead at most. */
  readonly window: number;
  /** Delivered by the server, not yet returned by next(): at most `window`, as one fetch asks for no more. */
  private readonly buffer: JsMsg[] = [];
  /** Returned by next(), not yet acked: nak'd on close so the next run gets them at once. */
  private readonly outstanding = new Set<JsMsg>();
  private fetching: ConsumerMessages | null = null;
  private fetchFailure: unknown = null;
  private arrived = signal();
  private lastSeq = 0;
  private count = 0;
  private closed = false;

  /** Use openNatsReader, which checks the stream and the consumer first. */
  constructor(
    private readonly s: Settings,
    private readonly nc: NatsConnection,
    private readonly consumer: Consumer,
    /** The consumer's ack floor when opened: every sequence up to it is acked (0 for a new consumer). */
    ackFloor = 0,
  ) {
    this.name = s.name;
    this.window = s.window;
    this.lastSeq = s.from ?? ackFloor;
  }

  /**
   * The sequence of the last record returned; before the first, where this reader starts: its `from`, or
   * the consumer's ack floor. A checkpoint taken then resumes at the same place, so records acked after it
   * are read again rather than skipped.
   */
  position(): number {
    return this.lastSeq;
  }

  async next(): Promise<SourceRecord | null> {
    const idleSince = performance.now();
    for (;;) {
      if (this.closed) return null;
      const m = this.buffer.shift();
      if (m !== undefined) {
        // At or below the last sequence returned (or the resume point): a redelivery after ack_wait of a
        // record still in training, or one applied before the checkpoint. The first kind is acked with
        // its original; the second is acked now so the server stops offering it.
        if (m.seq <= this.lastSeq) {
          if (this.s.from !== undefined && m.seq <= this.s.from) m.ack();
          continue;
        }
        this.lastSeq = m.seq;
        this.outstanding.add(m);
        return { ...decodePayload(m.data), index: ++this.count, bytes: m.data.length, position: m.seq, ackHandle: m };
      }
      if (this.fetchFailure !== null) {
        const e = this.fetchFailure;
        this.fetchFailure = null;
        throw new SourceError(`${this.name}: fetching messages failed (${causeOf(e)})`);
      }
      if (this.fetching === null) {
        if (this.s.idleTimeoutMs !== undefined && performance.now() - idleSince >= this.s.idleTimeoutMs) return null;
        await this.startFetch();
        continue;
      }
      await this.arrived.promise;
    }
  }

  /**
   * One pull request for at most `window` messages, issued only when the buffer is empty, so no more
   * than `window` delivered-and-unreturned messages are ever held. It ends when full or when it expires.
   */
  private async startFetch(): Promise<void> {
    const idle = this.s.idleTimeoutMs;
    const expires = Math.min(MAX_EXPIRES_MS, Math.max(MIN_EXPIRES_MS, idle ?? MAX_EXPIRES_MS));
    let batch: ConsumerMessages;
    try {
      batch = await this.consumer.fetch({ max_messages: this.window, expires });
    } catch (e) {
      this.fetchFailure = e;
      return;
    }
    this.fetching = batch;
    void (async () => {
      try {
        for await (const m of batch) {
          if (this.closed) m.nak(); // delivered while closing: hand it back at once
          else this.buffer.push(m);
          this.wake();
        }
      } catch (e) {
        this.fetchFailure = e;
      } finally {
        this.fetching = null;
        this.wake();
      }
    })();
  }

  private wake(): void {
    const a = this.arrived;
    this.arrived = signal();
    a.wake();
  }

  /**
   * Acks each record's message, then one flush: a single round trip per batch instead of one ackAck per
   * message. Exactly-once relative to a checkpoint does not rest on acks (a resumed reader restarts the
   * consumer at the checkpoint's sequence), so a lost ack costs at most a redelivery, which next() drops.
   */
  async ack(records: readonly SourceRecord[]): Promise<void> {
    const msgs: JsMsg[] = [];
    for (const r of records) {
      const m = r.ackHandle as JsMsg;
      if (!this.outstanding.has(m)) throw new ValueError(`${this.name}: record ${r.index} is not awaiting an ack from this reader (acked twice, or read by another reader)`);
      msgs.push(m);
    }
    for (const m of msgs) {
      this.outstanding.delete(m);
      m.ack();
    }
    try {
      await this.nc.flush();
    } catch (e) {
      throw new SourceError(`${this.name}: acks of stream sequences ${msgs[0]?.seq}..${msgs.at(-1)?.seq} were not flushed (${causeOf(e)})`);
    }
  }

  /** Naks what was delivered but not acked (so a restart gets it at once, not after ack_wait) and disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake();
    await this.fetching?.close();
    for (const m of [...this.outstanding, ...this.buffer]) m.nak();
    this.outstanding.clear();
    this.buffer.length = 0;
    try {
      await this.nc.flush();
    } finally {
      await this.nc.close();
    }
  }
}
