/**
 * Graceful shutdown with work in the thread pool: SIGTERM lets a pool task
 * that fits in SHUTDOWN_GRACE_MS finish and record its result; one that does
 * not is neither failed nor lost: its thread is terminated only after the
 * consumer has drained, the message goes back to the queue, and the next
 * worker runs it.
 */
import { expect, it } from 'vitest';
import { startRole } from '../../../../test/support/processes.js';
import { testEnv, useTestPrefix } from '../../../../test/support/services.js';
import { useHarness } from './harness.js';

const prefix = useTestPrefix();
const harness = useHarness(prefix);

it('SIGTERM: the short pool task finishes, the long one is requeued and runs on the next worker', async () => {
  const env = testEnv(prefix, { WORKER_CONCURRENCY: 4, WORKER_POOL_SIZE: 2, SHUTDOWN_GRACE_MS: 2500 });
  const first = await startRole('worker', env);
  const short = await harness().submit('hang', { seconds: 1, cpu: true });
  const long = await harness().submit('hang', { seconds: 5, cpu: true }, { timelimit: [60, null] });
  await harness().waitForState(short, ['STARTED']);
  await harness().waitForState(long, ['STARTED']);

  const stoppedAt = Date.now();
  first.signal('SIGTERM');
  const exit = await first.waitForExit(15_000);
  expect(exit.code).toBe(0);
  // The grace period, then a prompt exit: the busy thread did not hold the process.
  expect(Date.now() - stoppedAt).toBeLessThan(6000);

  await expect(harness().task(short)).resolves.toMatchObject({ state: 'SUCCESS', result: 'Hung for 1 seconds.' });
  // Not failed by the shutdown: still STARTED, its message back in the queue.
  await expect(harness().task(long)).resolves.toMatchObject({ state: 'STARTED', error: null });
  expect(await harness().queueDepth()).toBe(1);

  await startRole('worker', env);
  await expect(harness().waitForState(long, undefined, 20_000)).resolves.toMatchObject({
    state: 'SUCCESS',
    result: 'Hung for 5 seconds.',
    attempts: 1,
  });
});
