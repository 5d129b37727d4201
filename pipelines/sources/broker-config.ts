// What the broker readers (NATS, MQTT, Redis) share: the options a run passes when it opens one, config
// checks whose messages name the source, and how a payload becomes a record.
//
// Payloads: every message becomes a record, so a reader never throws mid-run on bad data. A payload that
// is a UTF-8 JSON object becomes the record's value. Anything else (not UTF-8, not JSON, JSON that is not
// an object, a Redis entry without the payload field) becomes a record whose value is the payload's text
// (its first PREVIEW_BYTES) and whose `fault` gives the reason, as the file readers do: the pipeline's
// record source dead-letters it with that reason. `bytes` is always the payload's size as received.
import { ValueError, checkInt, fmtValue } from '../../src/errors.js';
import type { ReaderPosition, RecordFault } from '../records.js';
import { PREVIEW_BYTES, parseJsonObject } from './jsonl.js';

/** What a run passes when it opens a broker reader (the config is what the user wrote). */
export interface ReaderOpenOptions {
  /** The run's batch size: the default credit window, so one fetch fills at most one batch. */
  batchSize: number;
  /** A position from a checkpoint: the reader continues with the record after it. */
  from?: ReaderPosition;
}

/** A payload as a record's value, with the fault when it is not a JSON object (see the header). */
export interface DecodedPayload {
  value: unknown;
  fault?: RecordFault;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A payload's bytes as a record value (see the header). */
export function decodePayload(payload: Uint8Array): DecodedPayload {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    const preview = Buffer.from(payload.buffer, payload.byteOffset, Math.min(payload.length, PREVIEW_BYTES)).toString('latin1');
    return { value: preview, fault: { reason: 'invalid JSON', message: 'invalid JSON: not valid UTF-8' } };
  }
  return parseJsonObject(text);
}

/** A payload's text as a record value (see the header): the JSON Lines rule, one JSON object per record. */
export { parseJsonObject as parsePayloadText } from './jsonl.js';

/** Checks one broker config object field by field; every message starts with `where` (`NATS source`). */
export class ConfigReader {
  private readonly cfg: Record<string, unknown>;

  constructor(
    readonly where: string,
    config: unknown,
  ) {
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new ValueError(`${where}: config must be an object (got ${fmtValue(config)})`);
    }
    this.cfg = config as Record<string, unknown>;
  }

  /** A required non-empty string. */
  string(key: string): string {
    const v = this.cfg[key];
    if (typeof v !== 'string' || v === '') throw new ValueError(`${this.where}: ${key} must be a non-empty string (got ${fmtValue(v)})`);
    return v;
  }

  optionalString(key: string): string | undefined {
    return this.cfg[key] === undefined ? undefined : this.string(key);
  }

  /** One string or a non-empty list of them (server addresses). */
  strings(key: string): string[] {
    const v = this.cfg[key];
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0 || list.some((s) => typeof s !== 'string' || s === '')) {
      throw new ValueError(`${this.where}: ${key} must be a non-empty string or list of strings (got ${fmtValue(v)})`);
    }
    return list as string[];
  }

  optionalInt(key: string, min: number): number | undefined {
    const v = this.cfg[key];
    return v === undefined ? undefined : checkInt(this.where, key, v, min);
  }

  optionalBool(key: string): boolean | undefined {
    const v = this.cfg[key];
    if (v !== undefined && typeof v !== 'boolean') throw new ValueError(`${this.where}: ${key} must be true or false (got ${fmtValue(v)})`);
    return v;
  }

  /** The credit window: `window` from the config, else the run's batch size. */
  window(opts: ReaderOpenOptions): number {
    return this.optionalInt('window', 1) ?? checkInt(this.where, 'batchSize', opts.batchSize, 1);
  }
}

/** An error's own words for a message: the library's message, or its code when it has none. */
export function causeOf(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return e.message !== '' ? e.message : typeof code === 'string' ? code : e.name;
  }
  return String(e);
}

/** A promise and the function that settles it: how a reader's next() waits for the broker to deliver. */
export function signal(): { promise: Promise<void>; wake: () => void } {
  let wake!: () => void;
  const promise = new Promise<void>((resolve) => {
    wake = resolve;
  });
  return { promise, wake };
}

/** Waits for `p` at most `ms` (for ever when undefined); true when `p` settled first. The timer is cleared either way. */
export async function waitAtMost(p: Promise<void>, ms: number | undefined): Promise<boolean> {
  if (ms === undefined) {
    await p;
    return true;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
