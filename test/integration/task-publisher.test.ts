/**
 * Closing the publisher under outstanding confirms: close() waits for the
 * confirms of what was already sent, so a shutdown never fails a publish the
 * broker may hold (the api would answer 503 for a queued task and drop its
 * record); what comes after close() is refused without being sent.
 */
import { randomUUID } from 'node:crypto';
import type { ChannelModel } from 'amqplib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  buildTopology,
  createLogger,
  loadConfig,
  newTaskMessage,
  TaskPublisher,
  type Topology,
} from '@conveyor/shared';
import { connectAmqp, testEnv, useTestPrefix } from '../support/services.js';

const prefix = useTestPrefix();
const topology: Topology = buildTopology({ prefix, exchange: `${prefix}.tasks`, queues: ['default'] });
const PUBLISHES = 500;
let amqp: ChannelModel;

beforeAll(async () => {
  amqp = await connectAmqp();
});
afterAll(async () => {
  await amqp.close();
});

const message = () => newTaskMessage({ id: randomUUID(), task: 'noop', kwargs: {}, origin: 'publisher-test' });

it('confirms everything sent before close(), and refuses what comes after', async () => {
  const logger = createLogger(loadConfig('api', testEnv(prefix, { LOG_LEVEL: 'silent' })));
  const publisher = new TaskPublisher(topology, logger);
  await publisher.attach(amqp);
  const sent = Array.from({ length: PUBLISHES }, () => publisher.publish(message(), 'default'));
  const closing = publisher.close();
  const late = publisher.publish(message(), 'default').catch((error: unknown) => error);

  const outcomes = await Promise.allSettled(sent);
  expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
  expect(await late).toMatchObject({ code: 'CNV_BROKER_UNAVAILABLE' });
  await closing;

  const channel = await amqp.createChannel();
  try {
    expect((await channel.checkQueue(topology.queueName('default'))).messageCount).toBe(PUBLISHES);
  } finally {
    await channel.close();
  }
});
