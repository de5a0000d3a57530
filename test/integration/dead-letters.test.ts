/**
 * Dead-letter operations against a real RabbitMQ: listing peeks without
 * losing or reordering anything, requeue moves one message (or all) back to
 * its original queue as a fresh run, discard removes one (or all), and every
 * message shows why it is there.
 */
import { randomUUID } from 'node:crypto';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  assertTopology,
  buildTopology,
  DeadLetterHeaders,
  decodeTask,
  discardAllDeadLetters,
  discardDeadLetter,
  encodeTask,
  LAST_ERROR_HEADER,
  listDeadLetters,
  newTaskMessage,
  REQUEUED_FROM_HEADER,
  requeueAllDeadLetters,
  requeueDeadLetter,
  RETRY_POLICY_HEADER,
  type Topology,
} from '@conveyor/shared';
import { connectAmqp, useTestPrefix } from '../support/services.js';

const prefix = useTestPrefix();
const topology: Topology = buildTopology({ prefix, exchange: `${prefix}.tasks`, queues: ['default'] });
let connection: ChannelModel;
let channel: ConfirmChannel;

beforeAll(async () => {
  connection = await connectAmqp();
  channel = await connection.createConfirmChannel();
  await assertTopology(channel, topology);
});

afterAll(async () => {
  await connection?.close().catch(() => undefined);
});

beforeEach(async () => {
  await channel.purgeQueue(topology.deadLetterQueue);
  await channel.purgeQueue(topology.queueName('default'));
});

/** A task message as the worker dead-letters it after its retries ran out. */
async function deadTask(n: number, extra: Record<string, unknown> = {}): Promise<string> {
  const id = randomUUID();
  const { content, options, headers } = encodeTask(
    newTaskMessage({ id, task: 'greet', kwargs: { name: `n${n}` }, origin: 'test', retries: 3 }),
  );
  Object.assign(headers, {
    [DeadLetterHeaders.reason]: 'retries exhausted',
    [DeadLetterHeaders.errorCode]: 'CNV_SIMULATED_FAILURE',
    [DeadLetterHeaders.queue]: topology.queueName('default'),
    [DeadLetterHeaders.at]: new Date().toISOString(),
    [LAST_ERROR_HEADER]: `boom ${n}`,
    ...extra,
  });
  channel.publish(topology.deadLetterExchange, '', content, options);
  await channel.waitForConfirms();
  return id;
}

async function deadGarbage(body: string, headers: Record<string, unknown> = {}): Promise<void> {
  channel.publish(topology.deadLetterExchange, '', Buffer.from(body), {
    contentType: 'application/json',
    headers: {
      [DeadLetterHeaders.reason]: 'body is not valid JSON',
      [DeadLetterHeaders.errorCode]: 'CNV_INVALID_MESSAGE',
      [DeadLetterHeaders.queue]: topology.queueName('default'),
      ...headers,
    },
  });
  await channel.waitForConfirms();
}

const count = async (queue: string) => (await channel.checkQueue(queue)).messageCount;

/** Drains `queue` (acking), returning the `id` headers in order. */
async function drainIds(queue: string): Promise<unknown[]> {
  const ids: unknown[] = [];
  for (;;) {
    const message = await channel.get(queue, { noAck: true });
    if (message === false) return ids;
    ids.push(message.properties.headers?.id);
  }
}

describe('listDeadLetters', () => {
  it('shows each message with its reason, code, last error and origin, and leaves them in place, in order', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await deadTask(i));
    await deadGarbage('not json');

    const listed = await listDeadLetters(channel, topology, 100);
    expect(listed.map((d) => d.taskId)).toEqual([...ids, null]);
    expect(listed[0]).toMatchObject({
      key: ids[0],
      taskId: ids[0],
      task: 'greet',
      reason: 'retries exhausted',
      errorCode: 'CNV_SIMULATED_FAILURE',
      lastError: 'boom 0',
      originalQueue: topology.queueName('default'),
      retries: 3,
      contentType: 'application/json',
      body: '[[],{"name":"n0"},{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]',
    });
    expect(listed[0]!.headers).toMatchObject({ task: 'greet', id: ids[0], origin: 'test' });
    expect(Date.parse(listed[0]!.deadLetteredAt!)).not.toBeNaN();
    expect(listed[5]).toMatchObject({ taskId: null, reason: 'body is not valid JSON', body: 'not json' });
    expect(listed[5]!.key).toMatch(/^sha256:[0-9a-f]{32}$/);

    // Nothing lost, nothing reordered: listing again and consuming see the same sequence.
    // Put back with a nack, which RabbitMQ's (prioritised) length query may answer before it counts them.
    await expect.poll(() => count(topology.deadLetterQueue)).toBe(6);
    expect((await listDeadLetters(channel, topology, 100)).map((d) => d.key)).toEqual(listed.map((d) => d.key));
    expect(await drainIds(topology.deadLetterQueue)).toEqual([...ids, undefined]);
  });

  it('returns at most `limit`, the oldest first, and leaves the rest in order', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await deadTask(i));
    const listed = await listDeadLetters(channel, topology, 2);
    expect(listed.map((d) => d.taskId)).toEqual(ids.slice(0, 2));
    expect(await drainIds(topology.deadLetterQueue)).toEqual(ids);
  });

  it('returns an empty list for an empty queue', async () => {
    expect(await listDeadLetters(channel, topology)).toEqual([]);
  });
});

describe('requeueDeadLetter', () => {
  it('moves one message back to its queue as a fresh run under a new id, confirmed, and keeps the others in order', async () => {
    const ids = [await deadTask(0), await deadTask(1, { [RETRY_POLICY_HEADER]: { maxRetries: 1 } }), await deadTask(2)];
    const result = await requeueDeadLetter(channel, topology, ids[1]!);
    expect(result).toMatchObject({ key: ids[1], previousTaskId: ids[1], queue: topology.queueName('default') });
    expect(result.taskId).not.toBe(ids[1]);

    expect((await listDeadLetters(channel, topology)).map((d) => d.taskId)).toEqual([ids[0], ids[2]]);
    const message = await channel.get(topology.queueName('default'), { noAck: true });
    if (message === false) throw new Error('nothing requeued');
    const task = decodeTask(message.content, message.properties);
    expect(task).toMatchObject({
      id: result.taskId,
      rootId: ids[1],
      task: 'greet',
      kwargs: { name: 'n1' },
      retries: 0,
      eta: null,
      retryPolicy: { maxRetries: 1 },
    });
    expect(message.properties.correlationId).toBe(result.taskId);
    expect(message.properties.deliveryMode).toBe(2);
    const headers = message.properties.headers ?? {};
    expect(headers[REQUEUED_FROM_HEADER]).toBe(ids[1]);
    for (const gone of [
      DeadLetterHeaders.reason,
      DeadLetterHeaders.errorCode,
      DeadLetterHeaders.queue,
      LAST_ERROR_HEADER,
    ]) {
      expect(headers).not.toHaveProperty(gone);
    }
  });

  it('fails with CNV_DEAD_LETTER_NOT_FOUND for an unknown key and changes nothing', async () => {
    const ids = [await deadTask(0), await deadTask(1)];
    await expect(requeueDeadLetter(channel, topology, randomUUID())).rejects.toMatchObject({
      code: 'CNV_DEAD_LETTER_NOT_FOUND',
    });
    expect(await drainIds(topology.deadLetterQueue)).toEqual(ids);
  });

  it('refuses a message with no original task queue (CNV_DEAD_LETTER_NOT_REQUEUEABLE) and leaves it', async () => {
    const stray = await deadTask(0, { [DeadLetterHeaders.queue]: 'elsewhere.default' });
    await expect(requeueDeadLetter(channel, topology, stray)).rejects.toMatchObject({
      code: 'CNV_DEAD_LETTER_NOT_REQUEUEABLE',
    });
    await expect.poll(() => count(topology.deadLetterQueue)).toBe(1);
    expect(await count(topology.queueName('default'))).toBe(0);
  });
});

describe('requeueAllDeadLetters', () => {
  it('moves every requeueable message back, in order, and reports the ones it left', async () => {
    const ids = [await deadTask(0), await deadTask(1), await deadTask(2)];
    const stray = await deadTask(3, { [DeadLetterHeaders.queue]: 'elsewhere.default' });
    const result = await requeueAllDeadLetters(channel, topology);
    expect(result.requeued.map((r) => r.previousTaskId)).toEqual(ids);
    expect(result.skipped).toEqual([
      { key: stray, reason: 'its original queue elsewhere.default is not a task queue' },
    ]);
    expect(await drainIds(topology.queueName('default'))).toEqual(result.requeued.map((r) => r.taskId));
    expect((await listDeadLetters(channel, topology)).map((d) => d.taskId)).toEqual([stray]);
  });
});

describe('discard', () => {
  it('discardDeadLetter removes exactly the named message (a task id or a body hash) and returns it', async () => {
    const ids = [await deadTask(0), await deadTask(1)];
    await deadGarbage('garbage');
    const [, , garbage] = await listDeadLetters(channel, topology);
    const discarded = await discardDeadLetter(channel, topology, garbage!.key);
    expect(discarded).toMatchObject({ body: 'garbage', errorCode: 'CNV_INVALID_MESSAGE' });
    expect((await discardDeadLetter(channel, topology, ids[0]!)).taskId).toBe(ids[0]);
    await expect(discardDeadLetter(channel, topology, ids[0]!)).rejects.toMatchObject({
      code: 'CNV_DEAD_LETTER_NOT_FOUND',
    });
    expect(await drainIds(topology.deadLetterQueue)).toEqual([ids[1]]);
    expect(await count(topology.queueName('default'))).toBe(0);
  });

  it('discardAllDeadLetters purges the queue and says how many', async () => {
    for (let i = 0; i < 4; i++) await deadTask(i);
    expect(await discardAllDeadLetters(channel, topology)).toBe(4);
    expect(await count(topology.deadLetterQueue)).toBe(0);
  });
});
