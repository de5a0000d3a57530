/**
 * Per-test isolation on the shared RabbitMQ and Redis. Every test (or test
 * file) works under its own prefix, `test-<8 hex>`, which namespaces both the
 * AMQP names (`<prefix>.tasks`, `<prefix>.<queue>`, …) and the Redis keys
 * (`<prefix>:…`), and afterwards deletes exactly what that prefix owns.
 * Nothing here ever flushes a database or purges someone else's queue: the
 * servers may be a developer's long-running local ones, shared by parallel runs.
 */
import { randomBytes } from 'node:crypto';
import amqp, { type ChannelModel } from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, inject } from 'vitest';
import { buildTopology, deleteTopology, redisKeys } from '@conveyor/shared';
import './provided-context.js';
import { stopAllRoles } from './processes.js';

/** The queues a role declares when TASK_QUEUES is not set. */
const DEFAULT_QUEUES: readonly string[] = ['default'];
/** Keys per SCAN step and per DEL: large enough to be quick, small enough not to block Redis. */
const SCAN_BATCH = 500;

/** A fresh namespace, `test-<8 random hex>`, valid as CONVEYOR_PREFIX. */
export function uniquePrefix(): string {
  return `test-${randomBytes(4).toString('hex')}`;
}

/**
 * A prefix for the current test file, cleaned up after all its tests: the
 * roles it started are stopped first (so none re-declares what is being
 * deleted), then the prefix's topology and keys are removed. Call it at the
 * top level of a file or in a `describe` body.
 */
export function useTestPrefix(queues: readonly string[] = DEFAULT_QUEUES): string {
  const prefix = uniquePrefix();
  afterAll(async () => {
    await stopAllRoles();
    await cleanupPrefix(prefix, queues);
  });
  return prefix;
}

/** The servers the integration global setup chose for this run. */
export function serviceUrls(): { amqpUrl: string; redisUrl: string } {
  return { amqpUrl: inject('amqpUrl'), redisUrl: inject('redisUrl') };
}

/**
 * The environment of a role under test: this run's servers, the prefix,
 * quiet logs, loopback only. `extra` overrides or adds variables; an
 * `undefined` value removes one.
 */
export function testEnv(
  prefix: string,
  extra: Readonly<Record<string, string | number | boolean | undefined>> = {},
): Record<string, string> {
  const { amqpUrl, redisUrl } = serviceUrls();
  const env: Record<string, string> = {
    AMQP_URL: amqpUrl,
    REDIS_URL: redisUrl,
    CONVEYOR_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
  };
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = String(value);
  }
  return env;
}

/** An AMQP connection to this run's RabbitMQ; the caller closes it. */
export async function connectAmqp(): Promise<ChannelModel> {
  const connection = await amqp.connect(serviceUrls().amqpUrl);
  // Without a listener an 'error' event would crash the test worker.
  connection.on('error', () => undefined);
  return connection;
}

/** A Redis client on this run's Redis; the caller calls `quit()`. */
export async function connectRedis(): Promise<Redis> {
  const redis = new Redis(serviceUrls().redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined); // commands report failures to their callers
  await redis.connect();
  return redis;
}

/** Every Redis key of `prefix` (SCAN, never KEYS, so a busy shared Redis is not blocked). */
export async function prefixKeys(prefix: string, redis?: Redis): Promise<string[]> {
  const keys: string[] = [];
  await scanPrefix(prefix, redis, (batch) => {
    keys.push(...batch);
    return Promise.resolve();
  });
  return keys;
}

/**
 * Deletes exactly what `prefix` owns: the AMQP topology declared for
 * `queues` under the exchange `<prefix>.tasks` (task queues, dead-letter
 * exchange and queue, delay exchange and tiers) and every Redis key matching
 * `<prefix>:*`. Refuses a prefix that is not a test prefix, so a slip can
 * never wipe a real installation's namespace.
 */
export async function cleanupPrefix(prefix: string, queues: readonly string[] = DEFAULT_QUEUES): Promise<void> {
  if (!prefix.startsWith('test-')) {
    throw new Error(`cleanupPrefix only deletes test namespaces ("test-…"), not "${prefix}"`);
  }
  await deletePrefixTopology(prefix, queues);
  await scanPrefix(prefix, undefined, async (batch, redis) => {
    await redis.del(...batch);
  });
}

async function deletePrefixTopology(prefix: string, queues: readonly string[]): Promise<void> {
  const topology = buildTopology({ prefix, exchange: `${prefix}.tasks`, queues });
  const connection = await connectAmqp();
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined); // the failing call rejects with the same error
    // RabbitMQ answers delete-ok for queues and exchanges that do not exist, so
    // cleaning up after a test that never declared everything is fine.
    await deleteTopology(channel, topology);
    await channel.close();
  } finally {
    await connection.close().catch(() => undefined);
  }
}

async function scanPrefix(
  prefix: string,
  client: Redis | undefined,
  onBatch: (keys: string[], redis: Redis) => Promise<void>,
): Promise<void> {
  const redis = client ?? (await connectRedis());
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', redisKeys(prefix).all, 'COUNT', SCAN_BATCH);
      cursor = next;
      if (keys.length > 0) await onBatch(keys, redis);
    } while (cursor !== '0');
  } finally {
    if (!client) await redis.quit().catch(() => redis.disconnect());
  }
}
