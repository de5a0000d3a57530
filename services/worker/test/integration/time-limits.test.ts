/**
 * Time limits with a real worker process. Limits come from the message's
 * `timelimit` header ([hard, soft] seconds), else from the type. The soft
 * limit aborts the handler's signal; the hard limit ends the attempt for
 * real: a CPU-bound loop in the thread pool is terminated while the same
 * worker keeps heartbeating and completing other tasks.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { startRole, type RunningRole } from '../../../../test/support/processes.js';
import { testEnv, useTestPrefix } from '../../../../test/support/services.js';
import { sleep, waitFor } from '../../../../test/support/wait.js';
import { cpuTimeMs, useHarness } from './harness.js';

const prefix = useTestPrefix();
const WORKER_NAME = `limits@${prefix}`;
const harness = useHarness(prefix);
let worker: RunningRole;

beforeAll(async () => {
  worker = await startRole('worker', testEnv(prefix, { WORKER_NAME, WORKER_CONCURRENCY: 6, WORKER_POOL_SIZE: 2 }));
});

describe('hard time limit', () => {
  it('terminates a CPU-bound infinite loop while the worker keeps heartbeating and completing tasks', async () => {
    // A heartbeat every 5 s: a 6 s limit spans at least one more beat.
    const hung = await harness().submit('hang', { seconds: 3600, cpu: true }, { timelimit: [6, null] });
    await harness().waitForState(hung, ['STARTED']);
    const seenAtStart = (await harness().lastSeen(WORKER_NAME))!;
    expect(seenAtStart).toBeGreaterThan(0);

    // While the loop burns a thread: in-process tasks and pool tasks on the other thread all finish.
    const others: string[] = [];
    const startedAt = Date.now();
    while (Date.now() - startedAt < 4000) {
      others.push(await harness().submit('noop', {}));
      others.push(await harness().submit('compute', { operation: 'fibonacci', input: 1000 }));
      await sleep(400);
    }
    for (const id of others) {
      await expect(harness().waitForState(id, undefined, 5000)).resolves.toMatchObject({ state: 'SUCCESS' });
    }
    expect((await harness().task(hung))!.state).toBe('STARTED');

    const failed = await harness().waitForState(hung, undefined, 15_000);
    expect(failed).toMatchObject({ state: 'FAILURE', errorCode: 'CNV_HARD_TIME_LIMIT', attempts: 1 });
    expect(failed.error).toBe('Hard time limit of 6 s exceeded');
    expect(failed.runtime).toBeGreaterThanOrEqual(5.9);
    expect(failed.runtime).toBeLessThan(8);
    expect(await harness().attemptErrors(hung)).toMatchObject([{ attempt: 1, errorCode: 'CNV_HARD_TIME_LIMIT' }]);
    await waitFor(async () => (await harness().lastSeen(WORKER_NAME))! > seenAtStart, {
      timeoutMs: 6000,
      message: 'a heartbeat after the hang started',
    });

    // The loop is really gone: the worker is idle again, and the pool still serves.
    const cpuBefore = cpuTimeMs(worker.pid);
    await sleep(1000);
    expect(cpuTimeMs(worker.pid) - cpuBefore).toBeLessThan(400);
    const after = await harness().submit('compute', { operation: 'factorial', input: 20 });
    await expect(harness().waitForState(after, undefined, 5000)).resolves.toMatchObject({
      state: 'SUCCESS',
      result: '2432902008176640000',
    });
  });

  it('ends an in-process handler that ignores its signal, without waiting for it', async () => {
    const id = await harness().submit('hang', { seconds: 30 }, { timelimit: [1, null] });
    const task = await harness().waitForState(id, undefined, 10_000);
    expect(task).toMatchObject({ state: 'FAILURE', errorCode: 'CNV_HARD_TIME_LIMIT' });
    expect(task.runtime).toBeLessThan(3);
  });
});

describe('soft time limit', () => {
  it('aborts a cooperative handler through its signal: FAILURE CNV_SOFT_TIME_LIMIT', async () => {
    const id = await harness().submit('sleep', { duration: 30 }, { timelimit: [null, 1] });
    const task = await harness().waitForState(id, undefined, 10_000);
    expect(task).toMatchObject({ state: 'FAILURE', errorCode: 'CNV_SOFT_TIME_LIMIT', attempts: 1 });
    expect(task.error).toBe('Soft time limit of 1 s exceeded');
    expect(task.runtime).toBeGreaterThanOrEqual(0.95);
    expect(task.runtime).toBeLessThan(3);
  });

  it('keeps the result of a handler that finishes anyway', async () => {
    const id = await harness().submit('hang', { seconds: 1 }, { timelimit: [null, 0.3] });
    await expect(harness().waitForState(id, undefined, 10_000)).resolves.toMatchObject({
      state: 'SUCCESS',
      result: 'Hung for 1 seconds.',
    });
  });
});

describe('type defaults', () => {
  it('apply when the header has none: hang ends at its type hard limit of 10 s', async () => {
    const id = await harness().submit('hang', { seconds: 60 }, { timelimit: [null, null] });
    const task = await harness().waitForState(id, undefined, 20_000);
    expect(task).toMatchObject({ state: 'FAILURE', errorCode: 'CNV_HARD_TIME_LIMIT' });
    expect(task.error).toBe('Hard time limit of 10 s exceeded');
  });
});
