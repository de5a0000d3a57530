/**
 * End-to-end throughput: N no-op tasks are queued first, then the workers
 * start, and the rate is N over the time from the first to the last task
 * recorded as finished -- read from each system's own finish timestamps
 * (Conveyor's SUCCESS index scores, BullMQ's completed-set scores (finishedOn),
 * Celery's date_done, the raw loop's clock), so process start-up, which
 * differs between Node and Python, is not counted. The rate including
 * start-up (spawn to the last finish) is reported beside it.
 */
import { loadConfig } from '@conveyor/shared';
import {
  cleanupConveyor,
  connectProducer,
  newPrefix,
  startWorker,
  submitNoops,
  successWindow,
  waitForSuccess,
  type ConveyorRole,
  V8_HEAP_GROWTH_ENV,
  V8_HEAP_GROWTH_LABEL,
} from '../peers/conveyor.js';
import {
  addNoops,
  cleanupQueue,
  completedWindow,
  newQueueName,
  openQueue,
  startBullWorker,
  waitForCompleted,
} from '../peers/bullmq.js';
import {
  celerySend,
  cleanupCelery,
  newCeleryQueue,
  resultWindow,
  startCeleryWorker,
  stopCeleryWorker,
  waitForResults,
} from '../peers/celery.js';
import { brokerThroughput, rawThroughput } from '../peers/raw.js';
import { CPU_ROLES, CpuMeter, type CpuPerTask, type CpuRole } from '../util/cpu.js';
import type { Child } from '../util/proc.js';
import { forEachRun, type Context } from './context.js';

export const SUBJECTS = {
  conveyor: 'Conveyor',
  conveyorV8Heap: `Conveyor, worker ${V8_HEAP_GROWTH_LABEL}`,
  bullmq: 'BullMQ',
  celery: 'Celery prefork',
  raw: 'raw amqplib+Redis',
  broker: 'raw amqplib consume+ack (broker only)',
} as const;

export const RATE = { metric: 'tasks/s', better: 'higher' } as const;
export const RATE_WITH_STARTUP = { metric: 'tasks/s incl. start-up', better: 'higher' } as const;

export interface Rate {
  rate: number;
  /** Spawn to last finish; none for a loop inside the benchmark process. */
  withStartup?: number;
  /** CPU µs per task by process role, between 10 % and 90 % of the tasks finished. */
  cpu: CpuPerTask | null;
}

/** The CPU metric of one role, e.g. "RabbitMQ CPU µs/task". */
export const cpuMetric = (role: CpuRole | 'total') => ({ metric: `${role} CPU µs/task`, better: 'lower' }) as const;

/** Time allowed for N tasks to finish: at least 100 tasks/s, plus a minute for start-up. */
const finishTimeout = (tasks: number) => 60_000 + tasks * 10;

const windowRate = (tasks: number, first: number, last: number) => (tasks - 1) / (Math.max(last - first, 1) / 1000);

/** Starts `count` processes; if one fails, stops the others before rethrowing. */
export async function startAll<T extends { stop(): Promise<void> }>(
  count: number,
  start: () => Promise<T>,
): Promise<T[]> {
  const settled = await Promise.allSettled(Array.from({ length: count }, start));
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((s) => s.stop()));
    throw failed.reason;
  }
  return started;
}

export async function conveyorThroughput(
  ctx: Context,
  {
    tasks,
    concurrency,
    processes,
    workerEnv = {},
  }: { tasks: number; concurrency: number; processes: number; workerEnv?: Readonly<Record<string, string>> },
): Promise<Rate> {
  const { settings, redis, amqp } = ctx;
  const prefix = newPrefix();
  const producer = await connectProducer(settings, prefix);
  let workers: ConveyorRole[] = [];
  let producerOpen = true;
  try {
    await submitNoops(producer, tasks);
    await producer.close();
    producerOpen = false;
    const spawned = Date.now();
    workers = await startAll(processes, async () => {
      const role = await startWorker(settings, prefix, concurrency, workerEnv);
      return { ...role, stop: () => role.child.stop() };
    });
    const meter = new CpuMeter(
      workers.map((w) => w.child.pid),
      tasks,
      ['RabbitMQ', 'Redis'],
    );
    await waitForSuccess(redis, prefix, tasks, finishTimeout(tasks), (n) => meter.observe(n));
    const done = Date.now();
    const { first, last } = await successWindow(redis, prefix);
    return {
      rate: windowRate(tasks, first, last),
      withStartup: tasks / ((done - spawned) / 1000),
      cpu: meter.perTask,
    };
  } finally {
    await Promise.all(workers.map((w) => w.child.stop()));
    if (producerOpen) await producer.close().catch(() => undefined);
    await cleanupConveyor(amqp, redis, prefix);
  }
}

export async function bullmqThroughput(ctx: Context, tasks: number, concurrency: number): Promise<Rate> {
  const { settings, redis } = ctx;
  const name = newQueueName();
  const queue = openQueue(settings, name);
  let worker: Child | null = null;
  try {
    await addNoops(queue, tasks);
    const spawned = Date.now();
    worker = await startBullWorker(settings, name, concurrency);
    // BullMQ does not use RabbitMQ: what the broker did meanwhile belongs to no one's task.
    const meter = new CpuMeter([worker.pid], tasks, ['Redis']);
    await waitForCompleted(redis, name, tasks, finishTimeout(tasks), (n) => meter.observe(n));
    const done = Date.now();
    const { first, last } = await completedWindow(redis, name);
    return {
      rate: windowRate(tasks, first, last),
      withStartup: tasks / ((done - spawned) / 1000),
      cpu: meter.perTask,
    };
  } finally {
    await worker?.stop();
    await cleanupQueue(queue);
  }
}

export async function celeryThroughput(ctx: Context, tasks: number): Promise<Rate> {
  const { settings, amqp } = ctx;
  const results = ctx.celeryRedis!;
  const queue = newCeleryQueue();
  let worker: Child | null = null;
  try {
    const before = await results.dbsize();
    await celerySend(settings, queue, tasks);
    const spawned = Date.now();
    worker = await startCeleryWorker(settings, queue);
    const meter = new CpuMeter([worker.pid], tasks, ['RabbitMQ', 'Redis']);
    await waitForResults(results, before + tasks, finishTimeout(tasks), (keys) => meter.observe(keys - before));
    const done = Date.now();
    const { success, first, last } = await resultWindow(results, queue);
    if (success !== tasks) throw new Error(`Celery stored ${success} SUCCESS results, expected ${tasks}`);
    return {
      rate: windowRate(tasks, first, last),
      withStartup: tasks / ((done - spawned) / 1000),
      cpu: meter.perTask,
    };
  } finally {
    if (worker) await stopCeleryWorker(worker);
    await cleanupCelery(amqp, results, queue);
  }
}

function addRate(ctx: Context, subject: string, rate: Rate): void {
  ctx.results.add('throughput', subject, RATE, rate.rate);
  if (rate.withStartup !== undefined) ctx.results.add('throughput', subject, RATE_WITH_STARTUP, rate.withStartup);
  if (rate.cpu === null) return;
  let total = 0;
  for (const role of CPU_ROLES) {
    const value = rate.cpu[role];
    if (value === undefined) continue;
    ctx.results.add('throughput', subject, cpuMetric(role), value);
    total += value;
  }
  ctx.results.add('throughput', subject, cpuMetric('total'), total);
}

/** The prefetch window a Conveyor worker holds at `concurrency` (the worker's own default multiplier). */
function workerPrefetch(concurrency: number): number {
  return loadConfig('worker', { WORKER_CONCURRENCY: String(concurrency), LOG_LEVEL: 'silent' }).workerPrefetch;
}

export async function runThroughput(ctx: Context): Promise<void> {
  const { tasks, celeryTasks, concurrency } = ctx.settings.throughput;
  ctx.log(`throughput: ${tasks} no-op tasks (Celery ${celeryTasks}), concurrency ${concurrency}, one worker process`);
  await forEachRun(ctx, async () => {
    addRate(ctx, SUBJECTS.conveyor, await conveyorThroughput(ctx, { tasks, concurrency, processes: 1 }));
    addRate(
      ctx,
      SUBJECTS.conveyorV8Heap,
      await conveyorThroughput(ctx, { tasks, concurrency, processes: 1, workerEnv: V8_HEAP_GROWTH_ENV }),
    );
    addRate(ctx, SUBJECTS.bullmq, await bullmqThroughput(ctx, tasks, concurrency));
    if (ctx.celeryRedis) addRate(ctx, SUBJECTS.celery, await celeryThroughput(ctx, celeryTasks));

    const raw = await rawThroughput(ctx.amqp, ctx.settings.redisUrl, tasks, concurrency);
    addRate(ctx, SUBJECTS.raw, { rate: raw, cpu: null });
    addRate(ctx, SUBJECTS.broker, await brokerThroughput(ctx.amqp, tasks, workerPrefetch(concurrency)));
  });
}
