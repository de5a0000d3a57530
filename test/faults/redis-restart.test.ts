/**
 * Fault 3: Redis restarts (`redis-cli shutdown nosave`, then started again
 * exactly as infra/local/prepare.sh does) while a worker is busy and tasks
 * wait in the queue. The local Redis has no persistence, so it comes back
 * EMPTY: every record written before is gone. What the test can and does
 * assert is therefore about the outcomes written after the restart and about
 * acks, not about the old records:
 *
 *  1. No ack before the outcome is written. Two long tasks (sleep 4 s) fill
 *     the worker's two slots; Redis goes down while they run. Their handlers
 *     finish during the outage, but their messages stay unacked (RabbitMQ
 *     reports them unacknowledged) and no further message is delivered (the
 *     ready count does not move), because the worker acks only after the
 *     outcome is in Redis, and its Redis client queues the write until Redis
 *     is back.
 *  2. Every task whose message was still in the broker when Redis went down
 *     (40 short sleeps, accepted before the outage) ends SUCCESS after the
 *     restart, its record re-created by the worker from the message (type,
 *     kwargs): nothing that was still queued is lost with the dataset.
 *  3. Submissions during the outage get a prompt 503 CNV_STORE_UNAVAILABLE
 *     (nothing is published without its record); submissions after it are
 *     202 and finish. The api and the worker report not-ready during the
 *     outage and recover without a restart.
 *  4. The two tasks that were running: their records were lost with the old
 *     dataset, and their late outcome meets an empty store. The test reports
 *     whether they ended with a record (SUCCESS) or none (404) rather than
 *     asserting either; with persistence enabled they would keep theirs.
 *
 * Skipped, with a message, unless the Redis in use is the local one on
 * 127.0.0.1:6379. `finally` starts Redis again whatever happened.
 */
import { expect, it } from 'vitest';
import { startRole } from '../support/processes.js';
import { connectAmqp, testEnv, useTestPrefix } from '../support/services.js';
import { sleep, waitFor } from '../support/wait.js';
import { getTask, isReady, mapConcurrent, submit, waitAllTerminal, waitForReadiness } from './client.js';
import { ensureRedisRunning, run, skipUnlessRedisRestartable, startRedis, stopRedis, summary } from './infra.js';

const prefix = useTestPrefix();
const QUEUED = 40;
const LONG_SECONDS = 4;
const CONCURRENCY = 2;
/** Deliveries the worker holds: the two long tasks and the two waiting for a slot behind them. */
const PREFETCH = CONCURRENCY * 2;

async function queueCounts(queue: string): Promise<{ ready: number; unacked: number }> {
  const out = await run('rabbitmqctl', ['-q', 'list_queues', 'name', 'messages_ready', 'messages_unacknowledged']);
  for (const line of out.split('\n')) {
    const [name, ready, unacked] = line.trim().split(/\s+/);
    if (name === queue) return { ready: Number(ready), unacked: Number(unacked) };
  }
  throw new Error(`queue ${queue} not listed`);
}

it('Redis restart mid-run: nothing acked before its outcome is written, queued tasks all finish, roles recover', async (context) => {
  await skipUnlessRedisRestartable(context, 'Redis restart');
  const api = await startRole('api', testEnv(prefix));
  const worker = await startRole(
    'worker',
    testEnv(prefix, {
      WORKER_CONCURRENCY: CONCURRENCY,
      WORKER_PREFETCH_MULTIPLIER: PREFETCH / CONCURRENCY,
      WORKER_NAME: `${prefix}-w`,
    }),
  );
  const queue = `${prefix}.default`;
  const amqp = await connectAmqp();
  const channel = await amqp.createChannel();

  const long = await mapConcurrent([0, 1], 2, () =>
    submit(api.url, { type: 'sleep', kwargs: { duration: LONG_SECONDS } }),
  );
  const longIds = long.map((s) => s.id);
  await waitFor(
    async () => (await Promise.all(longIds.map((id) => getTask(api.url, id)))).every((t) => t.state === 'STARTED'),
    { timeoutMs: 10_000, intervalMs: 50, message: 'both long tasks to start' },
  );
  const longStarted = Date.now();
  const queued = await mapConcurrent(Array.from({ length: QUEUED }), 8, () =>
    submit(api.url, { type: 'sleep', kwargs: { duration: 0.2 } }),
  );
  expect(queued.map((s) => s.status)).toEqual(Array(QUEUED).fill(202));
  const queuedIds = queued.map((s) => s.id);

  let downMs = 0;
  let apiRecoveryMs = 0;
  let workerRecoveryMs = 0;
  const refused: { status: number; code: unknown; ms: number }[] = [];
  const readyCounts: number[] = [];
  let during: { ready: number; unacked: number } | undefined;
  let rolesUnready = { api: true, worker: true };
  try {
    const stoppedAt = Date.now();
    await stopRedis();

    // The api refuses submissions promptly: nothing is published without its record.
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const response = await fetch(`${api.url}/api/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'noop' }),
      });
      refused.push({
        status: response.status,
        code: ((await response.json()) as { code?: unknown }).code,
        ms: Date.now() - started,
      });
    }
    rolesUnready = { api: !(await isReady(api.url)), worker: !(await isReady(worker.url)) };

    // Stay down until the long handlers have returned (plus a margin), watching the queue.
    while (Date.now() < longStarted + LONG_SECONDS * 1000 + 1500 || Date.now() < stoppedAt + 3000) {
      readyCounts.push((await channel.checkQueue(queue)).messageCount);
      await sleep(200);
    }
    during = await queueCounts(queue);
    readyCounts.push((await channel.checkQueue(queue)).messageCount);

    await startRedis();
    downMs = Date.now() - stoppedAt;
    apiRecoveryMs = await waitForReadiness(api.url, true, 60_000);
    workerRecoveryMs = await waitForReadiness(worker.url, true, 60_000);
  } finally {
    await ensureRedisRunning();
    await amqp.close().catch(() => undefined);
  }

  // 3. Prompt 503s while down; both roles said so.
  for (const r of refused) {
    expect(r).toMatchObject({ status: 503, code: 'CNV_STORE_UNAVAILABLE' });
    expect(r.ms).toBeLessThan(3000);
  }
  expect(rolesUnready).toEqual({ api: true, worker: true });
  // 1. The long handlers returned during the outage, yet their messages stayed unacked
  //    (as did the two that could not record their start), and nothing else was
  //    delivered: no ack before the outcome is written.
  const held = PREFETCH - longIds.length;
  expect(during).toEqual({ ready: QUEUED - held, unacked: PREFETCH });
  expect(new Set(readyCounts)).toEqual(new Set([QUEUED - held]));

  // 2. Everything that was still queued finishes, its record rebuilt from the message.
  const after = await mapConcurrent(Array.from({ length: 10 }), 5, () => submit(api.url, { type: 'noop' }));
  expect(after.map((s) => s.status)).toEqual(Array(10).fill(202));
  const tasks = await waitAllTerminal(api.url, [...queuedIds, ...after.map((s) => s.id)], 60_000);
  for (const task of tasks.slice(0, QUEUED)) {
    expect(task).toMatchObject({ state: 'SUCCESS', type: 'sleep', kwargs: { duration: 0.2 }, attempts: 1 });
  }
  expect(tasks.slice(QUEUED).every((t) => t.state === 'SUCCESS')).toBe(true);

  // 4. The two that were running when the dataset vanished.
  const longOutcome = await Promise.all(
    longIds.map(async (id) => {
      const response = await fetch(`${api.url}/api/tasks/${id}`);
      return response.status === 200 ? ((await response.json()) as { state: string }).state : response.status;
    }),
  );
  expect(longOutcome.every((o) => o === 404 || o === 'SUCCESS')).toBe(true);
  expect(api.exitStatus).toBeUndefined();
  expect(worker.exitStatus).toBeUndefined();

  summary('redis-restart', {
    queuedAtOutage: QUEUED,
    queuedFinished: tasks.slice(0, QUEUED).filter((t) => t.state === 'SUCCESS').length,
    runningAtOutage: 2,
    runningOutcome: longOutcome,
    unackedDuringOutage: during?.unacked,
    refused503: refused.length,
    slowest503Ms: Math.max(...refused.map((r) => r.ms)),
    redisDownMs: downMs,
    apiReadyAfterRedisMs: apiRecoveryMs,
    workerReadyAfterApiMs: workerRecoveryMs,
    submittedAfter: after.length,
  });
}, 120_000);
