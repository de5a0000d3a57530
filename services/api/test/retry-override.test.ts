/**
 * The per-submission retry override (`retry` in POST /api/tasks) travels in
 * the message's `x-conveyor-retry` header and is validated with the field at
 * fault; GET returns the worker-written progress and attempt errors.
 */
import { decodeTask, recordAttemptError, RETRY_POLICY_HEADER } from '@conveyor/shared';
import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { AMQP_URL, useApiApp } from './helpers.js';

const api = useApiApp();

describe('retry override', () => {
  it('is published in the x-conveyor-retry header, only with the fields given', async () => {
    const model = await amqp.connect(AMQP_URL);
    try {
      const channel = await model.createChannel();
      await channel.purgeQueue(api.inspect.topology.queueName('default'));
      const response = await api.app.inject({
        method: 'POST',
        url: '/api/tasks',
        payload: { type: 'flaky', kwargs: { failures: 1 }, retry: { maxRetries: 7, baseDelayMs: 0 } },
      });
      expect(response.statusCode).toBe(202);
      const message = await channel.get(api.inspect.topology.queueName('default'), { noAck: true });
      if (message === false) throw new Error('nothing published');
      expect(message.properties.headers?.[RETRY_POLICY_HEADER]).toEqual({ maxRetries: 7, baseDelayMs: 0 });
      expect(decodeTask(message.content, message.properties).retryPolicy).toEqual({ maxRetries: 7, baseDelayMs: 0 });
    } finally {
      await model.close();
    }
  });

  it.each([
    [{ maxRetries: 101 }, 'retry.maxRetries'],
    [{ maxRetries: 1.5 }, 'retry.maxRetries'],
    [{ baseDelayMs: -1 }, 'retry.baseDelayMs'],
    [{ maxDelayMs: 86_400_001 }, 'retry.maxDelayMs'],
    [{ attempts: 3 }, 'retry.attempts'],
  ])('rejects %j with 400 on %s, queuing nothing', async (retry, field) => {
    const before = await api.inspect.messageCount('default');
    const response = await api.app.inject({ method: 'POST', url: '/api/tasks', payload: { type: 'noop', retry } });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'CNV_INVALID_SUBMISSION', field });
    expect(await api.inspect.messageCount('default')).toBe(before);
  });
});

describe('GET /api/tasks/:id', () => {
  it('includes progress, its message and the attempt errors the worker recorded', async () => {
    const created = await api.app.inject({ method: 'POST', url: '/api/tasks', payload: { type: 'noop' } });
    const id = created.json<{ id: string }>().id;
    const fresh = (await api.app.inject({ method: 'GET', url: `/api/tasks/${id}` })).json();
    expect(fresh).toMatchObject({ progress: null, progressMessage: null, attemptErrors: [] });

    await api.app.taskStore.transition(id, 'STARTED', 1, { started: Date.now() });
    await api.inspect.redis.hset(`${api.config.prefix}:task:${id}`, 'progress', '40', 'progressMessage', 'halfway-ish');
    const at = new Date().toISOString();
    const retryAt = new Date(Date.now() + 1000).toISOString();
    await recordAttemptError(
      api.inspect.redis,
      api.app.taskStore.keys,
      id,
      { attempt: 1, error: 'boom', errorCode: 'CNV_SIMULATED_FAILURE', at, retryAt },
      60,
    );
    const read = (await api.app.inject({ method: 'GET', url: `/api/tasks/${id}` })).json();
    expect(read).toMatchObject({
      progress: 40,
      progressMessage: 'halfway-ish',
      attemptErrors: [{ attempt: 1, error: 'boom', errorCode: 'CNV_SIMULATED_FAILURE', at, retryAt }],
    });
  });
});
