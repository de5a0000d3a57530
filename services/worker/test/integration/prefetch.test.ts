/**
 * The prefetch window: a worker holds WORKER_CONCURRENCY ×
 * WORKER_PREFETCH_MULTIPLIER deliveries but runs only WORKER_CONCURRENCY of
 * them at once, and on SIGTERM the ones still waiting for a slot go back to
 * the queue without having started.
 */
import { expect, it } from 'vitest';
import { startRole } from '../../../../test/support/processes.js';
import { testEnv, useTestPrefix } from '../../../../test/support/services.js';
import { waitFor } from '../../../../test/support/wait.js';
import { useHarness } from './harness.js';

const prefix = useTestPrefix();
const harness = useHarness(prefix);

it('runs WORKER_CONCURRENCY tasks at once, holds the prefetch window, and hands back the waiting ones on SIGTERM', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) ids.push(await harness().submit('hang', { seconds: 1 }));
  const worker = await startRole(
    'worker',
    testEnv(prefix, { WORKER_CONCURRENCY: 2, WORKER_PREFETCH_MULTIPLIER: 3, SHUTDOWN_GRACE_MS: 5000 }),
  );
  const startedIndex = harness().keys.stateIndex('STARTED');
  await waitFor(async () => ((await harness().redis.zcard(startedIndex)) === 2 ? true : null), {
    timeoutMs: 10_000,
    intervalMs: 10,
    message: () => 'two tasks to start',
  });
  // Six deliveries taken (2 × 3), two left in the queue; only two started.
  await waitFor(async () => ((await harness().queueDepth()) === 2 ? true : null), {
    timeoutMs: 5000,
    intervalMs: 10,
    message: () => 'the worker to prefetch six deliveries',
  });
  const running = await harness().redis.zrange(startedIndex, 0, -1);
  expect(running).toHaveLength(2);

  worker.signal('SIGTERM');
  expect((await worker.waitForExit(15_000)).code).toBe(0);

  for (const id of running) await expect(harness().task(id)).resolves.toMatchObject({ state: 'SUCCESS', attempts: 1 });
  // The four that waited for a slot never started; with the two never taken they are all back in the queue.
  const notRun = ids.filter((id) => !running.includes(id));
  for (const id of notRun) expect(await harness().task(id)).toBeNull();
  expect(await harness().queueDepth()).toBe(6);
});
