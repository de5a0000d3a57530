/**
 * Latency: sequential submit -> result round trips of a no-op at low load
 * (one at a time), after a warm-up, as p50/p95/p99 in ms:
 *   Conveyor, producer API   producer.submitAndWait(submission, 5000)
 *   Conveyor, HTTP           POST /api/tasks then GET /api/tasks/:id?wait=5 (long-poll)
 *   BullMQ                   queue.add() then job.waitUntilFinished(queueEvents)
 *   Celery                   apply_async().get() (Redis backend: pub/sub wake-up)
 * Every round trip must end in SUCCESS, or the run fails.
 */
import {
  cleanupConveyor,
  connectProducer,
  newPrefix,
  startRole,
  startWorker,
  type ConveyorRole,
} from '../peers/conveyor.js';
import { cleanupQueue, newQueueName, openQueue, openQueueEvents, startBullWorker } from '../peers/bullmq.js';
import { celeryLatency, cleanupCelery, newCeleryQueue, startCeleryWorker, stopCeleryWorker } from '../peers/celery.js';
import type { Producer } from '@conveyor/shared';
import type { ScenarioName } from '../settings.js';
import { httpJson, keepAliveAgent } from '../util/http.js';
import type { Child } from '../util/proc.js';
import { percentiles } from '../util/stats.js';
import { forEachRun, type Context } from './context.js';

const SCENARIO: ScenarioName = 'latency';
export const LATENCY_SUBJECTS = {
  producer: 'Conveyor (producer API)',
  http: 'Conveyor (HTTP, long-poll)',
  bullmq: 'BullMQ (waitUntilFinished)',
  celery: 'Celery (AsyncResult.get)',
};
export const LATENCY_METRICS = {
  p50: { metric: 'p50 ms', better: 'lower', digits: 2 },
  p95: { metric: 'p95 ms', better: 'lower', digits: 2 },
  p99: { metric: 'p99 ms', better: 'lower', digits: 2 },
} as const;

function record(ctx: Context, subject: string, samples: readonly number[]): void {
  const [p50, p95, p99] = percentiles(samples, [50, 95, 99]);
  ctx.results.add(SCENARIO, subject, LATENCY_METRICS.p50, p50!);
  ctx.results.add(SCENARIO, subject, LATENCY_METRICS.p95, p95!);
  ctx.results.add(SCENARIO, subject, LATENCY_METRICS.p99, p99!);
}

/**
 * A round trip this slow is a stall, not a latency: the run fails (and is run
 * again once, with the reason in the report) instead of taking hours.
 */
const STALL_MS = 1000;

/** Times `iterations` calls of `once` after `warmup` untimed ones. */
async function sample(iterations: number, warmup: number, once: () => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < warmup + iterations; i++) {
    const started = performance.now();
    await once();
    const took = performance.now() - started;
    if (took > STALL_MS) throw new Error(`round trip ${i + 1} took ${took.toFixed(0)} ms (stall limit ${STALL_MS} ms)`);
    if (i >= warmup) samples.push(took);
  }
  return samples;
}

async function producerRoundTrip(producer: Producer): Promise<void> {
  const started = performance.now();
  const record = await producer.submitAndWait({ type: 'noop', kwargs: {} }, 5000);
  const took = performance.now() - started;
  if (record?.state !== 'SUCCESS') throw new Error(`task ${record?.id} is ${record?.state ?? 'missing'} after 5 s`);
  if (took > STALL_MS) {
    // Which side stalled: the task's own run (PENDING write to SUCCESS), or the submit and the wake-up around it.
    const ran = Date.parse(record.finished!) - Date.parse(record.created!);
    throw new Error(`round trip took ${took.toFixed(0)} ms, of which PENDING to SUCCESS ${ran} ms`);
  }
}

async function conveyorRun(ctx: Context): Promise<void> {
  const { iterations, warmup } = ctx.settings.latency;
  const prefix = newPrefix();
  let worker: ConveyorRole | null = null;
  let api: ConveyorRole | null = null;
  let producer: Producer | null = null;
  const agent = keepAliveAgent();
  try {
    worker = await startWorker(ctx.settings, prefix, 50);
    api = await startRole(ctx.settings, 'api', prefix);
    producer = await connectProducer(ctx.settings, prefix);
    const p = producer;
    record(ctx, LATENCY_SUBJECTS.producer, await sample(iterations, warmup, () => producerRoundTrip(p)));

    const base = `${api.url}/api/tasks`;
    const body = JSON.stringify({ type: 'noop', kwargs: {} });
    const overHttp = async () => {
      const submitted = await httpJson(agent, 'POST', base, body);
      const { id } = submitted.body as { id?: string };
      if (submitted.status !== 202 || !id) throw new Error(`POST ${base} answered ${submitted.status}`);
      const got = await httpJson(agent, 'GET', `${base}/${id}?wait=5`);
      const { state } = got.body as { state?: string };
      if (got.status !== 200 || state !== 'SUCCESS') throw new Error(`task ${id}: ${got.status} ${state}`);
    };
    record(ctx, LATENCY_SUBJECTS.http, await sample(iterations, warmup, overHttp));
  } finally {
    agent.destroy();
    await producer?.close().catch(() => undefined);
    await api?.child.stop();
    await worker?.child.stop();
    await cleanupConveyor(ctx.amqp, ctx.redis, prefix);
  }
}

async function bullmqRun(ctx: Context): Promise<void> {
  const { iterations, warmup } = ctx.settings.latency;
  const name = newQueueName();
  const queue = openQueue(ctx.settings, name);
  const events = openQueueEvents(ctx.settings, name);
  let worker: Child | null = null;
  try {
    await events.waitUntilReady();
    worker = await startBullWorker(ctx.settings, name, 50);
    const once = async () => {
      const job = await queue.add('noop', {});
      await job.waitUntilFinished(events, 5000);
    };
    record(ctx, LATENCY_SUBJECTS.bullmq, await sample(iterations, warmup, once));
  } finally {
    await worker?.stop();
    await events.close();
    await cleanupQueue(queue);
  }
}

async function celeryRun(ctx: Context): Promise<void> {
  const { iterations, warmup } = ctx.settings.latency;
  const queue = newCeleryQueue();
  let worker: Child | null = null;
  try {
    worker = await startCeleryWorker(ctx.settings, queue);
    record(ctx, LATENCY_SUBJECTS.celery, await celeryLatency(ctx.settings, queue, iterations, warmup));
  } finally {
    if (worker) await stopCeleryWorker(worker);
    await cleanupCelery(ctx.amqp, ctx.celeryRedis!, queue);
  }
}

export async function runLatency(ctx: Context): Promise<void> {
  const { iterations, warmup } = ctx.settings.latency;
  ctx.log(`latency: ${iterations} sequential round trips after ${warmup} warm-up ones`);
  await forEachRun(ctx, async () => {
    await conveyorRun(ctx);
    await bullmqRun(ctx);
    if (ctx.celeryRedis) await celeryRun(ctx);
  });
}
