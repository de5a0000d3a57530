/**
 * HTTP submit: `POST /api/tasks` (a noop) on a real api process, with a
 * worker draining the queue, under autocannon's closed loop at several
 * connection counts; beside it the same load on a bare Fastify route in a
 * process of its own (the HTTP ceiling), and the raw confirmed-publish rate
 * of this broker measured in the same run (every 202 waits for a confirm).
 * Last, Conveyor at half that raw rate (autocannon overallRate): the p99 a
 * moderately loaded api gives.
 */
import { join } from 'node:path';
import getPort from 'get-port';
import { cleanupConveyor, newPrefix, startRole, startWorker, type ConveyorRole } from '../peers/conveyor.js';
import { conveyorMessage } from '../peers/raw.js';
import { publishConfirmed } from '../util/amqp.js';
import { load, type LoadResult } from '../util/load.js';
import { spawnChild, type Child } from '../util/proc.js';
import { hex } from '../util/time.js';
import type { ScenarioName } from '../settings.js';
import { forEachRun, type Context } from './context.js';

const SCENARIO: ScenarioName = 'http-submit';
const BODY = JSON.stringify({ type: 'noop', kwargs: {} });

export const HTTP_SUBJECTS = {
  raw: 'raw confirmed publish',
  conveyor: (c: number) => `Conveyor POST /api/tasks · ${c} conn`,
  bare: (c: number) => `bare Fastify · ${c} conn`,
  half: 'Conveyor @ ½ raw publish rate',
};
export const RPS = { metric: 'req/s', better: 'higher' } as const;
export const P50 = { metric: 'p50 ms', better: 'lower', digits: 2 } as const;
export const P99 = { metric: 'p99 ms', better: 'lower', digits: 2 } as const;
const P99_HIST = { metric: 'p99 ms (autocannon hist.)', better: 'lower' } as const;
const OFFERED = { metric: 'offered req/s', better: 'higher' } as const;

async function rawPublishRate(ctx: Context): Promise<number> {
  const channel = await (await ctx.amqp.get()).createConfirmChannel();
  const queue = `bench-${hex()}.publish`;
  try {
    await channel.assertQueue(queue, { durable: true });
    const { content, options } = conveyorMessage();
    const n = ctx.settings.http.publishMessages;
    const ms = await publishConfirmed(channel, queue, n, content, options);
    return n / (ms / 1000);
  } finally {
    await channel.deleteQueue(queue).catch(() => undefined);
    await channel.close().catch(() => undefined);
  }
}

function record(ctx: Context, subject: string, r: LoadResult): void {
  ctx.results.add(SCENARIO, subject, RPS, r.rps);
  ctx.results.add(SCENARIO, subject, P50, r.p50);
  ctx.results.add(SCENARIO, subject, P99, r.p99);
  if (r.non2xx > 0 || r.errors > 0) ctx.results.note(`${subject}: ${r.non2xx} non-2xx responses, ${r.errors} errors`);
}

async function startBare(ctx: Context): Promise<{ child: Child; url: string }> {
  const port = await getPort({ host: '127.0.0.1' });
  const child = spawnChild(
    'bare-fastify',
    process.execPath,
    [join(ctx.settings.benchRoot, 'dist/peers/bare-fastify.js')],
    {
      cwd: ctx.settings.benchRoot,
      env: { PORT: String(port) },
    },
  );
  try {
    await child.waitForLine(/^BENCH-READY$/, 30_000);
  } catch (error) {
    await child.stop(2000);
    throw error;
  }
  return { child, url: `http://127.0.0.1:${port}` };
}

export async function runHttpSubmit(ctx: Context): Promise<void> {
  const { connections, durationSeconds, warmupSeconds } = ctx.settings.http;
  const maxConnections = Math.max(...connections);
  ctx.log(`http-submit: ${durationSeconds} s per point at ${connections.join(', ')} connections`);
  await forEachRun(ctx, async () => {
    const rawRate = await rawPublishRate(ctx);
    ctx.results.add(SCENARIO, HTTP_SUBJECTS.raw, RPS, rawRate);

    const prefix = newPrefix();
    let worker: ConveyorRole | null = null;
    let api: ConveyorRole | null = null;
    try {
      worker = await startWorker(ctx.settings, prefix, 50);
      api = await startRole(ctx.settings, 'api', prefix);
      const url = `${api.url}/api/tasks`;
      await load({ url, body: BODY, connections: maxConnections, durationSeconds: warmupSeconds });
      for (const c of connections) {
        record(ctx, HTTP_SUBJECTS.conveyor(c), await load({ url, body: BODY, connections: c, durationSeconds }));
      }
      const offered = Math.max(1, Math.floor(rawRate / 2));
      const half = await load({ url, body: BODY, connections: maxConnections, durationSeconds, overallRate: offered });
      record(ctx, HTTP_SUBJECTS.half, half);
      ctx.results.add(SCENARIO, HTTP_SUBJECTS.half, P99_HIST, half.histogramP99);
      ctx.results.add(SCENARIO, HTTP_SUBJECTS.half, OFFERED, offered);
    } finally {
      await api?.child.stop();
      await worker?.child.stop();
      await cleanupConveyor(ctx.amqp, ctx.redis, prefix);
    }

    const bare = await startBare(ctx);
    try {
      const url = `${bare.url}/api/tasks`;
      await load({ url, body: BODY, connections: maxConnections, durationSeconds: warmupSeconds });
      for (const c of connections) {
        record(ctx, HTTP_SUBJECTS.bare(c), await load({ url, body: BODY, connections: c, durationSeconds }));
      }
    } finally {
      await bare.child.stop();
    }
  });
}
