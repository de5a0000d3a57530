/**
 * Celery as the benchmark drives it: Debian's python3-celery, a prefork
 * worker with one pool process per core on the same RabbitMQ, results in
 * Redis (a database of its own), tasks sent by bench/celery/bench_client.py.
 * Each run uses a fresh queue name, which is also the prefix of its task ids,
 * so cleanup deletes exactly its queue, its exchange and its
 * `celery-task-meta-<queue>-*` keys.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Settings } from '../settings.js';
import { deleteAmqp, type AmqpHandle } from '../util/amqp.js';
import { runToEnd, spawnChild, type Child } from '../util/proc.js';
import { deleteKeys, scanKeys } from '../util/redis.js';
import { hex, waitForCount } from '../util/time.js';

export const PYTHON = '/usr/bin/python3';

export function newCeleryQueue(): string {
  return `bench-${hex()}`;
}

function celeryEnv(settings: Settings): Record<string, string> {
  return {
    BENCH_AMQP_URL: settings.amqpUrl,
    BENCH_CELERY_RESULT_URL: settings.celeryResultUrl,
    // Keep the source tree clean of __pycache__.
    PYTHONDONTWRITEBYTECODE: '1',
    PYTHONUNBUFFERED: '1',
  };
}

function celeryDir(settings: Settings): string {
  return join(settings.benchRoot, 'celery');
}

/** Celery's version if /usr/bin/python3 can import celery and redis, else null. */
export function celeryVersionIfInstalled(): string | null {
  if (!existsSync(PYTHON)) return null;
  try {
    return execFileSync(PYTHON, ['-c', 'import celery, redis; print(celery.__version__)'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 30_000,
    }).trim();
  } catch {
    return null;
  }
}

/**
 * The installed Celery version, or null (with the reason) when the peer
 * cannot run. As root on Debian it installs python3-celery and python3-redis
 * first; otherwise the Celery columns are skipped with a message.
 */
export function ensureCelery(log: (line: string) => void): { version: string } | { skip: string } {
  const probe = celeryVersionIfInstalled;
  let version = probe();
  if (version) return { version };
  const root = process.getuid?.() === 0;
  if (root && existsSync('/usr/bin/apt-get') && existsSync('/etc/debian_version')) {
    log('installing python3-celery and python3-redis with apt-get (the Celery peer needs them)');
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
      execFileSync('apt-get', ['install', '-y', '-qq', 'python3-celery', 'python3-redis'], {
        stdio: 'ignore',
        env,
        timeout: 600_000,
      });
    } catch (error) {
      return { skip: `apt-get install python3-celery python3-redis failed: ${(error as Error).message}` };
    }
    version = probe();
    if (version) return { version };
  }
  return {
    skip: `${PYTHON} cannot import celery and redis; install them (Debian: apt-get install -y python3-celery python3-redis) to add the Celery peer`,
  };
}

/**
 * Stops a Celery worker whose work is done. SIGQUIT is Celery's cold
 * shutdown: no waiting for a warm drain (about 1.7 s here) when nothing is
 * running any more.
 */
export function stopCeleryWorker(worker: Child): Promise<void> {
  return worker.stop(15_000, 'SIGQUIT');
}

export async function startCeleryWorker(
  settings: Settings,
  queue: string,
  concurrency = settings.cores,
): Promise<Child> {
  const child = spawnChild(
    'celery-worker',
    PYTHON,
    [
      '-m',
      'celery',
      '-A',
      'bench_tasks',
      'worker',
      '--pool=prefork',
      `--concurrency=${concurrency}`,
      '-Q',
      queue,
      '--without-gossip',
      '--without-mingle',
      '--without-heartbeat',
      '--loglevel=WARNING',
      '-n',
      `${queue}@%h`,
    ],
    { cwd: celeryDir(settings), env: celeryEnv(settings) },
  );
  try {
    await child.waitForLine(/BENCH-READY/, 60_000);
  } catch (error) {
    await child.stop(5000);
    throw error;
  }
  return child;
}

/** Sends `count` noop tasks (ids `<queue>-<i>`); resolves when the sender has exited. */
export async function celerySend(settings: Settings, queue: string, count: number): Promise<void> {
  await runToEnd(
    'celery-send',
    PYTHON,
    ['bench_client.py', 'send', '--queue', queue, '--count', String(count), '--id-prefix', queue],
    { cwd: celeryDir(settings), env: celeryEnv(settings), timeoutMs: 60_000 + count * 5 },
  );
}

/** Sequential apply_async().get() round trips; the samples in ms. */
export async function celeryLatency(
  settings: Settings,
  queue: string,
  iterations: number,
  warmup: number,
): Promise<number[]> {
  const out = await runToEnd(
    'celery-latency',
    PYTHON,
    [
      'bench_client.py',
      'latency',
      '--queue',
      queue,
      '--iterations',
      String(iterations),
      '--warmup',
      String(warmup),
      '--id-prefix',
      `${queue}-lat`,
    ],
    { cwd: celeryDir(settings), env: celeryEnv(settings), timeoutMs: 60_000 + (iterations + warmup) * 100 },
  );
  const line = out.trim().split('\n').pop() ?? '';
  return (JSON.parse(line) as { samples_ms: number[] }).samples_ms;
}

/** DBSIZE of Celery's result database: cheap enough to poll while the worker runs. */
export function resultCount(resultRedis: Redis): Promise<number> {
  return resultRedis.dbsize();
}

export async function waitForResults(
  resultRedis: Redis,
  target: number,
  timeoutMs: number,
  onCount?: (keys: number) => void,
): Promise<void> {
  const what = `${target} keys in Celery's result database`;
  await waitForCount(what, () => resultRedis.dbsize(), target, timeoutMs, onCount);
}

/**
 * Reads every result of the run (`celery-task-meta-<queue>-*`): how many are
 * SUCCESS, and the first and last `date_done` (UTC, microseconds) in ms.
 */
export async function resultWindow(
  resultRedis: Redis,
  queue: string,
): Promise<{ success: number; first: number; last: number }> {
  let success = 0;
  let first = Infinity;
  let last = -Infinity;
  await scanKeys(resultRedis, `celery-task-meta-${queue}-*`, async (keys) => {
    const values = await resultRedis.mget(...keys);
    for (const value of values) {
      if (value === null) continue;
      const meta = JSON.parse(value) as { status?: string; date_done?: string };
      if (meta.status !== 'SUCCESS' || !meta.date_done) continue;
      success++;
      const at = Date.parse(`${meta.date_done}Z`);
      if (at < first) first = at;
      if (at > last) last = at;
    }
  });
  return { success, first, last };
}

/** Deletes the run's queue, its exchange (Celery declares one per queue) and its result keys. */
export async function cleanupCelery(amqp: AmqpHandle, resultRedis: Redis, queue: string): Promise<void> {
  await deleteAmqp(await amqp.get(), [queue], [queue]);
  await deleteKeys(resultRedis, `celery-task-meta-${queue}-*`);
}
