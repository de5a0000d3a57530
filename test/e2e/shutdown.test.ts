/**
 * SIGTERM to a busy worker loses nothing and runs nothing twice: running
 * tasks finish within the grace period, the rest stays in the queue for the
 * next worker.
 */
import { expect, it } from 'vitest';
import { jsonLines, startRole } from '../support/processes.js';
import { testEnv, useTestPrefix } from '../support/services.js';
import { waitFor } from '../support/wait.js';
import { getTask, mapConcurrent, submit } from './http.js';

const prefix = useTestPrefix();
const TASKS = 200;

function completions(lines: readonly string[]): string[] {
  return jsonLines(lines)
    .filter((line) => line.msg === 'task finished')
    .map((line) => line.taskId as string);
}

it('SIGTERM in the middle of 200 one-second tasks, then a new worker: all succeed, each exactly once', async () => {
  const api = await startRole('api', testEnv(prefix));
  const workerEnv = testEnv(prefix, { WORKER_CONCURRENCY: 20, SHUTDOWN_GRACE_MS: 10_000, LOG_LEVEL: 'debug' });
  const first = await startRole('worker', workerEnv);

  const submitted = await mapConcurrent(Array.from({ length: TASKS }), 32, () =>
    submit(api.url, { type: 'sleep', kwargs: { duration: 1 } }),
  );
  expect(submitted.every((s) => s.status === 202)).toBe(true);
  const ids = submitted.map((s) => s.id);

  // Mid-run: some batches done, most still queued or running.
  await waitFor(() => completions(first.stdout).length >= 40, { timeoutMs: 30_000, message: 'first batches' });
  first.signal('SIGTERM');
  const exit = await first.waitForExit(30_000);
  expect(exit.code).toBe(0);
  const doneByFirst = completions(first.stdout).length;
  expect(doneByFirst).toBeLessThan(TASKS);

  const second = await startRole('worker', workerEnv);
  await waitFor(
    async () => {
      const states = await mapConcurrent(ids, 32, async (id) => (await getTask(api.url, id)).state);
      return states.every((s) => s === 'SUCCESS');
    },
    { timeoutMs: 60_000, intervalMs: 500, message: 'all 200 tasks to succeed' },
  );

  const all = [...completions(first.stdout), ...completions(second.stdout)];
  const counts = new Map<string, number>();
  for (const id of all) counts.set(id, (counts.get(id) ?? 0) + 1);
  expect(ids.every((id) => counts.get(id) === 1)).toBe(true);
  expect(all).toHaveLength(TASKS);
});
