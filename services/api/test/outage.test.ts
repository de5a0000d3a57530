/**
 * The api with its broker or its Redis unreachable: it still starts, /ready
 * says which one is missing, and a submission gets a prompt 503 with
 * Retry-After instead of a 202 or a hanging request, leaving nothing behind.
 */
import type { Config } from '@conveyor/shared';
import { describe, expect, it } from 'vitest';
import { buildApp, type ApiApp } from '../src/app.js';
import { useApiApp } from './helpers.js';

// Port 1 on loopback: nothing listens there, so connections are refused at once.
const CLOSED_AMQP = 'amqp://guest:guest@127.0.0.1:1';
const CLOSED_REDIS = 'redis://127.0.0.1:1/0';

/** Built and started but not waited for: /ready cannot say 200 with the broker or Redis gone. */
async function startedApp(config: Config): Promise<ApiApp> {
  const app = buildApp({ config });
  await app.ready();
  return app;
}

/** Submits a valid task and expects the prompt 503 with Retry-After that both outages give; resolves with the response. */
async function submitRefusedPromptly(app: ApiApp) {
  const started = Date.now();
  const response = await app.inject({ method: 'POST', url: '/api/tasks', payload: { type: 'noop' } });
  expect(Date.now() - started).toBeLessThan(2000);
  expect(response.statusCode).toBe(503);
  expect(response.headers['retry-after']).toBe('5');
  return response;
}

describe('broker unreachable', () => {
  const api = useApiApp({ AMQP_URL: CLOSED_AMQP }, startedApp);

  it('reports not ready, broker false', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/ready' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ status: 'unavailable', broker: false, redis: true });
  });

  it('answers a valid submission with 503 CNV_BROKER_UNAVAILABLE and Retry-After, and removes the record', async () => {
    const response = await submitRefusedPromptly(api.app);
    expect(response.json()).toMatchObject({
      statusCode: 503,
      code: 'CNV_BROKER_UNAVAILABLE',
      error: 'Service Unavailable',
    });
    // The PENDING record was written, then discarded when the publish failed.
    const keys = await api.inspect.keys();
    expect(keys.filter((key) => key.includes(':task:'))).toEqual([]);
    expect(await api.inspect.redis.llen(`${api.config.prefix}:tasks`)).toBe(0);
    expect(await api.inspect.redis.zcard(`${api.config.prefix}:state:PENDING`)).toBe(0);
  });

  it('still serves health and task types', async () => {
    expect((await api.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    expect((await api.app.inject({ method: 'GET', url: '/api/task-types' })).statusCode).toBe(200);
  });
});

describe('Redis unreachable', () => {
  const api = useApiApp({ REDIS_URL: CLOSED_REDIS }, startedApp);

  it('reports not ready, redis false', async () => {
    // The broker side needs a moment to connect and assert the topology.
    let body: unknown;
    for (let i = 0; i < 100; i++) {
      const response = await api.app.inject({ method: 'GET', url: '/ready' });
      expect(response.statusCode).toBe(503);
      body = response.json();
      if ((body as { broker: boolean }).broker) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(body).toEqual({ status: 'unavailable', broker: true, redis: false });
  });

  it('answers a valid submission with 503 CNV_STORE_UNAVAILABLE and Retry-After, publishing nothing', async () => {
    const response = await submitRefusedPromptly(api.app);
    expect(response.json()).toEqual({
      statusCode: 503,
      code: 'CNV_STORE_UNAVAILABLE',
      error: 'Service Unavailable',
      message: 'The result store is unavailable: try again later',
    });
    expect(await api.inspect.messageCount('default')).toBe(0);
  });

  it('answers a read with 503 CNV_STORE_UNAVAILABLE', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/api/tasks/00000000-0000-4000-8000-000000000000' });
    expect(response.statusCode).toBe(503);
    expect(response.json().code).toBe('CNV_STORE_UNAVAILABLE');
  });

  it('still rejects a malformed submission with its 400', async () => {
    const response = await api.app.inject({ method: 'POST', url: '/api/tasks', payload: { type: 'sleep' } });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('CNV_INVALID_KWARGS');
  });
});
