/**
 * Waiting for results against a real Redis: a waiter wakes on the terminal
 * transition, returns at once for a finished or unknown task, and one
 * subscription serves consecutive and concurrent waits.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ResultWaiter, TaskStore } from '@conveyor/shared';
import { connectRedis, useTestPrefix } from '../support/services.js';

const prefix = useTestPrefix();
let redis: Redis;
let store: TaskStore;
let waiter: ResultWaiter;

beforeAll(async () => {
  redis = await connectRedis();
  store = new TaskStore(await connectRedis(), { prefix, resultTtlSeconds: 60 });
  waiter = new ResultWaiter(store, await connectRedis());
});
afterAll(async () => {
  await waiter.close();
  await store.close();
  await redis.quit();
});

const identity = () => ({ type: 'noop', queue: 'default', kwargs: '{}', args: '[]', created: Date.now() });

async function pending(): Promise<string> {
  const id = randomUUID();
  await store.transition(id, 'PENDING', 0, {}, identity());
  return id;
}

const finish = (id: string) => store.transition(id, 'SUCCESS', 1, { result: JSON.stringify(id), finished: Date.now() });

const listeners = async () => (await redis.pubsub('NUMSUB', store.keys.finished))[1];

it('wakes on the terminal transition, with the finished record', async () => {
  const id = await pending();
  const waiting = waiter.wait(id, 10_000);
  setTimeout(() => void finish(id), 100);
  const started = Date.now();
  await expect(waiting).resolves.toMatchObject({ id, state: 'SUCCESS', result: id });
  expect(Date.now() - started).toBeLessThan(5000);
});

it('answers at once for a finished task, and null for an unknown one', async () => {
  const id = await pending();
  await finish(id);
  await expect(waiter.wait(id, 10_000)).resolves.toMatchObject({ state: 'SUCCESS' });
  await expect(waiter.wait(randomUUID(), 10_000)).resolves.toBeNull();
});

it('returns the record as it is when the wait runs out', async () => {
  const id = await pending();
  await expect(waiter.wait(id, 200)).resolves.toMatchObject({ id, state: 'PENDING' });
});

it('keeps one subscription across consecutive and concurrent waits', async () => {
  for (let i = 0; i < 3; i++) {
    const id = await pending();
    const waiting = waiter.wait(id, 10_000);
    setTimeout(() => void finish(id), 20);
    await expect(waiting).resolves.toMatchObject({ state: 'SUCCESS' });
    // Between waits the subscription lingers instead of being dropped and made again.
    expect(await listeners()).toBe(1);
  }
  const ids = await Promise.all(Array.from({ length: 50 }, pending));
  const waits = ids.map((id) => waiter.wait(id, 10_000));
  await Promise.all(ids.map(finish));
  const records = await Promise.all(waits);
  expect(records.map((r) => r?.result)).toEqual(ids);
  expect(await listeners()).toBe(1);
});
