// MQTT 5 as a record source: a QoS 1 subscription in a persistent session under a fixed client id,
// with each PUBACK sent only when the record's update is applied, and at most `window` messages unacked.
//
// Resume: an MQTT broker keeps no replayable log, only the session: messages not yet PUBACKed are
// redelivered when the same client id connects again (clean start off, session expiry > 0). So a
// restarted run continues from what it had not acked, not from a checkpoint position. A position is
// still recorded: with `seqField` set, it is that payload field (a number the publisher increments), and
// a reader opened with `from` acks and skips messages whose seqField is <= from, which removes what was
// applied before the checkpoint but not acked. Without `seqField` the position is this reader's own
// count of records, which is not replayable, and `from` is ignored. What was acked after the last
// checkpoint is gone from the broker: a run resumed from an older checkpoint does not see it again.
//
// Credit window and mqtt.js: the client advertises receiveMaximum = window, so a conforming broker has at
// most `window` unacked messages in flight to us. mqtt.js cannot defer a PUBACK without stalling: its
// `customHandleAcks` and `handleMessage` callbacks both block the parsing of every later packet until
// they are called, and calling them sends the PUBACK. Passing an error to handleMessage's callback is the
// one way to go on without a PUBACK (handlers/publish.js in mqtt 5.16), and ack() then sends the PUBACK
// itself through the client's internal `_sendPacket`. Mosquitto 2.0.11 does not keep to receiveMaximum
// (after one PUBACK it sends up to `window` more), so a message past the window is parked and its callback
// held until an ack frees a slot: mqtt.js stops reading the socket meanwhile, and next() never sees more
// than `window` unacked messages whatever the broker does. While a callback is held, PINGRESPs wait too:
// keep `keepaliveSec` longer than a training step with such a broker.
//
// A lost connection fails next() and ack() with a SourceError (no reconnect: the pipeline resumes from its
// session). Payloads become records as broker-config.ts says: a JSON object, or a record with a `fault`.
import mqtt, { ErrorWithReasonCode, type IPublishPacket, type MqttClient, ReasonCodes } from 'mqtt';
import { SourceError, ValueError, fmtValue } from '../../src/errors.js';
import type { RecordReader, SourceRecord } from '../records.js';
import { ConfigReader, type ReaderOpenOptions, causeOf, decodePayload, signal, waitAtMost } from './broker-config.js';

export interface MqttSourceConfig {
  /** mqtt://host:port (or mqtts://, ws://). */
  url: string;
  /** Topic filter, wildcards allowed: 'sensors/+/reading'. */
  topic: string;
  /** Fixed across runs: the broker keeps the session (subscription, unacked messages) under it. */
  clientId: string;
  username?: string;
  password?: string;
  /** Unacked messages at most, the credit window, sent as receiveMaximum (default: the run's batch size; at most 65535). */
  window?: number;
  /** How long the broker keeps the session after a disconnect (default 86400 s). */
  sessionExpirySec?: number;
  /** A numeric payload field the publisher increments: the position, and what `from` is compared with. */
  seqField?: string;
  /** next() returns null after this long without a message; unset waits for ever. */
  idleTimeoutMs?: number;
  /** Give up connecting after this long (default 2000 ms). */
  connectTimeoutMs?: number;
  /** MQTT keepalive (default 60 s); must outlast a training step, see the header. */
  keepaliveSec?: number;
}

const DEFAULT_SESSION_EXPIRY_SEC = 86_400;
const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
const DEFAULT_KEEPALIVE_SEC = 60;
const MAX_RECEIVE_MAXIMUM = 65_535;

/** Given to handleMessage's callback: mqtt.js then skips its PUBACK and goes on (see the header). */
const DEFER_PUBACK = new Error('streamgrad: PUBACK deferred until the record is applied');

/** The one mqtt.js internal this reader uses, checked at open. */
interface SendsPackets {
  _sendPacket(packet: { cmd: 'puback'; messageId: number }, cb: (err?: Error) => void): void;
}

interface Settings {
  name: string;
  url: string;
  topic: string;
  clientId: string;
  username: string | undefined;
  password: string | undefined;
  window: number;
  sessionExpirySec: number;
  seqField: string | undefined;
  idleTimeoutMs: number | undefined;
  connectTimeoutMs: number;
  keepaliveSec: number;
  from: number | undefined;
}

/** Opens a reader: connects with the persistent session, subscribes with QoS 1. */
export async function openMqttReader(config: MqttSourceConfig, opts: ReaderOpenOptions): Promise<MqttReader> {
  const c = new ConfigReader('MQTT source', config);
  const url = c.string('url');
  const topic = c.string('topic');
  const clientId = c.string('clientId');
  const name = `MQTT topic '${topic}' client '${clientId}'`;
  const window = c.window(opts);
  if (window > MAX_RECEIVE_MAXIMUM) throw new ValueError(`MQTT source: window must be at most ${MAX_RECEIVE_MAXIMUM}, MQTT's largest receiveMaximum (got ${window})`);
  const seqField = c.optionalString('seqField');
  const s: Settings = {
    name,
    url,
    topic,
    clientId,
    username: c.optionalString('username'),
    password: c.optionalString('password'),
    window,
    sessionExpirySec: c.optionalInt('sessionExpirySec', 1) ?? DEFAULT_SESSION_EXPIRY_SEC,
    seqField,
    idleTimeoutMs: c.optionalInt('idleTimeoutMs', 0),
    connectTimeoutMs: c.optionalInt('connectTimeoutMs', 1) ?? DEFAULT_CONNECT_TIMEOUT_MS,
    keepaliveSec: c.optionalInt('keepaliveSec', 0) ?? DEFAULT_KEEPALIVE_SEC,
    from: seqField === undefined ? undefined : checkFrom(name, opts.from),
  };
  const client = mqtt.connect(url, {
    manualConnect: true, // handleMessage must be in place before the session's queued messages arrive
    protocolVersion: 5,
    clientId,
    clean: false,
    properties: { sessionExpiryInterval: s.sessionExpirySec, receiveMaximum: window },
    username: s.username,
    password: s.password,
    reconnectPeriod: 0,
    connectTimeout: s.connectTimeoutMs,
    keepalive: s.keepaliveSec,
  });
  if (typeof (client as unknown as Partial<SendsPackets>)._sendPacket !== 'function') {
    client.end(true);
    throw new SourceError(`${name}: this mqtt.js has no _sendPacket, which deferred PUBACKs need (written for mqtt 5.16)`);
  }
  const reader = new MqttReader(s, client);
  await reader.start();
  return reader;
}

function checkFrom(name: string, from: unknown): number | undefined {
  if (from === undefined) return undefined;
  if (typeof from !== 'number' || !Number.isFinite(from)) throw new ValueError(`${name}: from must be a number, a value of the seqField (got ${fmtValue(from)})`);
  return from;
}

export class MqttReader implements RecordReader {
  readonly name: string;
  /** The credit window: unacked messages held at most. */
  readonly window: number;
  /** Received, not yet returned by next(). */
  private readonly buffer: IPublishPacket[] = [];
  /** Returned by next(), not yet acked. */
  private readonly outstanding = new Set<IPublishPacket>();
  /** Received beyond the window (a broker that ignores receiveMaximum): taken into `buffer` as acks free slots. */
  private readonly parked: IPublishPacket[] = [];
  /** mqtt.js's callback for the last parked message: called once it is taken, so mqtt.js reads on. */
  private held: (() => void) | null = null;
  private overshot = 0;
  /** Holding callbacks waits for the SUBACK: mqtt.js would not read it while one is held. */
  private subscribed = false;
  private arrived = signal();
  private failure: SourceError | null = null;
  private lastError: unknown = null;
  private lastPosition: number;
  private count = 0;
  private closed = false;

  /** Use openMqttReader, which connects and subscribes. */
  constructor(
    private readonly s: Settings,
    private readonly client: MqttClient,
  ) {
    this.name = s.name;
    this.window = s.window;
    this.lastPosition = s.from ?? 0;
    client.handleMessage = (packet, done) => this.onPublish(packet, done);
  }

  /** Messages received and not yet acked (buffered or returned): at most `window`. */
  get inFlight(): number {
    return this.buffer.length + this.outstanding.size;
  }

  /** Messages the broker sent past receiveMaximum (parked until acks made room): 0 with a broker that keeps to it. */
  get overshoot(): number {
    return this.overshot;
  }

  /** @internal Connects and subscribes; called once by openMqttReader. */
  async start(): Promise<void> {
    const { client, s } = this;
    await new Promise<void>((resolve, reject) => {
      const onConnect = (): void => {
        client.off('error', onError);
        resolve();
      };
      const onError = (e: Error): void => {
        client.off('connect', onConnect);
        client.end(true);
        reject(this.connectError(e));
      };
      client.once('connect', onConnect);
      client.once('error', onError);
      client.connect();
    });
    client.on('error', (e) => (this.lastError = e));
    client.on('disconnect', (p) => (this.lastError = new Error(`the broker disconnected: ${ReasonCodes[(p.reasonCode ?? 0) as keyof typeof ReasonCodes] ?? `reason ${p.reasonCode}`}`)));
    client.on('close', () => {
      if (this.closed) return;
      const why = this.lastError === null ? '' : ` (${causeOf(this.lastError)})`;
      this.failure = new SourceError(`${s.name}: connection to ${s.url} lost${why}`);
      this.wake();
    });
    let granted: { qos: number }[];
    try {
      granted = await client.subscribeAsync(s.topic, { qos: 1 });
    } catch (e) {
      client.end(true);
      throw new SourceError(`${s.name}: subscribing to '${s.topic}' failed (${causeOf(e)})`);
    }
    this.subscribed = true;
    const qos = granted[0]?.qos ?? 128;
    if (qos !== 1) {
      client.end(true);
      const why = qos >= 128 ? `refused (reason ${qos}: ${ReasonCodes[qos as keyof typeof ReasonCodes] ?? 'unknown'})` : `granted QoS ${qos}; QoS 1 is needed to ack after the update`;
      throw new SourceError(`${s.name}: the broker ${why}`);
    }
  }

  private connectError(e: Error): SourceError {
    const s = this.s;
    if (e instanceof ErrorWithReasonCode && (e.code === 134 || e.code === 135 || e.code === 4 || e.code === 5)) {
      const creds = s.username !== undefined ? `user '${s.username}'` : 'no credentials';
      return new SourceError(`${s.name}: ${s.url} refused the credentials (${creds}): ${e.message}`);
    }
    return new SourceError(`${s.name}: cannot connect to an MQTT broker at ${s.url} (${causeOf(e)})`);
  }

  private onPublish(packet: IPublishPacket, done: (err?: Error) => void): void {
    if (this.closed) {
      done(DEFER_PUBACK); // not acked: the broker redelivers it to the next session
      return;
    }
    if (this.inFlight < this.window) {
      this.buffer.push(packet);
      this.wake();
      done(DEFER_PUBACK);
      return;
    }
    // Past receiveMaximum (see the header): park it, and hold mqtt.js's callback so it reads no further
    // until an ack makes room. Before the SUBACK, holding would stall the subscription itself, so then
    // the (conforming-broker) bound is the broker's.
    this.parked.push(packet);
    this.overshot++;
    if (this.subscribed) this.held = () => done(DEFER_PUBACK);
    else done(DEFER_PUBACK);
  }

  private wake(): void {
    const a = this.arrived;
    this.arrived = signal();
    a.wake();
  }

  /** Takes parked messages into the window as far as it has room; lets mqtt.js read on once none is parked. */
  private resume(): void {
    while (!this.closed && this.parked.length > 0 && this.inFlight < this.window) {
      this.buffer.push(this.parked.shift()!);
      this.wake();
    }
    if (this.held !== null && (this.closed || this.parked.length === 0)) {
      const go = this.held;
      this.held = null;
      go();
    }
  }

  async next(): Promise<SourceRecord | null> {
    const deadline = this.s.idleTimeoutMs === undefined ? undefined : performance.now() + this.s.idleTimeoutMs;
    for (;;) {
      if (this.failure !== null) throw this.failure;
      if (this.closed) return null;
      const p = this.buffer.shift();
      if (p !== undefined) {
        const decoded = decodePayload(p.payload as Uint8Array);
        const seq = this.seqOf(decoded.fault === undefined ? decoded.value : undefined);
        if (seq !== undefined && this.s.from !== undefined && seq <= this.s.from) {
          await this.puback([p]); // applied before the checkpoint, only its PUBACK was lost
          this.resume();
          continue;
        }
        if (this.s.seqField === undefined) this.lastPosition = this.count + 1;
        else if (seq !== undefined) this.lastPosition = seq;
        this.outstanding.add(p);
        return { ...decoded, index: ++this.count, bytes: (p.payload as Uint8Array).length, position: this.lastPosition, ackHandle: p };
      }
      const waited = await waitAtMost(this.arrived.promise, deadline === undefined ? undefined : deadline - performance.now());
      if (!waited) return null;
    }
  }

  private seqOf(value: unknown): number | undefined {
    if (this.s.seqField === undefined || typeof value !== 'object' || value === null) return undefined;
    const v = (value as Record<string, unknown>)[this.s.seqField];
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  }

  private async puback(packets: readonly IPublishPacket[]): Promise<void> {
    if (packets.length === 0) return;
    if (this.failure !== null) throw this.failure;
    // Not connected, mqtt.js would queue the PUBACK for the next connection, where the id means another message.
    if (!this.client.connected) throw new SourceError(`${this.name}: cannot ack: not connected to ${this.s.url}`);
    const send = this.client as unknown as SendsPackets;
    await Promise.all(
      packets
        .filter((p) => p.qos > 0 && p.messageId !== undefined)
        .map(
          (p) =>
            new Promise<void>((resolve, reject) =>
              send._sendPacket({ cmd: 'puback', messageId: p.messageId! }, (err) =>
                err === undefined || err === null ? resolve() : reject(new SourceError(`${this.name}: PUBACK of message ${p.messageId} failed (${causeOf(err)})`)),
              ),
            ),
        ),
    );
  }

  /** Sends the records' PUBACKs; the broker then forgets them, and may send the next ones. */
  async ack(records: readonly SourceRecord[]): Promise<void> {
    const packets: IPublishPacket[] = [];
    for (const r of records) {
      const p = r.ackHandle as IPublishPacket;
      if (!this.outstanding.has(p)) throw new ValueError(`${this.name}: record ${r.index} is not awaiting an ack from this reader (acked twice, or read by another reader)`);
      packets.push(p);
    }
    for (const p of packets) this.outstanding.delete(p);
    await this.puback(packets);
    this.resume();
  }

  /** Disconnects and keeps the session: what was not acked is redelivered to the next run with this client id. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake();
    this.resume(); // so mqtt.js is not left waiting on a held callback while it disconnects
    this.buffer.length = 0;
    this.parked.length = 0;
    this.outstanding.clear();
    await this.client.endAsync(this.failure !== null);
  }
}
