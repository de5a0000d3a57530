/**
 * Retries with a real worker process: a failing attempt is published again
 * with an eta (the broker's delay tiers hold it), RETRY and each attempt's
 * error are recorded, delays follow the type's backoff (or the message's
 * x-conveyor-retry override), and a task that uses up its retries ends
 * FAILURE with a copy in the dead-letter queue.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DeadLetterHeaders, LAST_ERROR_HEADER, RETRY_POLICY_HEADER, flaky } from '@conveyor/shared';
import { startRole } from '../../../../test/support/processes.js';
import { testEnv, useTestPrefix } from '../../../../test/support/services.js';
import { useHarness } from './harness.js';

const prefix = useTestPrefix();
const harness = useHarness(prefix);

beforeAll(async () => {
  await startRole('worker', testEnv(prefix, { WORKER_CONCURRENCY: 4 }));
});

describe('flaky', () => {
  it('{failures: 2} ends SUCCESS on attempt 3 with both failed attempts recorded', async () => {
    const id = await harness().submit('flaky', { failures: 2 });
    const task = await harness().waitForState(id);
    expect(task).toMatchObject({ state: 'SUCCESS', attempts: 3, result: { attempts: 3 } });

    const errors = await harness().attemptErrors(id);
    expect(errors).toHaveLength(2);
    errors.forEach((entry, i) => {
      expect(entry).toMatchObject({
        attempt: i + 1,
        errorCode: 'CNV_SIMULATED_FAILURE',
        error: `flaky: attempt ${i + 1} of 2 planned failures`,
      });
      expect(Date.parse(entry.at)).not.toBeNaN();
      expect(Date.parse(entry.retryAt!)).toBeGreaterThanOrEqual(Date.parse(entry.at));
    });
    expect(await harness().redis.ttl(harness().keys.attemptErrors(id))).toBeGreaterThan(0);
  });

  it('shows RETRY with the attempt count, the next attempt time and the error while it waits', async () => {
    // A long fixed-ish delay (override) so the RETRY state is there to see.
    const id = await harness().submit(
      'flaky',
      { failures: 1 },
      { retryPolicy: { baseDelayMs: 1500, maxDelayMs: 1500, maxRetries: 1 } },
    );
    const waiting = await harness().waitForState(id, ['RETRY', 'SUCCESS']);
    if (waiting.state === 'RETRY') {
      expect(waiting).toMatchObject({ attempts: 1, errorCode: 'CNV_SIMULATED_FAILURE' });
      expect(Date.parse(waiting.eta!)).toBeGreaterThan(Date.parse(waiting.finished!) - 1);
      expect(await harness().attemptErrors(id)).toMatchObject([{ attempt: 1, retryAt: waiting.eta }]);
    }
    // (Full jitter may pick a delay near 0; then RETRY was too short to see, and SUCCESS is all there is.)
    await expect(harness().waitForState(id)).resolves.toMatchObject({ state: 'SUCCESS', attempts: 2 });
  });

  it('spaces its attempts as the backoff policy says: random(0, min(cap, base·2^n)), never early', async () => {
    const { baseDelayMs, maxDelayMs } = flaky.retry;
    const id = await harness().submit('flaky', { failures: 5 });
    const task = await harness().waitForState(id, undefined, 60_000);
    expect(task).toMatchObject({ state: 'SUCCESS', attempts: 6 });

    const errors = await harness().attemptErrors(id);
    expect(errors.map((e) => e.attempt)).toEqual([1, 2, 3, 4, 5]);
    // When each next attempt started: the next failure (flaky fails at once), or the final start.
    const nextStarts = [...errors.slice(1).map((e) => Date.parse(e.at)), Date.parse(task.started!)];
    let total = 0;
    errors.forEach((entry, n) => {
      const chosen = Date.parse(entry.retryAt!) - Date.parse(entry.at);
      const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** n);
      expect(chosen, `delay before attempt ${n + 2}`).toBeGreaterThanOrEqual(0);
      expect(chosen, `delay before attempt ${n + 2}`).toBeLessThanOrEqual(ceiling + 1);
      total += chosen;
      // The broker held it: not before its eta, and late by no more than the shortest
      // delay tier (100 ms) plus the hops through the tiers.
      const lateness = nextStarts[n]! - Date.parse(entry.retryAt!);
      expect(lateness, `attempt ${n + 2} started ${lateness} ms after its eta`).toBeGreaterThanOrEqual(-5);
      expect(lateness, `attempt ${n + 2} started ${lateness} ms after its eta`).toBeLessThan(750);
    });
    // Five independent full-jitter delays summing under 100 ms has a probability below 1e-6.
    expect(total).toBeGreaterThan(100);
  });

  it('{failures: 10} with maxRetries 3 (x-conveyor-retry) ends FAILURE after 4 attempts, dead-lettered', async () => {
    const message = harness().message(
      'flaky',
      { failures: 10 },
      { retryPolicy: { maxRetries: 3, baseDelayMs: 50, maxDelayMs: 100 } },
    );
    const id = await harness().publish(message);
    const task = await harness().waitForState(id);
    expect(task).toMatchObject({ state: 'FAILURE', attempts: 4, errorCode: 'CNV_SIMULATED_FAILURE' });
    expect(task.error).toBe('flaky: attempt 4 of 10 planned failures');

    const errors = await harness().attemptErrors(id);
    expect(errors.map((e) => [e.attempt, e.errorCode])).toEqual([
      [1, 'CNV_SIMULATED_FAILURE'],
      [2, 'CNV_SIMULATED_FAILURE'],
      [3, 'CNV_SIMULATED_FAILURE'],
      [4, 'CNV_SIMULATED_FAILURE'],
    ]);
    expect(errors.at(-1)!.retryAt).toBeUndefined();

    const dead = await harness().waitForDeadLetter(id);
    const headers = dead.properties.headers!;
    expect(headers[DeadLetterHeaders.reason]).toBe('retries exhausted');
    expect(headers[DeadLetterHeaders.errorCode]).toBe('CNV_SIMULATED_FAILURE');
    expect(headers[LAST_ERROR_HEADER]).toBe('flaky: attempt 4 of 10 planned failures');
    expect(headers.retries).toBe(3);
    expect(headers[RETRY_POLICY_HEADER]).toEqual({ maxRetries: 3, baseDelayMs: 50, maxDelayMs: 100 });
    expect(JSON.parse(dead.content.toString())[1]).toEqual({ failures: 10 });
  });

  it('a task without retries (fail) ends FAILURE with one attempt error and is not dead-lettered', async () => {
    await harness().drainDeadLetters();
    const id = await harness().submit('fail', { message: 'no retries' });
    await expect(harness().waitForState(id)).resolves.toMatchObject({ state: 'FAILURE', attempts: 1 });
    expect(await harness().attemptErrors(id)).toMatchObject([
      { attempt: 1, error: 'no retries', errorCode: 'CNV_SIMULATED_FAILURE' },
    ]);
    expect(await harness().drainDeadLetters()).toEqual([]);
  });
});
