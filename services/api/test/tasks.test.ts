/**
 * The happy paths against the real broker and Redis: submit (202 only after
 * the confirm, one message on the queue, a PENDING record), read back, the
 * long-poll, task types, and the probes.
 */
import { decodeTask, TASK_ID_PATTERN } from '@conveyor/shared';
import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { AMQP_URL, useApiApp } from './helpers.js';

const api = useApiApp({ TASK_QUEUES: 'default,reports' });

describe('POST /api/tasks', () => {
  let id: string;

  it('answers 202 with Location, records PENDING and queues exactly one message', async () => {
    const before = await api.inspect.messageCount('default');
    const response = await api.app.inject({
      method: 'POST',
      url: '/api/tasks',
      payload: { type: 'sleep', kwargs: { duration: 1 } },
    });
    expect(response.statusCode).toBe(202);
    const body = response.json();
    id = body.id;
    expect(id).toMatch(TASK_ID_PATTERN);
    expect(response.headers.location).toBe(`/api/tasks/${id}`);
    expect(body).toEqual({
      id,
      type: 'sleep',
      queue: 'default',
      state: 'PENDING',
      eta: null,
      expires: null,
      links: { self: `/api/tasks/${id}` },
    });

    const hash = await api.inspect.redis.hgetall(`${api.config.prefix}:task:${id}`);
    expect(hash).toMatchObject({
      state: 'PENDING',
      type: 'sleep',
      queue: 'default',
      kwargs: '{"duration":1}',
    });
    // No args: the store leaves out what reads back the same ([]).
    expect(hash).not.toHaveProperty('args');
    expect(Number(hash.created)).toBeGreaterThan(Date.now() - 60_000);
    expect(await api.inspect.messageCount('default')).toBe(before + 1);
  });

  it('publishes a Celery v2 message with the type, kwargs, time limit and origin', async () => {
    const model = await amqp.connect(AMQP_URL);
    const channel = await model.createChannel();
    const response = await api.app.inject({
      method: 'POST',
      url: '/api/tasks',
      payload: { type: 'compute', kwargs: { operation: 'factorial', input: 10 }, queue: 'reports', priority: 7 },
    });
    expect(response.statusCode).toBe(202);
    const message = await channel.get(api.inspect.topology.queueName('reports'), { noAck: true });
    await model.close();
    expect(message).not.toBe(false);
    if (message === false) return;
    const task = decodeTask(message.content, message.properties);
    expect(task).toMatchObject({
      id: response.json().id,
      task: 'compute',
      kwargs: { operation: 'factorial', input: 10 },
      args: [],
      retries: 0,
      timelimit: [120, 60],
      origin: 'api@test-host',
      priority: 7,
    });
    expect(message.properties.deliveryMode).toBe(2);
  });

  it('sends a countdown through the delay tiers, not straight to the queue', async () => {
    const before = await api.inspect.messageCount('default');
    const response = await api.app.inject({
      method: 'POST',
      url: '/api/tasks',
      payload: { type: 'noop', countdown: 3600, expires: 7200 },
    });
    expect(response.statusCode).toBe(202);
    const body = response.json<{ id: string; eta: string; expires: string }>();
    const eta = Date.parse(body.eta);
    expect(eta).toBeGreaterThan(Date.now() + 3590_000);
    expect(Date.parse(body.expires) - eta).toBeGreaterThan(3590_000);
    expect(await api.inspect.messageCount('default')).toBe(before);
    const tiers = await Promise.all(
      api.inspect.topology.delayTiers.map((ms) => api.inspect.messageCount(`${api.config.prefix}.delay.${ms}`, true)),
    );
    expect(tiers.reduce((a, b) => a + b, 0)).toBe(1);
    const hash = await api.inspect.redis.hgetall(`${api.config.prefix}:task:${body.id}`);
    expect(hash.eta).toBe(body.eta);
    expect(hash.expires).toBe(body.expires);
  });

  it('keeps concurrent submissions apart (one channel, pipelined confirms)', async () => {
    const before = await api.inspect.messageCount('default');
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        api.app.inject({ method: 'POST', url: '/api/tasks', payload: { type: 'greet', kwargs: { name: `n${i}` } } }),
      ),
    );
    expect(responses.map((r) => r.statusCode)).toEqual(Array(50).fill(202));
    expect(new Set(responses.map((r) => r.json().id)).size).toBe(50);
    expect(await api.inspect.messageCount('default')).toBe(before + 50);
  });

  describe('GET /api/tasks/:id', () => {
    it('returns the record', async () => {
      const response = await api.app.inject({ method: 'GET', url: `/api/tasks/${id}` });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        id,
        type: 'sleep',
        queue: 'default',
        state: 'PENDING',
        args: [],
        kwargs: { duration: 1 },
        result: null,
        error: null,
        attempts: 0,
        worker: null,
        eta: null,
        received: null,
        runtime: null,
        links: { self: `/api/tasks/${id}` },
      });
      expect(Date.parse(response.json().created)).not.toBeNaN();
    });

    it('long-polls until the wait runs out while the task is not finished', async () => {
      const started = Date.now();
      const response = await api.app.inject({ method: 'GET', url: `/api/tasks/${id}?wait=0.3` });
      expect(response.statusCode).toBe(200);
      expect(response.json().state).toBe('PENDING');
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    });

    it('long-polls until the task finishes', async () => {
      const created = await api.app.inject({ method: 'POST', url: '/api/tasks', payload: { type: 'noop' } });
      const taskId = created.json().id as string;
      const started = Date.now();
      const pending = api.app.inject({ method: 'GET', url: `/api/tasks/${taskId}?wait=10` });
      await new Promise((resolve) => setTimeout(resolve, 200));
      await api.app.taskStore.transition(taskId, 'SUCCESS', 1, {
        result: 'null',
        finished: Date.now(),
        runtime: 0.001,
      });
      const response = await pending;
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        id: taskId,
        state: 'SUCCESS',
        result: null,
        attempts: 1,
        runtime: 0.001,
      });
      expect(Date.now() - started).toBeLessThan(2000);
    });
  });
});

describe('GET /api/task-types', () => {
  it('lists every type with its kwargs schema, queue, retry policy and time limit', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/api/task-types' });
    expect(response.statusCode).toBe(200);
    const { types } = response.json<{ types: { name: string }[] }>();
    expect(types.map((t) => t.name)).toEqual(expect.arrayContaining(['noop', 'sleep', 'compute', 'email.send']));
    expect(types.find((t) => t.name === 'email.send')).toEqual({
      name: 'email.send',
      description: expect.any(String),
      queue: 'default',
      kwargs: expect.objectContaining({ type: 'object', required: ['to', 'subject', 'text'] }),
      retry: { maxRetries: 3, baseDelayMs: 2000, maxDelayMs: 60_000 },
      timeLimit: { softSeconds: 30, hardSeconds: 60 },
    });
  });
});

describe('probes', () => {
  it('GET /health is ok', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/health' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('GET /ready reports broker and Redis', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/ready' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ready', broker: true, redis: true });
  });

  it('GET /metrics serves Prometheus text with the submit counter and latency histogram', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    // Label order is prom-client's business: match the sample, not its spelling.
    const sample = (name: string, type: string) =>
      new RegExp(`^${name}\\{[^}]*type="${type}"[^}]*\\} (\\S+)$`, 'm').exec(response.body)?.[1];
    expect(sample('conveyor_api_tasks_submitted_total', 'sleep')).toBe('1');
    expect(sample('conveyor_api_tasks_submitted_total', 'greet')).toBe('50');
    expect(sample('conveyor_api_submit_duration_seconds_count', 'greet')).toBe('50');
    expect(response.body).toContain('conveyor_process_cpu_user_seconds_total');
  });

  it('answers unknown routes with CNV_ROUTE_NOT_FOUND', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/api/nothing?x=1' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({
      statusCode: 404,
      code: 'CNV_ROUTE_NOT_FOUND',
      error: 'Not Found',
      message: 'Route GET /api/nothing not found',
    });
  });
});
