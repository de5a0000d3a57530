/**
 * Fault 5: a task that never ends. `hang {seconds: 3600, cpu: true}` busy-loops
 * in the worker's thread pool without ever looking at its abort signal; the
 * type's hard limit (10 s) must end it for real (the pool thread is
 * terminated) and record FAILURE CNV_HARD_TIME_LIMIT, while the same worker
 * keeps completing other tasks and keeps sending heartbeats (the main thread
 * is never blocked). A second hang without `cpu` (an awaited sleep that
 * ignores the signal) is ended the same way.
 */
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { startRole } from '../support/processes.js';
import { serviceUrls, testEnv, useTestPrefix } from '../support/services.js';
import { sleep } from '../support/wait.js';
import { getTask, submit, waitForTerminal } from './client.js';
import { summary } from './infra.js';

const prefix = useTestPrefix();
const HARD_LIMIT_SECONDS = 10; // the `hang` type's hard limit (shared/src/tasks/builtin.ts)

it('a hard time limit ends a CPU-bound infinite loop while the worker keeps working and beating', async () => {
  const workerName = `${prefix}-w`;
  const api = await startRole('api', testEnv(prefix));
  const worker = await startRole(
    'worker',
    testEnv(prefix, { WORKER_NAME: workerName, WORKER_CONCURRENCY: 4, WORKER_POOL_SIZE: 2 }),
  );
  const redis = new Redis(serviceUrls().redisUrl);
  try {
    const cpu = await submit(api.url, { type: 'hang', kwargs: { seconds: 3600, cpu: true } });
    const idle = await submit(api.url, { type: 'hang', kwargs: { seconds: 3600 } });
    expect([cpu.status, idle.status]).toEqual([202, 202]);

    // While both hang, other tasks on the same worker still finish quickly, and heartbeats advance.
    const beats = new Set<string>();
    const latencies: number[] = [];
    const until = Date.now() + HARD_LIMIT_SECONDS * 1000 - 1500;
    while (Date.now() < until) {
      const started = Date.now();
      const greet = await submit(api.url, { type: 'greet', kwargs: { name: 'meanwhile' } });
      const task = await waitForTerminal(api.url, greet.id, 5000);
      expect(task.result).toBe('Hello meanwhile');
      latencies.push(Date.now() - started);
      const lastSeen = await redis.hget(`${prefix}:worker:${workerName}`, 'lastSeen');
      if (lastSeen !== null) beats.add(lastSeen);
      await sleep(250);
    }
    expect((await getTask(api.url, cpu.id)).state).toBe('STARTED');
    expect(beats.size).toBeGreaterThanOrEqual(2);
    expect(Math.max(...latencies)).toBeLessThan(2000);

    const ended = await Promise.all([cpu.id, idle.id].map((id) => waitForTerminal(api.url, id, 20_000)));
    for (const task of ended) {
      expect(task).toMatchObject({ state: 'FAILURE', errorCode: 'CNV_HARD_TIME_LIMIT' });
      const ran = (Date.parse(task.finished as string) - Date.parse(task.started as string)) / 1000;
      expect(ran).toBeGreaterThanOrEqual(HARD_LIMIT_SECONDS - 0.05);
      expect(ran).toBeLessThan(HARD_LIMIT_SECONDS + 3);
    }
    // The pool slot came back: CPU work still runs there.
    const after = await submit(api.url, { type: 'compute', kwargs: { operation: 'is_prime', input: 7919 } });
    expect((await waitForTerminal(api.url, after.id, 10_000)).result).toBe(true);
    expect(worker.exitStatus).toBeUndefined();

    summary('hard-time-limit', {
      hardLimitSeconds: HARD_LIMIT_SECONDS,
      endedAfterSeconds: ended.map((t) => (Date.parse(t.finished as string) - Date.parse(t.started as string)) / 1000),
      tasksCompletedMeanwhile: latencies.length,
      maxLatencyMeanwhileMs: Math.max(...latencies),
      heartbeatsSeenMeanwhile: beats.size,
    });
  } finally {
    redis.disconnect();
  }
}, 90_000);
