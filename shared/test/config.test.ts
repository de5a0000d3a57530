import { describe, expect, it } from 'vitest';
import { DEFAULT_PORTS, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('applies the defaults of DESIGN.md', () => {
    const config = loadConfig('api', {}, 'host1');
    expect(config).toMatchObject({
      amqpUrl: 'amqp://guest:guest@localhost:5672',
      redisUrl: 'redis://localhost:6379/0',
      prefix: 'conveyor',
      exchange: 'conveyor.tasks',
      queues: ['default'],
      workerConcurrency: 4,
      resultTtlSeconds: 86_400,
      maxRedeliveries: 5,
      smtpUrl: 'smtp://localhost:25',
      port: 8000,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("bounds the worker's heap growth at 30 % unless told otherwise (0: V8's own heuristic)", () => {
    expect(loadConfig('worker', {}).workerHeapGrowingPercent).toBe(30);
    expect(loadConfig('worker', { WORKER_HEAP_GROWING_PERCENT: '0' }).workerHeapGrowingPercent).toBe(0);
  });

  it('gives each role its own default port', () => {
    expect(loadConfig('worker', {}).port).toBe(DEFAULT_PORTS.worker);
    expect(loadConfig('dashboard', {}).port).toBe(5555);
    expect(loadConfig('worker', { PORT: '9999' }).port).toBe(9999);
  });

  it('parses queues, numbers and a derived exchange name', () => {
    const config = loadConfig('worker', {
      CONVEYOR_PREFIX: 'acme',
      TASK_QUEUES: 'default,email,default',
      WORKER_CONCURRENCY: '32',
    });
    expect(config.queues).toEqual(['default', 'email']);
    expect(config.workerConcurrency).toBe(32);
    expect(config.exchange).toBe('acme.tasks');
  });

  it.each([
    ['WORKER_CONCURRENCY', 'many'],
    ['WORKER_CONCURRENCY', '0'],
    ['RESULT_TTL_SECONDS', '-5'],
    ['AMQP_URL', 'http://rabbit'],
    ['REDIS_URL', 'localhost:6379'],
    ['TASK_QUEUES', 'a,,b'],
    ['CONVEYOR_PREFIX', 'has space'],
    ['LOG_LEVEL', 'loud'],
    ['PORT', '70000'],
    ['MAX_REDELIVERIES', '-1'],
    ['WORKER_POOL_SIZE', '0'],
    ['WORKER_HEAP_GROWING_PERCENT', '-1'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => loadConfig('api', { [name]: value })).toThrow(
      expect.objectContaining({ code: 'CNV_CONFIG_INVALID', message: expect.stringContaining(name) }),
    );
  });
});
