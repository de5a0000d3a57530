/**
 * Conveyor as the benchmark drives it: real worker and api processes
 * (`node services/<role>/dist/server.js`), the producer API in the benchmark
 * process, and cleanup of exactly what a run created (its topology and its
 * `prefix:*` keys).
 */
import { join } from 'node:path';
import getPort from 'get-port';
import {
  buildTopology,
  createLogger,
  deleteTopology,
  loadConfig,
  Producer,
  redisKeys,
  type Config,
} from '@conveyor/shared';
import type { Redis } from 'ioredis';
import type { Settings } from '../settings.js';
import type { AmqpHandle } from '../util/amqp.js';
import { spawnChild, waitHttpReady, type Child } from '../util/proc.js';
import { deleteKeys } from '../util/redis.js';
import { hex, waitForCount } from '../util/time.js';

export interface ConveyorRole {
  child: Child;
  url: string;
}

/** Environment shared by every Conveyor process of one run. */
export function conveyorEnv(settings: Settings, prefix: string, extra: Record<string, string> = {}) {
  return {
    AMQP_URL: settings.amqpUrl,
    REDIS_URL: settings.redisUrl,
    CONVEYOR_PREFIX: prefix,
    // Per-task logs would measure pino, not the pipeline; warnings still show.
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    SHUTDOWN_GRACE_MS: '5000',
    ...extra,
  };
}

/**
 * Worker environment that leaves the old generation's growth to V8's own
 * heuristic instead of the worker's default bound
 * (WORKER_HEAP_GROWING_PERCENT=30): the benchmark runs the worker both ways to
 * show what the flatter heap costs in CPU and saves in RSS.
 */
export const V8_HEAP_GROWTH_ENV: Readonly<Record<string, string>> = { WORKER_HEAP_GROWING_PERCENT: '0' };
/** The variant's name in result rows: its environment as NAME=value. */
export const V8_HEAP_GROWTH_LABEL = Object.entries(V8_HEAP_GROWTH_ENV)
  .map(([name, value]) => `${name}=${value}`)
  .join(' ');

export function newPrefix(): string {
  return `bench-${hex()}`;
}

/** Starts a role and waits until its GET /ready answers 200. */
export async function startRole(
  settings: Settings,
  role: 'api' | 'worker',
  prefix: string,
  extra: Record<string, string> = {},
): Promise<ConveyorRole> {
  const port = await getPort({ host: '127.0.0.1' });
  const entry = join(settings.repoRoot, 'services', role, 'dist', 'server.js');
  const child = spawnChild(`conveyor-${role}`, process.execPath, [entry], {
    cwd: settings.repoRoot,
    env: conveyorEnv(settings, prefix, { ...extra, PORT: String(port) }),
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHttpReady(child, `${url}/ready`, 30_000);
  } catch (error) {
    await child.stop(2000);
    throw error;
  }
  return { child, url };
}

export function startWorker(
  settings: Settings,
  prefix: string,
  concurrency: number,
  extra: Readonly<Record<string, string>> = {},
) {
  return startRole(settings, 'worker', prefix, { WORKER_CONCURRENCY: String(concurrency), ...extra });
}

export function producerConfig(settings: Settings, prefix: string): Config {
  return loadConfig('api', conveyorEnv(settings, prefix));
}

export async function connectProducer(settings: Settings, prefix: string): Promise<Producer> {
  const config = producerConfig(settings, prefix);
  return Producer.connect(config, createLogger(config, { component: 'bench-producer' }));
}

/**
 * Submits `count` noop tasks, at most `inFlight` awaiting their confirm at
 * once (the producer pipelines publishes on one confirm channel).
 */
export async function submitNoops(producer: Producer, count: number, inFlight = 500): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      next++;
      await producer.submit({ type: 'noop', kwargs: {} });
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
}

/** Number of tasks in SUCCESS (the state index the transition script maintains). */
export function successCount(redis: Redis, prefix: string): Promise<number> {
  return redis.llen(redisKeys(prefix).stateIndex('SUCCESS'));
}

/** Finish times (ms) of the first and last tasks to succeed: the tail and head of the SUCCESS list. */
export async function successWindow(redis: Redis, prefix: string): Promise<{ first: number; last: number }> {
  const keys = redisKeys(prefix);
  const finishedAt = async (index: number) => {
    const id = await redis.lindex(keys.stateIndex('SUCCESS'), index);
    return Number(id === null ? NaN : await redis.hget(keys.task(id), 'finished'));
  };
  return { first: await finishedAt(-1), last: await finishedAt(0) };
}

export async function waitForSuccess(
  redis: Redis,
  prefix: string,
  count: number,
  timeoutMs: number,
  onCount?: (count: number) => void,
): Promise<void> {
  const what = `${count} SUCCESS tasks under ${prefix}`;
  await waitForCount(what, () => successCount(redis, prefix), count, timeoutMs, onCount);
}

/** Deletes the run's topology (queues first, then exchanges) and every `prefix:*` key. */
export async function cleanupConveyor(amqp: AmqpHandle, redis: Redis, prefix: string): Promise<void> {
  const channel = await (await amqp.get()).createChannel();
  channel.on('error', () => undefined);
  try {
    await deleteTopology(channel, buildTopology({ prefix, exchange: `${prefix}.tasks`, queues: ['default'] }));
  } finally {
    await channel.close().catch(() => undefined);
  }
  await deleteKeys(redis, redisKeys(prefix).all);
}
