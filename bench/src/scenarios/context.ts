/** What every scenario gets: the settings, the result collector and the shared connections. */
import type { Redis } from 'ioredis';
import type { Results } from '../results.js';
import type { Settings } from '../settings.js';
import type { AmqpHandle } from '../util/amqp.js';
import { sleep } from '../util/time.js';

export interface Context {
  settings: Settings;
  results: Results;
  /** For raw publishing and for deleting what a run declared. */
  amqp: AmqpHandle;
  /** Conveyor's and BullMQ's Redis database: polling, timestamps, memory, cleanup. */
  redis: Redis;
  /** Celery's result database, or null when the Celery peer is skipped. */
  celeryRedis: Redis | null;
  log(line: string): void;
}

/** Runs `fn` for every run number, 1-based; each run is retried once if it fails (see retryOnce). */
export async function forEachRun(ctx: Context, fn: (run: number) => Promise<void>): Promise<void> {
  for (let run = 1; run <= ctx.settings.runs; run++) {
    ctx.log(`  run ${run}/${ctx.settings.runs}`);
    await retryOnce(ctx, `run ${run}`, () => fn(run));
  }
}

/** How long to wait for RabbitMQ and Redis to answer again before a retry. */
const SERVICES_WAIT_MS = 120_000;

/**
 * Runs `fn` with its values held back; if it throws, drops them, waits
 * (bounded) until RabbitMQ and Redis answer, and runs it once more. A retry
 * is noted in the report. Shared test machines restart brokers under
 * fault-injection tests; one lost run should not cost the whole benchmark,
 * and a real failure still fails on the second attempt.
 */
export async function retryOnce(ctx: Context, label: string, fn: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    ctx.results.beginRun();
    try {
      await fn();
      ctx.results.commitRun();
      return;
    } catch (error) {
      ctx.results.discardRun();
      if (attempt >= 2) throw error;
      ctx.results.note(`${label} failed and was run again: ${(error as Error).message.split('\n')[0]}`);
      await waitForServices(ctx);
    }
  }
}

/** Resolves once Redis (both databases) and RabbitMQ answer; throws after SERVICES_WAIT_MS. */
export async function waitForServices(ctx: Pick<Context, 'redis' | 'celeryRedis' | 'amqp'>): Promise<void> {
  const deadline = Date.now() + SERVICES_WAIT_MS;
  for (;;) {
    try {
      await ctx.redis.ping();
      await ctx.celeryRedis?.ping();
      await ctx.amqp.get();
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(
          `RabbitMQ or Redis still unavailable after ${SERVICES_WAIT_MS} ms: ${(error as Error).message}`,
        );
      }
      await sleep(1000);
    }
  }
}
