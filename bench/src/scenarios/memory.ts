/**
 * Memory, two measurements:
 *
 * 1. Worker RSS over a long run: one worker (concurrency 50) fed
 *    continuously by the producer (at most `backlog` tasks queued ahead)
 *    until `soakTasks` tasks have finished; VmRSS of the worker process is
 *    sampled every second from /proc. Reported over the last 90 % of the run
 *    (samples taken after 10 % of the tasks finished, once JIT and pools have
 *    warmed up): first, last, min, max, and the spread (max - min) / min.
 *    One run: it is a soak, not a race. Then a second soak with the worker
 *    on V8's own heap growth (V8_HEAP_GROWTH_ENV), the other side of the
 *    memory-for-CPU trade (its CPU shows in the throughput scenario).
 *
 * 2. Redis bytes per finished task: INFO memory `used_memory` before and
 *    after N tasks (worker running and idle at both reads), divided by N,
 *    for Conveyor and for BullMQ jobs with default options (completed jobs
 *    kept, no removeOnComplete) back to back in the same run. As a
 *    cross-check immune to other clients of the same Redis, the sum of
 *    MEMORY USAGE over the run's own keys is reported too.
 */
import {
  cleanupConveyor,
  connectProducer,
  newPrefix,
  startWorker,
  submitNoops,
  successCount,
  waitForSuccess,
  type ConveyorRole,
  V8_HEAP_GROWTH_ENV,
  V8_HEAP_GROWTH_LABEL,
} from '../peers/conveyor.js';
import { addNoops, cleanupQueue, newQueueName, openQueue, startBullWorker, waitForCompleted } from '../peers/bullmq.js';
import type { Producer } from '@conveyor/shared';
import type { ScenarioName } from '../settings.js';
import { rssBytes, type Child } from '../util/proc.js';
import { memoryByClass, usedMemory } from '../util/redis.js';
import { sleep } from '../util/time.js';
import { forEachRun, retryOnce, type Context } from './context.js';

const SCENARIO: ScenarioName = 'memory';
const MiB = 1024 * 1024;

export const MEMORY_SUBJECTS = {
  rss: 'Conveyor worker RSS',
  rssV8Heap: `Conveyor worker RSS, ${V8_HEAP_GROWTH_LABEL}`,
  conveyorBytes: 'Conveyor Redis bytes/task',
  bullmqBytes: 'BullMQ Redis bytes/job',
};
export const MEMORY_METRICS = {
  first: { metric: 'first MiB', better: 'lower', digits: 1 },
  last: { metric: 'last MiB', better: 'lower', digits: 1 },
  min: { metric: 'min MiB', better: 'lower', digits: 1 },
  max: { metric: 'max MiB', better: 'lower', digits: 1 },
  spread: { metric: 'spread %', better: 'lower', digits: 1 },
  rate: { metric: 'tasks/s', better: 'higher' },
  tasks: { metric: 'tasks', better: 'higher' },
  usedMemory: { metric: 'used_memory Δ / task', better: 'lower' },
  keyBytes: { metric: 'MEMORY USAGE / task', better: 'lower' },
} as const;

interface Sample {
  at: number;
  rss: number;
  /** V8 heap in use (from the worker's /metrics), to tell a leak from a heap that is still sizing itself. */
  heapUsed: number | null;
  finished: number;
}

/** `conveyor_nodejs_heap_size_used_bytes` from the worker's Prometheus endpoint, or null. */
async function heapUsed(url: string): Promise<number | null> {
  try {
    const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(500) });
    const text = await response.text();
    const match = /^conveyor_nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([0-9.e+]+)/m.exec(text);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

async function soak(ctx: Context, subject: string, workerEnv: Readonly<Record<string, string>>): Promise<void> {
  const { soakTasks, backlog } = ctx.settings.memory;
  const prefix = newPrefix();
  let worker: ConveyorRole | null = null;
  let producer: Producer | null = null;
  const samples: Sample[] = [];
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();
  try {
    // Results must outlive the run so that Redis, not the TTL, holds them all (a week).
    worker = await startWorker(ctx.settings, prefix, 50, { RESULT_TTL_SECONDS: '604800', ...workerEnv });
    producer = await connectProducer(ctx.settings, prefix);
    const pid = worker.child.pid;
    const { url } = worker;
    let finished = 0;
    const started = Date.now();
    sampler = (async () => {
      while (sampling) {
        const rss = rssBytes(pid);
        if (rss === null) throw new Error('the worker process is gone');
        const finishedNow = await successCount(ctx.redis, prefix);
        samples.push({ at: Date.now() - started, rss, heapUsed: await heapUsed(url), finished: finishedNow });
        await sleep(1000);
      }
    })();
    // Bounded: at least 500 tasks/s or the soak fails, plus a minute.
    const deadline = started + 60_000 + soakTasks * 2;
    let submitted = 0;
    // An object, so the loop below sees what the lanes wrote.
    const state: { failure: Error | null } = { failure: null };
    // Lanes submit one task at a time while fewer than `backlog` are queued
    // ahead of the worker; a poller refreshes the finished count.
    const p = producer;
    const lane = async () => {
      while (submitted < soakTasks && state.failure === null && Date.now() < deadline) {
        if (submitted - finished >= backlog) {
          await sleep(20);
          continue;
        }
        submitted++;
        await p.submit({ type: 'noop', kwargs: {} });
      }
    };
    const lanes = Promise.all(Array.from({ length: 200 }, lane)).catch((error: unknown) => {
      state.failure = error instanceof Error ? error : new Error(String(error));
    });
    let lastReport = started;
    while (finished < soakTasks) {
      if (state.failure) throw state.failure;
      if (Date.now() > deadline) throw new Error(`soak: ${finished}/${soakTasks} finished before the deadline`);
      await sleep(100);
      finished = await successCount(ctx.redis, prefix);
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        const rss = samples.at(-1)?.rss ?? 0;
        ctx.log(`    soak: ${finished}/${soakTasks} finished, worker RSS ${(rss / MiB).toFixed(1)} MiB`);
      }
    }
    await lanes;
    const elapsed = (Date.now() - started) / 1000;
    sampling = false;
    await sampler;
    const tail = samples.filter((s) => s.finished >= soakTasks * 0.1);
    if (tail.length < 2) throw new Error(`soak: only ${tail.length} RSS samples after 10 % of the tasks`);
    const rss = tail.map((s) => s.rss);
    const min = Math.min(...rss);
    const max = Math.max(...rss);
    const { results } = ctx;
    results.add(SCENARIO, subject, MEMORY_METRICS.tasks, soakTasks);
    results.add(SCENARIO, subject, MEMORY_METRICS.rate, soakTasks / elapsed);
    results.add(SCENARIO, subject, MEMORY_METRICS.first, rss[0]! / MiB);
    results.add(SCENARIO, subject, MEMORY_METRICS.last, rss.at(-1)! / MiB);
    results.add(SCENARIO, subject, MEMORY_METRICS.min, min / MiB);
    results.add(SCENARIO, subject, MEMORY_METRICS.max, max / MiB);
    results.add(SCENARIO, subject, MEMORY_METRICS.spread, ((max - min) / min) * 100);
    const heap = tail.map((s) => s.heapUsed).filter((h): h is number => h !== null);
    if (heap.length >= 2) {
      results.note(
        `${subject}: V8 heap used over the same samples: first ${(heap[0]! / MiB).toFixed(1)} MiB, last ${(heap.at(-1)! / MiB).toFixed(1)} MiB, max ${(Math.max(...heap) / MiB).toFixed(1)} MiB`,
      );
    }
    const mib = (v: number | null) => (v === null ? null : Math.round((v / MiB) * 10) / 10);
    const soakSamples = (results.extras.soakSamplesMiB ??= {}) as Record<string, unknown>;
    soakSamples[subject] = samples.map((s) => ({ ...s, rss: mib(s.rss), heapUsed: mib(s.heapUsed) }));
  } finally {
    sampling = false;
    await sampler.catch(() => undefined);
    await producer?.close().catch(() => undefined);
    await worker?.child.stop();
    await cleanupConveyor(ctx.amqp, ctx.redis, prefix);
  }
}

/** used_memory after letting the allocator and lazy frees settle a moment. */
async function settledUsedMemory(ctx: Context): Promise<number> {
  await sleep(300);
  return usedMemory(ctx.redis);
}

async function conveyorBytes(
  ctx: Context,
  tasks: number,
  describeKeys: boolean,
): Promise<{ delta: number; keys: number }> {
  const prefix = newPrefix();
  let worker: ConveyorRole | null = null;
  let producer: Producer | null = null;
  try {
    worker = await startWorker(ctx.settings, prefix, 50);
    producer = await connectProducer(ctx.settings, prefix);
    const before = await settledUsedMemory(ctx);
    await submitNoops(producer, tasks);
    await waitForSuccess(ctx.redis, prefix, tasks, 60_000 + tasks * 10);
    const after = await settledUsedMemory(ctx);
    const classes = await memoryByClass(ctx.redis, `${prefix}:*`, (key) => key.slice(prefix.length + 1).split(':')[0]!);
    const keys = Object.values(classes).reduce((sum, c) => sum + c.bytes, 0);
    if (describeKeys) ctx.results.note(`Conveyor keys by kind (bytes/task): ${describe(classes, tasks)}`);
    return { delta: (after - before) / tasks, keys: keys / tasks };
  } finally {
    await producer?.close().catch(() => undefined);
    await worker?.child.stop();
    await cleanupConveyor(ctx.amqp, ctx.redis, prefix);
  }
}

async function bullmqBytes(
  ctx: Context,
  tasks: number,
  describeKeys: boolean,
): Promise<{ delta: number; keys: number }> {
  const name = newQueueName();
  const queue = openQueue(ctx.settings, name);
  let worker: Child | null = null;
  try {
    await queue.waitUntilReady();
    worker = await startBullWorker(ctx.settings, name, 50);
    const before = await settledUsedMemory(ctx);
    await addNoops(queue, tasks);
    await waitForCompleted(ctx.redis, name, tasks, 60_000 + tasks * 10);
    const after = await settledUsedMemory(ctx);
    const prefix = `bull:${name}:`;
    const classes = await memoryByClass(ctx.redis, `${prefix}*`, (key) => {
      const rest = key.slice(prefix.length);
      return /^\d+$/.test(rest) ? 'job' : rest.split(':')[0]!;
    });
    const keys = Object.values(classes).reduce((sum, c) => sum + c.bytes, 0);
    if (describeKeys) ctx.results.note(`BullMQ keys by kind (bytes/job): ${describe(classes, tasks)}`);
    return { delta: (after - before) / tasks, keys: keys / tasks };
  } finally {
    await worker?.stop();
    await cleanupQueue(queue);
  }
}

function describe(classes: Record<string, { keys: number; bytes: number }>, tasks: number): string {
  return Object.entries(classes)
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .map(([name, c]) => `${name} ${(c.bytes / tasks).toFixed(1)} (${c.keys} keys)`)
    .join(', ');
}

export async function runMemory(ctx: Context): Promise<void> {
  const { soakTasks, bytesTasks } = ctx.settings.memory;
  ctx.log(`memory: Redis bytes per finished task over ${bytesTasks} tasks; worker RSS over ${soakTasks} tasks`);
  await forEachRun(ctx, async (run) => {
    const c = await conveyorBytes(ctx, bytesTasks, run === 1);
    ctx.results.add(SCENARIO, MEMORY_SUBJECTS.conveyorBytes, MEMORY_METRICS.usedMemory, c.delta);
    ctx.results.add(SCENARIO, MEMORY_SUBJECTS.conveyorBytes, MEMORY_METRICS.keyBytes, c.keys);
    const b = await bullmqBytes(ctx, bytesTasks, run === 1);
    ctx.results.add(SCENARIO, MEMORY_SUBJECTS.bullmqBytes, MEMORY_METRICS.usedMemory, b.delta);
    ctx.results.add(SCENARIO, MEMORY_SUBJECTS.bullmqBytes, MEMORY_METRICS.keyBytes, b.keys);
  });
  ctx.log(`  soak: one run of ${soakTasks} tasks, then one with V8's own heap growth`);
  await retryOnce(ctx, 'soak', () => soak(ctx, MEMORY_SUBJECTS.rss, {}));
  await retryOnce(ctx, 'soak', () => soak(ctx, MEMORY_SUBJECTS.rssV8Heap, V8_HEAP_GROWTH_ENV));
}
