/**
 * Revocation, worker side, with a real worker process: a task revoked in the
 * store while queued is acked without running; `terminate` on the control
 * channel ends a running task (in-process, or its pool thread) as REVOKED;
 * a task received after its `expires` is REVOKED without running.
 */
import { describe, expect, it } from 'vitest';
import { encodeControlMessage } from '@conveyor/shared';
import { jsonLines, startRole, type RunningRole } from '../../../../test/support/processes.js';
import { testEnv, useTestPrefix } from '../../../../test/support/services.js';
import { sleep, waitFor } from '../../../../test/support/wait.js';
import { cpuTimeMs, useHarness } from './harness.js';

const prefix = useTestPrefix();
const harness = useHarness(prefix);
let worker: RunningRole;

describe('revoke of a queued task', () => {
  it('is acked without running when the store already says REVOKED', async () => {
    // Queued while no worker runs, then revoked as the api does: straight into the store.
    const message = harness().message('sleep', { duration: 0.1 });
    const { id } = message;
    const created = Date.now();
    await harness().store.transition(id, 'PENDING', 0, {}, { type: 'sleep', queue: 'default', kwargs: '{}', created });
    await harness().publish(message);
    const revoked = await harness().store.transition(id, 'REVOKED', 0, {
      error: 'revoked',
      errorCode: 'CNV_TASK_REVOKED',
      finished: Date.now(),
    });
    expect(revoked).toEqual({ applied: true, state: 'REVOKED' });

    worker = await startRole(
      'worker',
      testEnv(prefix, { WORKER_CONCURRENCY: 4, WORKER_POOL_SIZE: 1, LOG_LEVEL: 'info' }),
    );
    await waitFor(
      () =>
        jsonLines(worker.stdout).some((l) => l.taskId === id && l.msg === 'duplicate delivery acked without running'),
      { timeoutMs: 10_000, message: 'the worker to ack the revoked task' },
    );
    expect(await harness().queueDepth()).toBe(0);
    const task = (await harness().task(id))!;
    expect(task).toMatchObject({ state: 'REVOKED', errorCode: 'CNV_TASK_REVOKED', started: null, result: null });
  });
});

describe('terminate', () => {
  // Exactly what the api publishes for DELETE …?terminate=true.
  const terminate = (id: string) =>
    harness().redis.publish(harness().keys.control, encodeControlMessage({ type: 'terminate', id }));

  it('ends a running in-process task as REVOKED ("terminated")', async () => {
    const id = await harness().submit('hang', { seconds: 60 });
    await harness().waitForState(id, ['STARTED']);
    const sentAt = Date.now();
    expect(await terminate(id)).toBeGreaterThanOrEqual(1); // the worker listens
    const task = await harness().waitForState(id, undefined, 5000);
    expect(Date.now() - sentAt).toBeLessThan(2000);
    expect(task).toMatchObject({ state: 'REVOKED', error: 'terminated', errorCode: 'CNV_TASK_REVOKED' });
  });

  it('terminates the pool thread of a CPU-bound task; the pool keeps serving', async () => {
    const id = await harness().submit('hang', { seconds: 60, cpu: true });
    await harness().waitForState(id, ['STARTED']);
    await sleep(300); // well inside the loop
    await terminate(id);
    const task = await harness().waitForState(id, undefined, 5000);
    expect(task).toMatchObject({ state: 'REVOKED', error: 'terminated', errorCode: 'CNV_TASK_REVOKED' });

    // The thread is gone (the worker is idle), and the one-thread pool has a new one for the next task.
    const cpuBefore = cpuTimeMs(worker.pid);
    await sleep(1000);
    expect(cpuTimeMs(worker.pid) - cpuBefore).toBeLessThan(400);
    const next = await harness().submit('compute', { operation: 'is_prime', input: 7919 });
    await expect(harness().waitForState(next, undefined, 5000)).resolves.toMatchObject({
      state: 'SUCCESS',
      result: true,
    });
  });

  it('leaves a task that is not running alone, and ignores junk on the channel', async () => {
    await terminate(crypto.randomUUID());
    await harness().publishControl({ type: 'explode' });
    const id = await harness().submit('greet', { name: 'Ada' });
    await expect(harness().waitForState(id)).resolves.toMatchObject({ state: 'SUCCESS', result: 'Hello Ada' });
    expect(worker.exitStatus).toBeUndefined();
  });
});

describe('expiry', () => {
  it('revokes a task received after its expires time, without running it', async () => {
    const expires = new Date(Date.now() - 1000).toISOString();
    const id = await harness().submit('greet', { name: 'late' }, { expires });
    const task = await harness().waitForState(id);
    expect(task).toMatchObject({ state: 'REVOKED', errorCode: 'CNV_TASK_EXPIRED', result: null, started: null });
    expect(task.error).toBe(`Task expired at ${expires} before a worker received it`);
  });

  it('runs a task whose expiry is still ahead', async () => {
    const expires = new Date(Date.now() + 60_000).toISOString();
    const id = await harness().submit('greet', { name: 'early' }, { expires });
    await expect(harness().waitForState(id)).resolves.toMatchObject({ state: 'SUCCESS', result: 'Hello early' });
  });
});
