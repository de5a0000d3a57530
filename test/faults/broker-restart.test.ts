/**
 * Fault 2: RabbitMQ restarts (`rabbitmqctl stop_app`, then `start_app`) in
 * the middle of 1,000 submissions, with a worker consuming all along.
 *
 * The submissions come in three phases: 300 before the stop; up to 400 at a
 * client's pace (40/s) while the broker is down or coming back; the rest once
 * the api says it is ready again.
 *
 * Asserted:
 *  - every submission got 202 or 503 (CNV_BROKER_UNAVAILABLE with
 *    Retry-After), never anything else, and never hung;
 *  - every 202 task ends terminal with its result: an accepted task survives
 *    the restart (durable queue, persistent message, confirmed before 202);
 *  - the api and the worker recover without a restart: /ready goes false,
 *    then true again, and every submission after that is a 202;
 *  - tasks that ran although their submission got a 503 are counted (a
 *    publish whose confirm was lost with the connection may still have
 *    reached the queue; the client was told to retry, so this is the
 *    at-least-once side of the contract, not a loss).
 *
 * The broker is shared by the whole machine, so `finally` starts it again
 * whatever happened.
 */
import { expect, it } from 'vitest';
import { startRole } from '../support/processes.js';
import { connectRedis, testEnv, useTestPrefix } from '../support/services.js';
import { sleep } from '../support/wait.js';
import { isReady, mapConcurrent, tally, waitAllTerminal, waitForReadiness } from './client.js';
import { ensureRabbitRunning, skipUnlessRabbitControllable, startRabbit, stopRabbit, summary } from './infra.js';

const prefix = useTestPrefix();
const SUBMITS = 1000;
const BEFORE = 300;
const DURING_MAX = 400;

interface Attempt {
  status: number;
  code?: string;
  id?: string;
  retryAfter?: string | null;
  ms: number;
  phase: 'before' | 'during' | 'after';
}

async function submitOnce(apiUrl: string, phase: Attempt['phase']): Promise<Attempt> {
  const started = Date.now();
  try {
    const response = await fetch(`${apiUrl}/api/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'sleep', kwargs: { duration: 0.05 } }),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await response.json()) as { id?: string; code?: string };
    return {
      status: response.status,
      ...(body.code === undefined ? {} : { code: body.code }),
      ...(body.id === undefined ? {} : { id: body.id }),
      retryAfter: response.headers.get('retry-after'),
      ms: Date.now() - started,
      phase,
    };
  } catch {
    return { status: 0, ms: Date.now() - started, phase };
  }
}

it('RabbitMQ stop_app/start_app during 1,000 submits: 202 or 503 only, every 202 task finishes, no restarts', async (context) => {
  await skipUnlessRabbitControllable(context, 'RabbitMQ restart');
  const api = await startRole('api', testEnv(prefix));
  const worker = await startRole('worker', testEnv(prefix, { WORKER_CONCURRENCY: 16, WORKER_NAME: `${prefix}-w` }));
  const attempts: Attempt[] = [];
  let stopMs = 0;
  let startMs = 0;
  let apiRecoveryMs = 0;
  let workerRecoveryMs = 0;
  let apiWentUnready = false;

  try {
    // Phase 1: a healthy broker.
    attempts.push(...(await mapConcurrent(Array.from({ length: BEFORE }), 16, () => submitOnce(api.url, 'before'))));

    // Phase 2: stop and start the broker while clients keep submitting at 40/s.
    let outage = true;
    const watchApi = (async () => {
      while (outage) {
        if (!(await isReady(api.url))) apiWentUnready = true;
        await sleep(100);
      }
    })();
    const clients = Array.from({ length: 4 }, async () => {
      while (outage && attempts.filter((a) => a.phase === 'during').length < DURING_MAX) {
        attempts.push(await submitOnce(api.url, 'during'));
        await sleep(100);
      }
    });
    const fault = (async () => {
      let t = Date.now();
      await stopRabbit();
      stopMs = Date.now() - t;
      await sleep(2000);
      t = Date.now();
      await startRabbit();
      startMs = Date.now() - t;
      t = Date.now();
      apiRecoveryMs = await waitForReadiness(api.url, true, 60_000);
      workerRecoveryMs = await waitForReadiness(worker.url, true, 60_000);
      outage = false;
    })();
    await fault.finally(() => (outage = false));
    await Promise.all([...clients, watchApi]);

    // Phase 3: recovered, no restart of either process.
    const rest = SUBMITS - attempts.length;
    attempts.push(...(await mapConcurrent(Array.from({ length: rest }), 16, () => submitOnce(api.url, 'after'))));
  } finally {
    await ensureRabbitRunning();
  }

  expect(attempts).toHaveLength(SUBMITS);
  expect(api.exitStatus).toBeUndefined();
  expect(worker.exitStatus).toBeUndefined();
  expect(apiWentUnready).toBe(true);
  for (const attempt of attempts) {
    if (attempt.status === 202) continue;
    expect(attempt, 'a refused submission').toMatchObject({
      status: 503,
      code: 'CNV_BROKER_UNAVAILABLE',
      retryAfter: '5',
    });
  }
  expect(attempts.filter((a) => a.phase === 'before').every((a) => a.status === 202)).toBe(true);
  expect(attempts.filter((a) => a.phase === 'after').every((a) => a.status === 202)).toBe(true);
  const refused = attempts.filter((a) => a.status === 503);
  expect(refused.length).toBeGreaterThan(0);

  const ids = attempts.filter((a) => a.status === 202).map((a) => a.id!);
  const tasks = await waitAllTerminal(api.url, ids, 120_000);
  expect(tasks.every((t) => t.state === 'SUCCESS')).toBe(true);

  // Records beyond the 202s: refused submissions whose message reached the queue anyway.
  const redis = await connectRedis();
  const recorded = await redis.llen(`${prefix}:tasks`);
  await redis.quit();

  summary('rabbitmq-restart', {
    submits: SUBMITS,
    accepted: ids.length,
    refused503: refused.length,
    byPhase: tally(attempts.map((a) => `${a.phase}:${a.status}`)),
    slowest503Ms: Math.max(...refused.map((a) => a.ms)),
    stopAppMs: stopMs,
    startAppMs: startMs,
    apiReadyAfterStartMs: apiRecoveryMs,
    workerReadyAfterApiMs: workerRecoveryMs,
    acceptedTerminal: tasks.length,
    ranDespite503: recorded - ids.length,
  });
}, 300_000);
