/**
 * A poison message: one whose processing kills the worker on every delivery.
 * The test plays the crash itself: each time a worker has started the task
 * it is killed with SIGKILL (no graceful anything), and a new worker is
 * started. After MAX_REDELIVERIES redeliveries the next worker dead-letters
 * the message and records FAILURE instead of running it, and keeps serving.
 */
import { expect, it } from 'vitest';
import { DeadLetterHeaders } from '@conveyor/shared';
import { startRole, type RunningRole } from '../../../../test/support/processes.js';
import { testEnv, useTestPrefix } from '../../../../test/support/services.js';
import { waitFor } from '../../../../test/support/wait.js';
import { useHarness } from './harness.js';

const prefix = useTestPrefix();
const MAX_REDELIVERIES = 2;
const harness = useHarness(prefix);

it(`is dead-lettered after ${MAX_REDELIVERIES} redeliveries, recorded FAILURE CNV_POISON_MESSAGE`, async () => {
  const id = await harness().submit('hang', { seconds: 60 });
  let kills = 0;
  let survivor: RunningRole | undefined;
  // Bounded: the message must be dead-lettered on delivery MAX_REDELIVERIES + 2.
  for (let round = 1; round <= MAX_REDELIVERIES + 3 && survivor === undefined; round++) {
    const name = `poison-${round}@${prefix}`;
    const worker = await startRole(
      'worker',
      testEnv(prefix, { WORKER_NAME: name, MAX_REDELIVERIES, WORKER_CONCURRENCY: 1 }),
    );
    const seen = await waitFor(
      async () => {
        const task = await harness().task(id);
        if (task?.state === 'FAILURE') return 'dead-lettered';
        return task?.state === 'STARTED' && task.worker === name ? 'running' : null;
      },
      { timeoutMs: 15_000, message: `round ${round}: the task to start on ${name} or fail` },
    );
    if (seen === 'dead-lettered') {
      survivor = worker;
    } else {
      // The crash: no ack, no outcome, the broker requeues the delivery as redelivered.
      worker.signal('SIGKILL');
      await worker.waitForExit(5000);
      kills++;
    }
  }
  expect(kills).toBe(MAX_REDELIVERIES + 1);
  expect(survivor).toBeDefined();

  const task = (await harness().task(id))!;
  expect(task).toMatchObject({ state: 'FAILURE', errorCode: 'CNV_POISON_MESSAGE', attempts: 1 });
  expect(task.error).toBe(
    `Redelivered ${MAX_REDELIVERIES + 1} times without finishing (MAX_REDELIVERIES=${MAX_REDELIVERIES})`,
  );
  expect(await harness().attemptErrors(id)).toMatchObject([{ attempt: 1, errorCode: 'CNV_POISON_MESSAGE' }]);

  const dead = await harness().waitForDeadLetter(id);
  expect(dead.properties.headers![DeadLetterHeaders.errorCode]).toBe('CNV_POISON_MESSAGE');
  expect(dead.properties.headers![DeadLetterHeaders.reason]).toBe(task.error);
  expect(await harness().queueDepth()).toBe(0);

  // The worker that refused it is fine and serves the next task, which costs no redelivery count.
  const next = await harness().submit('greet', { name: 'next' });
  await expect(harness().waitForState(next)).resolves.toMatchObject({ state: 'SUCCESS' });
  expect(await harness().redis.exists(harness().keys.redeliveries(next))).toBe(0);
  expect(survivor!.exitStatus).toBeUndefined();
});
