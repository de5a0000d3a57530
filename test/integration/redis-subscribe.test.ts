/**
 * Subscribing against a real Redis in the middle of a connection's handshake,
 * as a result waiter does when a process waits right after connecting. The
 * subscription must survive the handshake and deliver messages: ioredis 5
 * lost it (its ready check ran on the subscribed connection, failed, and the
 * reconnect dropped the subscription), which is why Conveyor needs ioredis 6.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRedis } from '@conveyor/shared';
import { connectRedis, serviceUrls } from '../support/services.js';

let publisher: Redis;

beforeAll(async () => {
  publisher = await connectRedis();
});
afterAll(async () => {
  await publisher.quit();
});

it('subscribes a connection that is still in its handshake, and hears what is published', async () => {
  const channel = `redis-subscribe-test:${randomUUID()}`;
  const subscriber = createRedis(serviceUrls().redisUrl, { failFast: false, name: 'redis-subscribe-test' });
  try {
    const statusAtSubscribe = await new Promise<string>((resolve, reject) =>
      subscriber.once('connect', () => {
        const status = subscriber.status;
        subscriber.subscribe(channel).then(() => resolve(status), reject);
      }),
    );
    expect(statusAtSubscribe).toBe('connect');
    // A connection that lost its subscription in the handshake is ready again by now, unsubscribed.
    if (subscriber.status !== 'ready') await once(subscriber, 'ready', { signal: AbortSignal.timeout(5000) });
    const heard = new Promise<string>((resolve) => subscriber.once('message', (_channel, message) => resolve(message)));
    expect((await publisher.pubsub('NUMSUB', channel))[1]).toBe(1);
    await publisher.publish(channel, 'hello');
    await expect(heard).resolves.toBe('hello');
  } finally {
    subscriber.disconnect();
  }
});
