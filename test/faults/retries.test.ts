/**
 * Fault 4: tasks that fail. `flaky {failures: n}` fails its first n attempts.
 *
 *  - failures 2 with the type's policy (5 retries): SUCCESS on attempt 3,
 *    the two failed attempts in `attemptErrors`;
 *  - failures 10 with a per-submission override `retry: {maxRetries: 3}`:
 *    FAILURE after 4 attempts, and a copy in the dead-letter queue saying why
 *    (reason, error code, last error);
 *  - backoff: 10 tasks × 4 retries with `{baseDelayMs: 100, maxDelayMs: 500}`.
 *    Each retry's chosen delay (`retryAt - at` of the failed attempt) lies in
 *    the full-jitter range [0, min(500, 100·2ⁿ)], and the next attempt starts
 *    no earlier than its due time and at most one delay tier step (100 ms)
 *    plus scheduling latency after it.
 */
import type { ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTopology, listDeadLetters } from '@conveyor/shared';
import { startRole, type RunningRole } from '../support/processes.js';
import { connectAmqp, testEnv, useTestPrefix } from '../support/services.js';
import { waitFor } from '../support/wait.js';
import { mapConcurrent, submit, waitAllTerminal, waitForTerminal } from './client.js';
import { summary } from './infra.js';

const prefix = useTestPrefix();
const topology = buildTopology({ prefix, exchange: `${prefix}.tasks`, queues: ['default'] });
/** Latency allowed on top of the delay tiers' 100 ms granularity (a loaded 2-core machine). */
const LATENESS_SLACK_MS = 400;

let api: RunningRole;
let amqp: ChannelModel;

beforeAll(async () => {
  api = await startRole('api', testEnv(prefix));
  await startRole('worker', testEnv(prefix, { WORKER_CONCURRENCY: 16 }));
  amqp = await connectAmqp();
});

afterAll(async () => {
  await amqp?.close().catch(() => undefined);
});

interface AttemptErrorView {
  attempt: number;
  error: string;
  errorCode: string;
  at: string;
  retryAt?: string;
}

describe('retries', () => {
  it('flaky {failures: 2} succeeds on attempt 3 with its two failures recorded', async () => {
    const { id, status } = await submit(api.url, { type: 'flaky', kwargs: { failures: 2 } });
    expect(status).toBe(202);
    const task = await waitForTerminal(api.url, id, 30_000);
    expect(task).toMatchObject({ state: 'SUCCESS', attempts: 3, result: { attempts: 3 } });
    const errors = task.attemptErrors as AttemptErrorView[];
    expect(errors.map((e) => [e.attempt, e.errorCode])).toEqual([
      [1, 'CNV_SIMULATED_FAILURE'],
      [2, 'CNV_SIMULATED_FAILURE'],
    ]);
    expect(errors.every((e) => typeof e.retryAt === 'string')).toBe(true);
  });

  it('flaky {failures: 10} with retry {maxRetries: 3} fails after 4 attempts and lands in the dead-letter queue', async () => {
    const { id, status } = await submit(api.url, {
      type: 'flaky',
      kwargs: { failures: 10 },
      retry: { maxRetries: 3 },
    });
    expect(status).toBe(202);
    const task = await waitForTerminal(api.url, id, 60_000);
    expect(task).toMatchObject({ state: 'FAILURE', attempts: 4, errorCode: 'CNV_SIMULATED_FAILURE' });
    const errors = task.attemptErrors as AttemptErrorView[];
    expect(errors.map((e) => e.attempt)).toEqual([1, 2, 3, 4]);
    expect(errors[3]!.retryAt).toBeUndefined();

    const channel = await amqp.createChannel();
    try {
      const dead = await waitFor(async () => (await listDeadLetters(channel, topology)).find((d) => d.taskId === id), {
        timeoutMs: 10_000,
        message: `task ${id} in the dead-letter queue`,
      });
      expect(dead).toMatchObject({
        task: 'flaky',
        reason: 'retries exhausted',
        errorCode: 'CNV_SIMULATED_FAILURE',
        originalQueue: topology.queueName('default'),
        retries: 3,
      });
      expect(dead.lastError).toEqual(task.error);
    } finally {
      await channel.close();
    }
  });

  it('waits between attempts as the backoff policy says, within its jitter', async () => {
    const policy = { maxRetries: 4, baseDelayMs: 100, maxDelayMs: 500 };
    const submitted = await mapConcurrent(Array.from({ length: 10 }), 10, () =>
      submit(api.url, { type: 'flaky', kwargs: { failures: 4 }, retry: policy }),
    );
    const tasks = await waitAllTerminal(
      api.url,
      submitted.map((s) => s.id),
      60_000,
    );
    const chosen: number[][] = [[], [], [], []];
    const lateness: number[] = [];
    for (const task of tasks) {
      expect(task).toMatchObject({ state: 'SUCCESS', attempts: 5 });
      const errors = task.attemptErrors as AttemptErrorView[];
      expect(errors).toHaveLength(4);
      errors.forEach((e, n) => {
        const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** n);
        const delay = Date.parse(e.retryAt!) - Date.parse(e.at);
        // Full jitter: random(0, cap), rounded to the ms (±2 ms for the two clocks' rounding).
        expect(delay).toBeGreaterThanOrEqual(-2);
        expect(delay).toBeLessThanOrEqual(cap + 2);
        chosen[n]!.push(delay);
        // The next attempt's failure is its start (flaky fails at once); the last one succeeded.
        const nextAt = n + 1 < errors.length ? Date.parse(errors[n + 1]!.at) : Date.parse(task.started as string);
        const late = nextAt - Date.parse(e.retryAt!);
        expect(late).toBeGreaterThanOrEqual(-5);
        expect(late).toBeLessThanOrEqual(100 + LATENESS_SLACK_MS);
        lateness.push(late);
      });
    }
    // Jittered, not fixed: the chosen delays of the 40 retries are spread out.
    const all = chosen.flat();
    expect(new Set(all).size).toBeGreaterThan(20);

    summary('retry-backoff', {
      policy,
      retries: all.length,
      delayMsByRetry: chosen.map((d, n) => ({
        retry: n,
        cap: Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** n),
        min: Math.min(...d),
        mean: Math.round(d.reduce((a, b) => a + b, 0) / d.length),
        max: Math.max(...d),
      })),
      startedAfterDueMs: {
        min: Math.min(...lateness),
        mean: Math.round(lateness.reduce((a, b) => a + b, 0) / lateness.length),
        max: Math.max(...lateness),
      },
    });
  });
});
