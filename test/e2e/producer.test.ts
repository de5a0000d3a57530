/**
 * The producer API against a real worker process, RabbitMQ and Redis:
 * submitAndWait returns the finished record, refuses bad input before
 * anything is written, gives the record back as it is when its wait runs
 * out or is aborted, and returns a finished task without waiting for the
 * broker's confirm.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLogger, hasCode, loadConfig, Producer, redisKeys } from '@conveyor/shared';
import { startHeldRepliesProxy } from '../support/held-replies-proxy.js';
import { startRole } from '../support/processes.js';
import { connectRedis, serviceUrls, testEnv, useTestPrefix } from '../support/services.js';
import { waitFor } from '../support/wait.js';

const prefix = useTestPrefix();
let producer: Producer;
let redis: Redis;

beforeAll(async () => {
  await startRole('worker', testEnv(prefix, { WORKER_CONCURRENCY: 4 }));
  const config = loadConfig('api', testEnv(prefix));
  producer = await Producer.connect(config, createLogger(config));
  redis = await connectRedis();
});

afterAll(async () => {
  await producer?.close();
  await redis?.quit();
});

it('submits and waits in one call: the finished record, as wait() reads it', async () => {
  const record = await producer.submitAndWait({ type: 'greet', kwargs: { name: 'Ada' } }, 10_000);
  expect(record).toMatchObject({ type: 'greet', state: 'SUCCESS', result: 'Hello Ada' });
  await expect(producer.wait(record!.id, 0)).resolves.toEqual(record);
});

it('refuses invalid kwargs with the field at fault, writing nothing', async () => {
  const before = await redis.llen(redisKeys(prefix).timeIndex);
  const refused = producer.submitAndWait({ type: 'greet', kwargs: { name: 42 } }, 10_000);
  await expect(refused).rejects.toSatisfy((error: unknown) => hasCode(error, 'CNV_INVALID_KWARGS'));
  await expect(refused).rejects.toMatchObject({ field: 'kwargs.name' });
  expect(await redis.llen(redisKeys(prefix).timeIndex)).toBe(before);
});

it('returns the record as it is when the wait runs out', async () => {
  const started = Date.now();
  const record = await producer.submitAndWait({ type: 'sleep', kwargs: { duration: 2 } }, 300);
  expect(Date.now() - started).toBeLessThan(1500);
  expect(['PENDING', 'STARTED']).toContain(record?.state);
  await expect(producer.wait(record!.id, 10_000)).resolves.toMatchObject({ state: 'SUCCESS' });
});

it('stops waiting when the signal aborts', async () => {
  const started = Date.now();
  const record = await producer.submitAndWait(
    { type: 'sleep', kwargs: { duration: 2 } },
    10_000,
    AbortSignal.timeout(200),
  );
  expect(Date.now() - started).toBeLessThan(1500);
  expect(['PENDING', 'STARTED']).toContain(record?.state);
});

it("returns a finished task without waiting for the broker's confirm", async () => {
  // The producer talks to RabbitMQ through a proxy that holds the broker's
  // replies: its publish reaches the broker, the worker (connected directly)
  // runs the task, and the confirm waits in the proxy.
  const broker = new URL(serviceUrls().amqpUrl);
  const proxy = await startHeldRepliesProxy({ host: broker.hostname, port: Number(broker.port || 5672) });
  const proxied = new URL(broker);
  proxied.host = proxy.address;
  const config = loadConfig('api', testEnv(prefix, { AMQP_URL: proxied.toString() }));
  const late = await Producer.connect(config, createLogger(config));
  try {
    proxy.hold();
    const record = await late.submitAndWait({ type: 'greet', kwargs: { name: 'Ada' } }, 10_000);
    expect(record).toMatchObject({ state: 'SUCCESS', result: 'Hello Ada' });
    // Nothing the broker sent has reached the producer yet, and its confirm
    // was still to come: it turns up in the proxy after the result.
    await waitFor(() => proxy.heldBytes > 0, { timeoutMs: 5000, message: "the broker's confirm" });
  } finally {
    proxy.release();
    await late.close();
    await proxy.close();
  }
});
