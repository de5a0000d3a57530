/**
 * BullMQ as the benchmark drives it: jobs added from the benchmark process
 * (`Queue.addBulk` in chunks, or `Queue.add`), a `Worker` in a process of
 * its own (bullmq-worker.ts), default job options (completed jobs are kept,
 * as Conveyor keeps results). Each run uses a fresh queue name and removes
 * it with `queue.obliterate({ force: true })`.
 */
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Settings } from '../settings.js';
import { spawnChild, type Child } from '../util/proc.js';
import { redisOptionsFromUrl } from '../util/redis-options.js';
import { hex, waitForCount } from '../util/time.js';

export function newQueueName(): string {
  return `bench-${hex()}`;
}

export function connection(settings: Settings) {
  return { ...redisOptionsFromUrl(settings.redisUrl), maxRetriesPerRequest: null };
}

export function openQueue(settings: Settings, name: string): Queue {
  return new Queue(name, { connection: connection(settings) });
}

export function openQueueEvents(settings: Settings, name: string): QueueEvents {
  return new QueueEvents(name, { connection: connection(settings) });
}

export async function startBullWorker(settings: Settings, name: string, concurrency: number): Promise<Child> {
  const child = spawnChild(
    'bullmq-worker',
    process.execPath,
    [join(settings.benchRoot, 'dist/peers/bullmq-worker.js')],
    {
      cwd: settings.benchRoot,
      env: { REDIS_URL: settings.redisUrl, BENCH_QUEUE: name, BENCH_CONCURRENCY: String(concurrency) },
    },
  );
  try {
    await child.waitForLine(/^BENCH-READY$/, 30_000);
  } catch (error) {
    await child.stop(2000);
    throw error;
  }
  return child;
}

/** Adds `count` noop jobs with addBulk, `chunk` per call. */
export async function addNoops(queue: Queue, count: number, chunk = 1000): Promise<void> {
  for (let done = 0; done < count; done += chunk) {
    const n = Math.min(chunk, count - done);
    await queue.addBulk(Array.from({ length: n }, () => ({ name: 'noop', data: {} })));
  }
}

/** The completed set of queue `name` (BullMQ's default `bull` key prefix); scores are finishedOn (ms). */
export function completedKey(name: string): string {
  return `bull:${name}:completed`;
}

export async function waitForCompleted(
  redis: Redis,
  name: string,
  count: number,
  timeoutMs: number,
  onCount?: (count: number) => void,
): Promise<void> {
  const what = `${count} completed jobs in ${name}`;
  await waitForCount(what, () => redis.zcard(completedKey(name)), count, timeoutMs, onCount);
}

export async function completedWindow(redis: Redis, name: string): Promise<{ first: number; last: number }> {
  const first = await redis.zrange(completedKey(name), 0, 0, 'WITHSCORES');
  const last = await redis.zrange(completedKey(name), -1, -1, 'WITHSCORES');
  return { first: Number(first[1]), last: Number(last[1]) };
}

/** Removes every key of the queue, then closes it. */
export async function cleanupQueue(queue: Queue): Promise<void> {
  await queue.obliterate({ force: true });
  await queue.close();
}
