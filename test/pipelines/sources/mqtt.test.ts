// MQTT reader against the local Mosquitto (127.0.0.1:1883, MQTT 5): order, the credit window, PUBACK
// only on ack(), redelivery from the persistent session, `from` with a seqField, and bad input.
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { SourceError, ValueError } from '../../../src/errors.js';
import type { SourceRecord } from '../../../pipelines/records.js';
import { type MqttReader, type MqttSourceConfig, openMqttReader } from '../../../pipelines/sources/mqtt.js';
import { range, readAll, readN, seqs, MQTT_URL, delay, forgetMqttSession, hasBinary, mosquittoWithPassword, mqttPublisher, payload, uniqueName, waitUntil } from '../../helpers/services.js';


async function publishSeq(pub: MqttClient, topic: string, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) await pub.publishAsync(topic, payload(i), { qos: 1 });
}

/** A topic and client id of this test only; the broker forgets the session when the test finishes. */
function names(): { topic: string; clientId: string } {
  const clientId = uniqueName('sg');
  forgetMqttSession(clientId);
  return { topic: `${clientId}/data`, clientId };
}

function open(n: { topic: string; clientId: string }, extra: Partial<MqttSourceConfig> = {}, from?: number): Promise<MqttReader> {
  return openMqttReader({ url: MQTT_URL, topic: n.topic, clientId: n.clientId, idleTimeoutMs: 300, ...extra }, { batchSize: 10, from });
}

describe('MQTT reader', () => {
  it('reads what was published, in order; a payload that is not a JSON object becomes a record with a fault', async () => {
    const n = names();
    const pub = await mqttPublisher();
    const reader = await open(n, { window: 5 });
    expect(reader.name).toBe(`MQTT topic '${n.topic}' client '${n.clientId}'`);
    await publishSeq(pub, n.topic, 1, 12);
    await pub.publishAsync(n.topic, '{"seq": 13,', { qos: 1 });
    const rs: SourceRecord[] = [];
    for (let r = await reader.next(); r !== null; r = await reader.next()) {
      rs.push(r);
      await reader.ack([r]);
    }
    expect(rs).toHaveLength(13);
    expect(seqs(rs.slice(0, 12))).toEqual(range(1, 12));
    expect(rs.map((r) => r.index)).toEqual(range(1, 13));
    expect(rs.map((r) => r.position)).toEqual(range(1, 13)); // no seqField: the reader's own count
    expect(rs[0]).toMatchObject({ value: { seq: 1, x: [1, -1] }, bytes: Buffer.byteLength(payload(1)) });
    expect(rs[0]!.fault).toBeUndefined();
    expect(rs[12]).toMatchObject({ value: '{"seq": 13,', bytes: 11, fault: { reason: 'invalid JSON', message: expect.stringMatching(/^invalid JSON: /) } });
    await reader.close();
  });

  it('never holds more than `window` unacked messages, even where the broker sends more than receiveMaximum', async () => {
    const n = names();
    const pub = await mqttPublisher();
    const window = 5;
    const reader = await open(n, { window });
    await publishSeq(pub, n.topic, 1, 10 * window);
    await waitUntil('a full window', () => reader.inFlight === window);
    await delay(200); // time for anything beyond the window to arrive, if it were taken
    expect(reader.inFlight).toBe(window);
    const got: number[] = [];
    for (let i = 0; i < 10 * window; i++) {
      const [r] = await readN(reader, 1);
      got.push((r!.value as { seq: number }).seq);
      expect(reader.inFlight).toBeLessThanOrEqual(window);
      if (i % 7 === 0) await delay(30); // a slow trainer: the broker has time to push past the window
      await reader.ack([r!]);
      expect(reader.inFlight).toBeLessThanOrEqual(window);
    }
    expect(got).toEqual(range(1, 10 * window));
    expect(await reader.next()).toBe(null);
    // Mosquitto 2.0.11 sends past receiveMaximum after PUBACKs (overshoot > 0 here): those were parked
    await reader.close();
  });

  it('acks only when ack() is called: the persistent session redelivers what was not acked, and only that', async () => {
    const n = names();
    const pub = await mqttPublisher();
    let reader = await open(n, { window: 5 });
    await publishSeq(pub, n.topic, 1, 8);
    const rs = await readN(reader, 5);
    expect(seqs(rs)).toEqual([1, 2, 3, 4, 5]);
    await reader.ack(rs.slice(0, 2));
    await expect(reader.ack(rs.slice(0, 1))).rejects.toThrow(
      new ValueError(`MQTT topic '${n.topic}' client '${n.clientId}': record 1 is not awaiting an ack from this reader (acked twice, or read by another reader)`),
    );
    await reader.close(); // 3..5 unacked, 6..8 queued in the session

    reader = await open(n, { window: 5 });
    const rest: SourceRecord[] = [];
    for (let r = await reader.next(); r !== null; r = await reader.next()) {
      rest.push(r);
      await reader.ack([r]);
    }
    expect(seqs(rest)).toEqual([3, 4, 5, 6, 7, 8]);
    await reader.close();

    reader = await open(n, { window: 5 });
    expect(await reader.next()).toBe(null); // all acked: nothing left in the session
    await reader.close();
  });

  it('with a seqField, positions are that field and `from` skips (and acks) what was applied before the checkpoint', async () => {
    const n = names();
    const pub = await mqttPublisher();
    let reader = await open(n, { window: 10, seqField: 'seq' });
    await publishSeq(pub, n.topic, 1, 10);
    const rs = await readN(reader, 6);
    expect(rs.map((r) => r.position)).toEqual(range(1, 6));
    await reader.ack(rs.slice(0, 3)); // 4..6 applied and checkpointed at 6, but their PUBACKs never sent
    await reader.close();

    reader = await open(n, { window: 10, seqField: 'seq' }, 6);
    const rest = await readAll(reader);
    expect(seqs(rest)).toEqual([7, 8, 9, 10]);
    expect(rest[0]!.index).toBe(1);
    await reader.ack(rest);
    await reader.close();

    reader = await open(n, { window: 10, seqField: 'seq' });
    expect(await reader.next()).toBe(null); // 4..6 were acked when skipped
    await reader.close();
  });

  it('a second reader with the same client id takes the session over; the first fails, not hangs', async () => {
    const n = names();
    const pub = await mqttPublisher();
    const first = await open(n, { idleTimeoutMs: 3000 });
    await publishSeq(pub, n.topic, 1, 1);
    const [r] = await readN(first, 1);
    const second = await open(n);
    // Mosquitto 2.0.11 closes the old connection without a DISCONNECT (reason 142), so no reason is given
    const lost = new SourceError(`MQTT topic '${n.topic}' client '${n.clientId}': connection to ${MQTT_URL} lost`);
    await expect(first.next()).rejects.toThrow(lost);
    await expect(first.ack([r!])).rejects.toThrow(lost);
    await first.close();
    expect(seqs(await readAll(second))).toEqual([1]); // the session moved with its unacked message
    await second.close();
  });

  describe('bad input', () => {
    it('an unreachable broker', async () => {
      await expect(openMqttReader({ url: 'mqtt://127.0.0.1:1', topic: 't', clientId: 'c' }, { batchSize: 4 })).rejects.toThrow(
        new SourceError(`MQTT topic 't' client 'c': cannot connect to an MQTT broker at mqtt://127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1)`),
      );
    });

    it('an invalid topic filter', async () => {
      const n = names();
      await expect(open({ ...n, topic: 'a/#/b' })).rejects.toThrow(new SourceError(`MQTT topic 'a/#/b' client '${n.clientId}': subscribing to 'a/#/b' failed (Invalid topic a/#/b)`));
    });

    it.skipIf(!hasBinary('/usr/sbin/mosquitto') || !hasBinary('/usr/bin/mosquitto_passwd'))('wrong credentials, on a broker that requires them', async () => {
      const url = await mosquittoWithPassword('trainer', 'right');
      await expect(openMqttReader({ url, topic: 't', clientId: 'c', username: 'trainer', password: 'wrong' }, { batchSize: 4 })).rejects.toThrow(
        new SourceError(`MQTT topic 't' client 'c': ${url} refused the credentials (user 'trainer'): Connection refused: Not authorized`),
      );
      await expect(openMqttReader({ url, topic: 't', clientId: 'c' }, { batchSize: 4 })).rejects.toThrow(
        new SourceError(`MQTT topic 't' client 'c': ${url} refused the credentials (no credentials): Connection refused: Not authorized`),
      );
      const reader = await openMqttReader({ url, topic: 't', clientId: 'c', username: 'trainer', password: 'right' }, { batchSize: 4 });
      await reader.close();
    });

    it('credentials on the local broker, which allows anonymous clients, are not checked', async () => {
      const n = names();
      const reader = await open(n, { username: 'anyone', password: 'anything' });
      await reader.close();
    });

    it('bad config and positions', async () => {
      await expect(openMqttReader({ url: MQTT_URL, topic: 't' } as MqttSourceConfig, { batchSize: 4 })).rejects.toThrow(
        new ValueError(`MQTT source: clientId must be a non-empty string (got undefined)`),
      );
      await expect(openMqttReader({ url: MQTT_URL, topic: 't', clientId: 'c', window: 70_000 }, { batchSize: 4 })).rejects.toThrow(
        new ValueError(`MQTT source: window must be at most 65535, MQTT's largest receiveMaximum (got 70000)`),
      );
      await expect(openMqttReader({ url: MQTT_URL, topic: 't', clientId: 'c', seqField: 'seq' }, { batchSize: 4, from: '5' })).rejects.toThrow(
        new ValueError(`MQTT topic 't' client 'c': from must be a number, a value of the seqField (got "5")`),
      );
    });
  });
});
