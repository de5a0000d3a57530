/**
 * POST /api/tasks/:id/revoke against the real broker and Redis (no worker):
 * REVOKED is recorded for a queued or running task, a repeated revoke is a
 * no-op, a finished task answers 409 with its state, `terminate` reaches the
 * workers' control channel, and a revoke that races a new attempt retries.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { REDIS_URL, useApiApp } from './helpers.js';

const api = useApiApp();

async function submitted(): Promise<string> {
  const response = await api.app.inject({ method: 'POST', url: '/api/tasks', payload: { type: 'noop' } });
  expect(response.statusCode).toBe(202);
  return response.json<{ id: string }>().id;
}

const revoke = (id: string, payload?: object) =>
  api.app.inject({ method: 'POST', url: `/api/tasks/${id}/revoke`, ...(payload === undefined ? {} : { payload }) });

describe('POST /api/tasks/:id/revoke', () => {
  it('revokes a queued task: 200 with the REVOKED record', async () => {
    const id = await submitted();
    const response = await revoke(id);
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({
      id,
      state: 'REVOKED',
      error: 'revoked',
      errorCode: 'CNV_TASK_REVOKED',
      attempts: 0,
      attemptErrors: [],
      links: { self: `/api/tasks/${id}` },
    });
    expect(Date.parse(body.finished)).toBeGreaterThan(Date.now() - 10_000);
    // Indexes moved with it, and the record now expires like any finished task.
    expect(await api.inspect.redis.zscore(`${api.config.prefix}:state:PENDING`, id)).toBeNull();
    expect(await api.inspect.redis.lpos(`${api.config.prefix}:state:REVOKED`, id)).not.toBeNull();
    expect(await api.inspect.redis.ttl(`${api.config.prefix}:task:${id}`)).toBeGreaterThan(0);
    // The message stays queued: a worker that receives it acks it without running it.
    expect(await api.inspect.messageCount('default')).toBeGreaterThan(0);
  });

  it('takes an empty object and an explicit terminate: false alike', async () => {
    expect((await revoke(await submitted(), {})).statusCode).toBe(200);
    expect((await revoke(await submitted(), { terminate: false })).statusCode).toBe(200);
  });

  it('is idempotent: revoking a REVOKED task again answers 200 and changes nothing', async () => {
    const id = await submitted();
    const first = (await revoke(id)).json();
    const second = await revoke(id);
    expect(second.statusCode).toBe(200);
    expect(second.json()).toEqual(first);
  });

  it('revokes a running task at its current attempt and publishes terminate on the control channel', async () => {
    const id = await submitted();
    await api.app.taskStore.transition(id, 'STARTED', 2, { started: Date.now(), worker: 'w1' });
    const subscriber = new Redis(REDIS_URL);
    const messages: string[] = [];
    subscriber.on('message', (_channel: string, message: string) => messages.push(message));
    await subscriber.subscribe(`${api.config.prefix}:control`);
    try {
      const response = await revoke(id, { terminate: true });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ id, state: 'REVOKED', attempts: 2, worker: 'w1' });
      await expect.poll(() => messages, { timeout: 2000 }).toEqual([JSON.stringify({ type: 'terminate', id })]);
      // Repeating it repeats the terminate (the first PUBLISH may be what the client is retrying).
      expect((await revoke(id, { terminate: true })).statusCode).toBe(200);
      await expect.poll(() => messages.length, { timeout: 2000 }).toBe(2);
    } finally {
      subscriber.disconnect();
    }
  });

  it('answers 409 CNV_TASK_FINISHED with the state for a task that already succeeded or failed', async () => {
    for (const state of ['SUCCESS', 'FAILURE'] as const) {
      const id = await submitted();
      await api.app.taskStore.transition(id, state, 1, { finished: Date.now() });
      const response = await revoke(id, { terminate: true });
      expect(response.statusCode).toBe(409);
      expect(response.json()).toEqual({
        statusCode: 409,
        code: 'CNV_TASK_FINISHED',
        error: 'Conflict',
        message: `Task ${id} already finished: ${state}`,
        state,
      });
      expect((await api.app.inject({ method: 'GET', url: `/api/tasks/${id}` })).json().state).toBe(state);
    }
  });

  it('reads again when a new attempt starts between its read and its write', async () => {
    const id = await submitted();
    await api.app.taskStore.transition(id, 'RETRY', 1, { error: 'boom' });
    const store = api.app.taskStore;
    const original = store.transition.bind(store);
    let raced = false;
    store.transition = async (...args: Parameters<typeof original>) => {
      if (!raced && args[1] === 'REVOKED') {
        raced = true;
        // A worker starts attempt 2 just before our write (which is for attempt 1).
        await original(id, 'STARTED', 2, { started: Date.now() });
      }
      return original(...args);
    };
    try {
      const response = await revoke(id);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ state: 'REVOKED', attempts: 2 });
      expect(raced).toBe(true);
    } finally {
      store.transition = original;
    }
  });

  it('answers 404 for an unknown id and 400 for a malformed one', async () => {
    const unknown = await revoke('00000000-0000-4000-8000-000000000000');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('CNV_TASK_NOT_FOUND');
    const malformed = await revoke('not-a-uuid');
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json()).toMatchObject({ code: 'CNV_INVALID_TASK_ID', field: 'id' });
  });

  it('rejects a malformed body with the field at fault', async () => {
    const id = await submitted();
    const wrongType = await revoke(id, { terminate: 'yes' });
    expect(wrongType.statusCode).toBe(400);
    expect(wrongType.json()).toMatchObject({ code: 'CNV_INVALID_SUBMISSION', field: 'terminate' });
    const extra = await revoke(id, { force: true });
    expect(extra.statusCode).toBe(400);
    expect(extra.json()).toMatchObject({ code: 'CNV_INVALID_SUBMISSION', field: 'force' });
    expect((await api.app.inject({ method: 'GET', url: `/api/tasks/${id}` })).json().state).toBe('PENDING');
  });
});
