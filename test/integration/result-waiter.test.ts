/**
 * Waiting for results against a real Redis: a waiter wakes on the terminal
 * transition (whose announcement carries the record unless it is large),
 * returns at once for a finished or unknown task, and one subscription
 * serves consecutive and concurrent waits, even one that first subscribes
 * while its connection is still in its handshake.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRedis, ResultWaiter, TaskStore } from '@conveyor/shared';
import { connectRedis, serviceUrls, useTestPrefix } from '../support/services.js';

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

const finish = (id: string, result: unknown = id) =>
  store.transition(id, 'SUCCESS', 1, { result: JSON.stringify(result), finished: Date.now() });

const listeners = async () => (await redis.pubsub('NUMSUB', store.keys.finished))[1];

it('wakes on the terminal transition, with the finished record', async () => {
  const id = await pending();
  const waiting = waiter.wait(id, 10_000);
  setTimeout(() => void finish(id), 100);
  const started = Date.now();
  await expect(waiting).resolves.toMatchObject({ id, state: 'SUCCESS', result: id });
  expect(Date.now() - started).toBeLessThan(5000);
});

/** The announcements of `id` on the finished channel while `during` runs. */
async function announcementsOf(id: string, during: () => Promise<unknown>): Promise<string[]> {
  const subscriber = await connectRedis();
  const messages: string[] = [];
  subscriber.on('message', (_channel: string, message: string) => {
    if (message.startsWith(`${id} `)) messages.push(message);
  });
  await subscriber.subscribe(store.keys.finished);
  try {
    await during();
    await subscriber.ping(); // every message published before the ping has arrived
    return messages;
  } finally {
    await subscriber.quit();
  }
}

it('is woken by an announcement that carries the finished record, so it need not read it', async () => {
  const id = await pending();
  const announced = await announcementsOf(id, async () => {
    const waiting = waiter.wait(id, 10_000);
    await finish(id);
    await expect(waiting).resolves.toEqual(await store.get(id));
  });
  expect(announced).toHaveLength(1);
  const head = `${id} SUCCESS `;
  expect(announced[0]!.startsWith(head)).toBe(true);
  // The record as the hash's fields and values, flat.
  expect(JSON.parse(announced[0]!.slice(head.length))).toEqual(
    expect.arrayContaining(['state', 'SUCCESS', 'result', JSON.stringify(id)]),
  );
});

it('reads a record too large to announce', async () => {
  const id = await pending();
  const large = 'x'.repeat(20_000);
  const announced = await announcementsOf(id, async () => {
    const waiting = waiter.wait(id, 10_000);
    await finish(id, large);
    await expect(waiting).resolves.toMatchObject({ id, state: 'SUCCESS', result: large });
  });
  expect(announced).toEqual([`${id} SUCCESS`]);
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
  await Promise.all(ids.map((id) => finish(id)));
  const records = await Promise.all(waits);
  expect(records.map((r) => r?.result)).toEqual(ids);
  expect(await listeners()).toBe(1);
});

it('hears announcements when its first wait subscribes during the connection handshake', async () => {
  // A new process waits at once (submitAndWait right after connecting): the
  // subscribe then meets a connection whose handshake (client name, ready
  // check) is still running. Each round is a fresh waiter started on the
  // connection's 'connect' event, so its subscribe lands in that window.
  for (let round = 0; round < 10; round++) {
    const id = await pending();
    const subscriber = createRedis(serviceUrls().redisUrl, { failFast: false, name: 'result-waiter-test' });
    const fresh = new ResultWaiter(store, subscriber);
    try {
      const { waiting } = await new Promise<{ waiting: ReturnType<ResultWaiter['wait']> }>((resolve) =>
        subscriber.once('connect', () => resolve({ waiting: fresh.wait(id, 2000) })),
      );
      // Finish once the connection is ready and subscribed (or after 500 ms when it never is).
      const subscribed = () => subscriber.status === 'ready' && subscriber.mode === 'subscriber';
      for (let polls = 0; polls < 50 && !subscribed(); polls++) await sleep(10);
      const finishedAt = Date.now();
      await finish(id);
      await expect(waiting).resolves.toMatchObject({ id, state: 'SUCCESS' });
      // Woken by the announcement, not by the wait running out.
      expect(Date.now() - finishedAt).toBeLessThan(1000);
    } finally {
      await fresh.close();
    }
  }
});
