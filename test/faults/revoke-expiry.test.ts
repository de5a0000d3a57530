/**
 * Fault 6: stopping tasks from outside, with real processes.
 *
 *  - a queued task that is revoked is skipped by the worker that receives it
 *    later (acked without running: never started, still REVOKED);
 *  - a task that expires while no worker runs (expires 1 s, worker started
 *    after 2 s) ends REVOKED with CNV_TASK_EXPIRED, without running;
 *  - a running task revoked with `terminate: true` is stopped by its worker:
 *    with one slot, the next task runs right after instead of an hour later;
 *  - a running task revoked without `terminate` runs to its end, but its
 *    outcome does not replace REVOKED.
 */
import { expect, it } from 'vitest';
import { jsonLines, startRole } from '../support/processes.js';
import { testEnv, useTestPrefix } from '../support/services.js';
import { sleep, waitFor } from '../support/wait.js';
import { getTask, revoke, submit, waitForTerminal } from './client.js';
import { summary } from './infra.js';

const prefix = useTestPrefix();

it('revoke of a queued and of a running task, and expiry of a task received late', async () => {
  const api = await startRole('api', testEnv(prefix));

  // No worker yet: both wait in the queue.
  const queued = await submit(api.url, { type: 'sleep', kwargs: { duration: 30 } });
  const expiring = await submit(api.url, { type: 'noop', expires: 1 });
  expect([queued.status, expiring.status]).toEqual([202, 202]);
  const revokedQueued = await revoke(api.url, queued.id);
  expect(revokedQueued.status).toBe(200);
  expect(revokedQueued.body).toMatchObject({ state: 'REVOKED', errorCode: 'CNV_TASK_REVOKED', started: null });
  await sleep(2000);

  // One slot, so a task that is not really stopped would hold up everything after it.
  const worker = await startRole(
    'worker',
    testEnv(prefix, { WORKER_CONCURRENCY: 1, LOG_LEVEL: 'info', WORKER_NAME: `${prefix}-w` }),
  );
  const expired = await waitForTerminal(api.url, expiring.id, 10_000);
  expect(expired).toMatchObject({ state: 'REVOKED', errorCode: 'CNV_TASK_EXPIRED', started: null, runtime: null });
  await waitFor(
    () =>
      jsonLines(worker.stdout).some(
        (l) => l.taskId === queued.id && l.msg === 'duplicate delivery acked without running',
      ),
    { timeoutMs: 10_000, message: 'the worker to skip the revoked task' },
  );
  expect(await getTask(api.url, queued.id)).toMatchObject({ state: 'REVOKED', started: null, worker: null });

  // Running, terminated: the worker stops it and its slot is free again.
  const running = await submit(api.url, { type: 'hang', kwargs: { seconds: 3600 } });
  await waitFor(async () => (await getTask(api.url, running.id)).state === 'STARTED', {
    timeoutMs: 10_000,
    message: 'the hang task to start',
  });
  const terminatedAt = Date.now();
  const terminated = await revoke(api.url, running.id, { terminate: true });
  expect(terminated.status).toBe(200);
  expect(terminated.body).toMatchObject({ state: 'REVOKED', errorCode: 'CNV_TASK_REVOKED', attempts: 1 });
  const next = await submit(api.url, { type: 'greet', kwargs: { name: 'next' } });
  expect((await waitForTerminal(api.url, next.id, 5000)).result).toBe('Hello next');
  const slotFreedMs = Date.now() - terminatedAt;
  expect(jsonLines(worker.stdout).some((l) => l.taskId === running.id && l.msg === 'terminating task')).toBe(true);

  // Running, revoked without terminate: it finishes, but REVOKED stays.
  const finishing = await submit(api.url, { type: 'sleep', kwargs: { duration: 1 } });
  await waitFor(async () => (await getTask(api.url, finishing.id)).state === 'STARTED', {
    timeoutMs: 10_000,
    message: 'the sleep task to start',
  });
  expect((await revoke(api.url, finishing.id)).status).toBe(200);
  await waitFor(
    () => jsonLines(worker.stdout).some((l) => l.taskId === finishing.id && /not recorded/.test(String(l.msg))),
    { timeoutMs: 10_000, message: 'the revoked sleep to end without recording its result' },
  );
  expect(await getTask(api.url, finishing.id)).toMatchObject({ state: 'REVOKED', result: null });

  // A finished task cannot be revoked.
  const conflict = await revoke(api.url, next.id);
  expect(conflict.status).toBe(409);
  expect(conflict.body).toMatchObject({ code: 'CNV_TASK_FINISHED', state: 'SUCCESS' });
  expect(worker.exitStatus).toBeUndefined();

  summary('revoke-and-expiry', {
    queuedRevokedSkipped: true,
    expiredState: `${expired.state}/${String(expired.errorCode)}`,
    msFromTerminateToNextTaskDone: slotFreedMs,
  });
}, 90_000);
