/**
 * Integration test of the isolation helpers themselves: cleanupPrefix must
 * delete exactly one prefix's topology and keys, and nothing of a neighbour.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Channel } from 'amqplib';
import { assertTopology, buildTopology, redisKeys } from '@conveyor/shared';
import { cleanupPrefix, connectAmqp, connectRedis, prefixKeys, uniquePrefix } from './services.js';

const queues = ['default', 'reports'];

/** True when `queue` exists (checkQueue fails the channel otherwise, so each check gets its own). */
async function queueExists(connection: Awaited<ReturnType<typeof connectAmqp>>, queue: string): Promise<boolean> {
  const channel: Channel = await connection.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.checkQueue(queue);
    await channel.close();
    return true;
  } catch {
    return false; // the broker closed the channel with 404 NOT_FOUND
  }
}

async function exchangeExists(connection: Awaited<ReturnType<typeof connectAmqp>>, exchange: string): Promise<boolean> {
  const channel: Channel = await connection.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.checkExchange(exchange);
    await channel.close();
    return true;
  } catch {
    return false;
  }
}

describe('cleanupPrefix', () => {
  const target = uniquePrefix();
  const neighbour = uniquePrefix();
  afterAll(async () => {
    await cleanupPrefix(target, queues);
    await cleanupPrefix(neighbour, queues);
  });

  it('deletes the topology and keys of its prefix and leaves another prefix alone', async () => {
    const amqp = await connectAmqp();
    const redis = await connectRedis();
    try {
      const channel = await amqp.createChannel();
      const topologies = [target, neighbour].map((prefix) =>
        buildTopology({ prefix, exchange: `${prefix}.tasks`, queues }),
      );
      for (const topology of topologies) await assertTopology(channel, topology);
      await channel.close();
      for (const prefix of [target, neighbour]) {
        const keys = redisKeys(prefix);
        await redis.hset(keys.task('t1'), { id: 't1', state: 'PENDING' });
        await redis.lpush(keys.timeIndex, 't1');
        await redis.xadd(keys.events, '*', 'id', 't1', 'state', 'PENDING');
      }
      const [targetTopology, neighbourTopology] = topologies as [
        (typeof topologies)[number],
        (typeof topologies)[number],
      ];
      expect(await queueExists(amqp, targetTopology.queueName('reports'))).toBe(true);
      expect(await prefixKeys(target, redis)).toHaveLength(3);

      await cleanupPrefix(target, queues);

      for (const q of targetTopology.queues) expect(await queueExists(amqp, q.name), q.name).toBe(false);
      for (const e of targetTopology.exchanges) expect(await exchangeExists(amqp, e.name), e.name).toBe(false);
      expect(await prefixKeys(target, redis)).toEqual([]);

      for (const q of neighbourTopology.queues) expect(await queueExists(amqp, q.name), q.name).toBe(true);
      expect((await prefixKeys(neighbour, redis)).sort()).toEqual(
        [redisKeys(neighbour).events, redisKeys(neighbour).task('t1'), redisKeys(neighbour).timeIndex].sort(),
      );

      // Idempotent: a second cleanup of an already-clean prefix succeeds.
      await cleanupPrefix(target, queues);
    } finally {
      await redis.quit();
      await amqp.close();
    }
  });

  it('deletes keys in batches when a prefix has many', async () => {
    const prefix = uniquePrefix();
    const redis = await connectRedis();
    try {
      const keys = redisKeys(prefix);
      const pipeline = redis.pipeline();
      for (let i = 0; i < 1200; i++) pipeline.set(keys.task(`t${i}`), '1');
      await pipeline.exec();
      expect(await prefixKeys(prefix, redis)).toHaveLength(1200);
      await cleanupPrefix(prefix, queues);
      expect(await prefixKeys(prefix, redis)).toEqual([]);
    } finally {
      await redis.quit();
    }
  });

  it('refuses a namespace that is not a test prefix', async () => {
    await expect(cleanupPrefix('conveyor')).rejects.toThrow(/only deletes test namespaces/);
  });
});
