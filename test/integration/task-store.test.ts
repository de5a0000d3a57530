/**
 * The transition script against a real Redis: terminal states never change,
 * late or duplicate events never move a task backwards, indexes follow the
 * state in the same step, finished tasks expire.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isTerminal,
  TaskStates,
  TaskStore,
  TRANSITION_COMMAND,
  writeTaskProgress,
  type TaskState,
} from '@conveyor/shared';
import { connectRedis, useTestPrefix } from '../support/services.js';

const prefix = useTestPrefix();
let redis: Redis;
let store: TaskStore;

beforeAll(async () => {
  redis = await connectRedis();
  store = new TaskStore(redis, { prefix, resultTtlSeconds: 60 });
});
afterAll(async () => {
  await redis.quit();
});

const identity = () => ({ type: 'noop', queue: 'default', kwargs: '{}', args: '[]', created: Date.now() });

/** The state indexes holding `id`: sorted sets for the states a task leaves, lists for terminal ones. */
async function indexesOf(id: string): Promise<TaskState[]> {
  const found: TaskState[] = [];
  for (const state of TaskStates) {
    const key = store.keys.stateIndex(state);
    const member = isTerminal(state) ? await redis.lpos(key, id) : await redis.zscore(key, id);
    if (member !== null) found.push(state);
  }
  return found;
}

const inTimeIndex = async (id: string) => (await redis.lpos(store.keys.timeIndex, id)) !== null;

describe('TaskStore.transition', () => {
  it('walks PENDING → STARTED → SUCCESS, moving the task between indexes', async () => {
    const id = randomUUID();
    expect(await store.transition(id, 'PENDING', 0, {}, identity())).toEqual({ applied: true, state: 'PENDING' });
    expect(await indexesOf(id)).toEqual(['PENDING']);
    expect(await inTimeIndex(id)).toBe(true);

    await store.transition(id, 'STARTED', 1, { started: Date.now(), worker: 'w1' });
    expect(await indexesOf(id)).toEqual(['STARTED']);

    await store.transition(id, 'SUCCESS', 1, { result: '42', finished: Date.now(), runtime: 0.1 });
    expect(await indexesOf(id)).toEqual(['SUCCESS']);
    const record = await store.get(id);
    expect(record).toMatchObject({ state: 'SUCCESS', result: 42, attempts: 1, worker: 'w1', type: 'noop' });
    const ttl = await redis.ttl(store.keys.task(id));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it('never changes a terminal state, whatever comes later', async () => {
    const id = randomUUID();
    await store.transition(id, 'PENDING', 0, {}, identity());
    await store.transition(id, 'FAILURE', 1, { error: 'boom' });
    for (const [state, attempt] of [
      ['SUCCESS', 1],
      ['STARTED', 2],
      ['RETRY', 5],
      ['REVOKED', 9],
    ] as const) {
      expect(await store.transition(id, state, attempt, {})).toEqual({
        applied: false,
        reason: 'terminal',
        state: 'FAILURE',
      });
    }
    expect((await store.get(id))?.error).toBe('boom');
  });

  it('refuses late and duplicate events but lets a redelivery start again', async () => {
    const id = randomUUID();
    await store.transition(id, 'PENDING', 0, {}, identity());
    await store.transition(id, 'STARTED', 1, {});
    // A redelivery after a crash starts the same attempt again.
    expect(await store.transition(id, 'STARTED', 1, { worker: 'w2' })).toMatchObject({ applied: true });
    await store.transition(id, 'RETRY', 1, { error: 'first' });
    // The duplicate of attempt 1 is behind RETRY of attempt 1.
    expect(await store.transition(id, 'STARTED', 1, {})).toEqual({ applied: false, reason: 'behind', state: 'RETRY' });
    expect(await store.transition(id, 'RETRY', 1, {})).toEqual({ applied: false, reason: 'behind', state: 'RETRY' });
    // A PENDING for an existing task (id reuse) is refused.
    expect(await store.transition(id, 'PENDING', 0, {}, identity())).toMatchObject({
      applied: false,
      reason: 'behind',
    });
    // Attempt 2 moves on.
    expect(await store.transition(id, 'STARTED', 2, {})).toEqual({ applied: true, state: 'STARTED' });
    expect((await store.get(id))?.attempts).toBe(2);
    expect(await indexesOf(id)).toEqual(['STARTED']);
  });

  it('sends what callers request in reaction to an answer with the next call, beside what arrived meanwhile', async () => {
    const client = await connectRedis();
    const batched = new TaskStore(client, { prefix, resultTtlSeconds: 60 });
    // Observes the real script calls (which ids each carries); Redis still runs every one.
    const scripted = client as unknown as { [TRANSITION_COMMAND]: (...args: unknown[]) => Promise<unknown> };
    const send = scripted[TRANSITION_COMMAND].bind(client);
    const [a, b] = [randomUUID(), randomUUID()];
    const calls: string[][] = [];
    scripted[TRANSITION_COMMAND] = (...args: unknown[]) => {
      const tuples = JSON.parse(args[args.length - 2] as string) as [string, string][];
      calls.push(tuples.map(([id, state]) => `${id === a ? 'a' : 'b'} ${state}`));
      return send(...args);
    };
    try {
      // a's start goes out alone; its outcome is requested as soon as the start is answered.
      const aDone = batched
        .transition(a, 'STARTED', 1, {}, identity())
        .then(() => batched.transition(a, 'SUCCESS', 1, { result: '1' }));
      await new Promise((resolve) => setImmediate(resolve));
      expect(calls).toEqual([['a STARTED']]);
      // Requested while that call is out.
      const bStarted = batched.transition(b, 'STARTED', 1, {}, identity());
      await Promise.all([aDone, bStarted]);
      expect(calls).toEqual([['a STARTED'], ['b STARTED', 'a SUCCESS']]);
      expect((await batched.get(a))?.state).toBe('SUCCESS');
    } finally {
      await client.quit();
    }
  });

  it('applies many transitions of the same tasks in one call, leaving each task in its last index only', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    // Issued in one event-loop turn, so the store sends them as one script call, in order.
    const outcomes = await Promise.all([
      store.transition(a, 'PENDING', 0, {}, identity()),
      store.transition(a, 'STARTED', 1, { worker: 'w1' }),
      store.transition(a, 'SUCCESS', 1, { result: '1' }),
      store.transition(b, 'PENDING', 0, {}, identity()),
      store.transition(b, 'STARTED', 1, { worker: 'w1' }),
      store.transition(b, 'STARTED', 1, { worker: 'w2' }),
      store.transition(b, 'PENDING', 0, {}, identity()),
    ]);
    expect(outcomes.map((o) => o.applied)).toEqual([true, true, true, true, true, true, false]);
    expect(await indexesOf(a)).toEqual(['SUCCESS']);
    expect(await indexesOf(b)).toEqual(['STARTED']);
    // One time index entry each (the refused PENDING adds none), newest first.
    expect(await redis.lrange(store.keys.timeIndex, 0, 1)).toEqual([b, a]);
    expect((await store.get(b))?.worker).toBe('w2');
  });

  it("starts every run with no progress: a retry or a redelivery does not show the previous run's", async () => {
    const id = randomUUID();
    await store.transition(id, 'PENDING', 0, {}, identity());
    await store.transition(id, 'STARTED', 1, {});
    expect(await writeTaskProgress(redis, store.keys, id, 40, 'first run')).toBe('written');
    // A redelivery of the same attempt after a crash.
    await store.transition(id, 'STARTED', 1, { worker: 'w2' });
    expect(await store.get(id)).toMatchObject({ progress: null, progressMessage: null });
    expect(await writeTaskProgress(redis, store.keys, id, 70, 'second run')).toBe('written');
    await store.transition(id, 'RETRY', 1, { error: 'boom' });
    // RETRY keeps the progress the failed run reached; the next attempt starts from nothing.
    expect(await store.get(id)).toMatchObject({ progress: 70, progressMessage: 'second run' });
    await store.transition(id, 'STARTED', 2, {});
    expect(await store.get(id)).toMatchObject({ state: 'STARTED', progress: null, progressMessage: null });
  });

  it('asks for identity fields when it has never seen the task, and keeps the first ones', async () => {
    const id = randomUUID();
    expect(await store.transition(id, 'STARTED', 1, {})).toEqual({ applied: false, reason: 'unknown', state: null });
    expect(await redis.exists(store.keys.task(id))).toBe(0);
    await store.transition(id, 'STARTED', 1, {}, { ...identity(), type: 'greet' });
    await store.transition(id, 'SUCCESS', 1, {}, { ...identity(), type: 'overwritten?' });
    expect((await store.get(id))?.type).toBe('greet');
  });

  it('counts terminal states per minute and appends every transition to the event stream', async () => {
    const id = randomUUID();
    const now = Date.now();
    await store.transition(id, 'PENDING', 0, {}, identity(), now);
    await store.transition(id, 'SUCCESS', 1, {}, undefined, now);
    const minute = Math.floor(now / 60_000);
    expect(Number(await redis.hget(store.keys.minuteStats(minute), 'SUCCESS'))).toBeGreaterThanOrEqual(1);
    const entries = await redis.xrange(store.keys.events, '-', '+');
    const lines = entries.flatMap(([, fields]) => fields[1]!.split('\n'));
    const mine = lines.filter((line) => line.startsWith(id)).map((line) => line.split(' ')[1]);
    expect(mine).toEqual(['PENDING', 'SUCCESS']);
  });

  it('leaves out JSON fields at their default, and reads them back the same', async () => {
    const id = randomUUID();
    await store.transition(id, 'PENDING', 0, {}, identity());
    await store.transition(id, 'SUCCESS', 1, { result: 'null', finished: Date.now() });
    const hash = await redis.hgetall(store.keys.task(id));
    for (const field of ['args', 'kwargs', 'result']) expect(hash).not.toHaveProperty(field);
    expect(await store.get(id)).toMatchObject({ state: 'SUCCESS', args: [], kwargs: {}, result: null });
  });

  it('drops list index entries from the tail once their record is gone or older than the TTL', async () => {
    const trimmed = new TaskStore(redis, { prefix: `${prefix}:trim`, resultTtlSeconds: 60 });
    const { keys } = trimmed;
    const [stuck, gone, kept, last] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const finish = async (id: string) => {
      await trimmed.transition(id, 'PENDING', 0, {}, identity());
      await trimmed.transition(id, 'SUCCESS', 1, { finished: Date.now() });
    };
    // Created long before the TTL and never picked up: it leaves the time index, not its state index.
    const longAgo = Date.now() - 120_000;
    await trimmed.transition(stuck, 'PENDING', 0, {}, { ...identity(), created: longAgo }, longAgo);
    await finish(gone);
    await finish(kept);
    // As if its result TTL had run out: the record is gone, its entries are next to go.
    await redis.del(keys.task(gone));
    await finish(last);

    expect(await redis.lrange(keys.stateIndex('SUCCESS'), 0, -1)).toEqual([last, kept]);
    expect(await redis.lrange(keys.timeIndex, 0, -1)).toEqual([last, kept]);
    expect(await redis.zscore(keys.stateIndex('PENDING'), stuck)).not.toBeNull();
  });

  it('discards a PENDING record, and only a PENDING one', async () => {
    const pending = randomUUID();
    await store.transition(pending, 'PENDING', 0, {}, identity());
    expect(await store.discardPending(pending)).toBe(true);
    expect(await redis.exists(store.keys.task(pending))).toBe(0);
    expect(await indexesOf(pending)).toEqual([]);
    expect(await inTimeIndex(pending)).toBe(false);

    const started = randomUUID();
    await store.transition(started, 'PENDING', 0, {}, identity());
    await store.transition(started, 'STARTED', 1, {});
    expect(await store.discardPending(started)).toBe(false);
    expect(await redis.exists(store.keys.task(started))).toBe(1);
  });
});
