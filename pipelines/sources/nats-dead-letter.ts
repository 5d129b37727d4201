// Dead letters to a NATS subject: each rejected record published as one JSON message, to JetStream
// when the subject belongs to a stream (so it is stored and acknowledged), else as plain NATS.
import { jetstream } from '@nats-io/jetstream';
import { type NatsConnection, connect } from '@nats-io/transport-node';
import { SourceError } from '../../src/errors.js';
import type { DeadLetterEntry, DeadLetterSink } from '../dead-letter.js';
import { causeOf } from './broker-config.js';

export interface NatsDeadLetterConfig {
  servers: string | string[];
  subject: string;
  user?: string;
  pass?: string;
  token?: string;
  /** Publish through JetStream and wait for the stream's ack (default true): a dead letter is then stored. */
  jetstream?: boolean;
}

export class NatsDeadLetterSink implements DeadLetterSink {
  private nc: NatsConnection | null = null;
  private closed = false;
  readonly name: string;

  constructor(private readonly config: NatsDeadLetterConfig) {
    this.name = `dead-letter subject '${config.subject}'`;
  }

  private async connection(): Promise<NatsConnection> {
    if (this.nc !== null) return this.nc;
    const { servers, user, pass, token } = this.config;
    try {
      this.nc = await connect({ servers, user, pass, token, timeout: 2000 });
    } catch (e) {
      throw new SourceError(`${this.name}: cannot connect to ${String(servers)} (${causeOf(e)})`);
    }
    return this.nc;
  }

  async write(entry: DeadLetterEntry): Promise<void> {
    if (this.closed) throw new SourceError(`${this.name}: write after close (record ${entry.index} of ${entry.source})`);
    const nc = await this.connection();
    const data = JSON.stringify(entry);
    try {
      if (this.config.jetstream ?? true) await jetstream(nc).publish(this.config.subject, data);
      else nc.publish(this.config.subject, data);
    } catch (e) {
      throw new SourceError(`${this.name}: publishing record ${entry.index} of ${entry.source} failed (${causeOf(e)})`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.nc !== null) {
      await this.nc.flush();
      await this.nc.close();
    }
  }
}
