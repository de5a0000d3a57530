/**
 * Fault injection for the fault suite: stop and start the local RabbitMQ and
 * Redis, close chosen broker connections, skip a fault the machine cannot
 * inject, and print one JSON summary line per fault for the README.
 *
 * Every command has a deadline, and every "stop" has a matching "make sure it
 * runs again" that a test calls in `finally`, so a failing test never leaves
 * the machine without its broker or its Redis. Only loopback servers are
 * touched: the restarts refuse any URL that is not the local default.
 */
import { execFile } from 'node:child_process';
import type { TestContext } from 'vitest';
import { probeAmqp, probeRedis } from '../support/probes.js';
import { serviceUrls } from '../support/services.js';
import { waitFor, type WaitOptions } from '../support/wait.js';

/** Runs a command with a deadline; resolves with its stdout, rejects with its stderr. */
export function run(command: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Prints `{"fault": name, ...numbers}` on one line: the numbers the README quotes. */
export function summary(fault: string, numbers: Record<string, unknown>): void {
  console.log(JSON.stringify({ fault, ...numbers }));
}

function isLocal(url: string, port: number): boolean {
  const parsed = new URL(url);
  return ['localhost', '127.0.0.1', '[::1]'].includes(parsed.hostname) && Number(parsed.port || port) === port;
}

/** Skips the running test, with a warning that says why, when `unavailable` names a reason; `what` names the fault. */
function skipIf(context: TestContext, what: string, unavailable: string | undefined): void {
  if (unavailable !== undefined) {
    console.warn(`[faults] skipping the ${what}: ${unavailable}`);
    context.skip();
  }
}

/** Waits (bounded) until `probe` resolves, with `up`, or until it rejects, without. */
async function waitForProbe(probe: () => Promise<void>, up: boolean, options: WaitOptions): Promise<void> {
  await waitFor(
    () =>
      probe().then(
        () => up,
        () => !up,
      ),
    options,
  );
}

/** For `finally`: runs `start` unless `probe` resolves. Never throws. */
async function ensureRunning(service: string, probe: () => Promise<void>, start: () => Promise<void>): Promise<void> {
  try {
    await probe();
    return;
  } catch {
    // not answering: start it
  }
  try {
    await start();
  } catch (error) {
    console.error(`[faults] could not restart ${service}: ${(error as Error).message}`);
  }
}

// ------------------------------------------------------------------ RabbitMQ

/** Why the broker cannot be restarted here, or undefined when it can (a local node and rabbitmqctl). */
export async function rabbitRestartUnavailable(): Promise<string | undefined> {
  if (!isLocal(serviceUrls().amqpUrl, 5672)) return `AMQP_URL is not the local RabbitMQ on port 5672`;
  try {
    await run('rabbitmqctl', ['-q', 'status'], 30_000);
    return undefined;
  } catch (error) {
    return `rabbitmqctl cannot reach the local node: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** Skips the running test (the `what` fault) unless `rabbitRestartUnavailable` says rabbitmqctl can be used here. */
export async function skipUnlessRabbitControllable(context: TestContext, what: string): Promise<void> {
  skipIf(context, what, await rabbitRestartUnavailable());
}

/** `rabbitmqctl stop_app`: the node stays up, the broker application (and every connection) stops. */
export async function stopRabbit(): Promise<void> {
  await run('rabbitmqctl', ['-q', 'stop_app'], 60_000);
}

/** `rabbitmqctl start_app`, then waits until an AMQP handshake succeeds. */
export async function startRabbit(): Promise<void> {
  await run('rabbitmqctl', ['-q', 'start_app'], 90_000);
  await waitForAmqp();
}

export async function waitForAmqp(timeoutMs = 60_000): Promise<void> {
  await waitForProbe(() => probeAmqp(serviceUrls().amqpUrl, 2000), true, {
    timeoutMs,
    intervalMs: 250,
    message: 'RabbitMQ to accept AMQP connections',
  });
}

/** For `finally`: starts the broker application if it does not answer. Never throws. */
export async function ensureRabbitRunning(): Promise<void> {
  await ensureRunning('RabbitMQ', () => probeAmqp(serviceUrls().amqpUrl, 3000), startRabbit);
}

/**
 * Closes the broker connections whose `connection_name` matches, the way
 * RabbitMQ does on `close_all_connections` (a server-initiated
 * connection.close), but only ours: the broker is shared with other runs.
 * Resolves with how many were closed.
 */
export async function closeConnectionsNamed(match: (name: string) => boolean, reason: string): Promise<number> {
  const listing = await run('rabbitmqctl', ['-q', 'list_connections', 'pid', 'client_properties'], 30_000);
  const pids: string[] = [];
  for (const line of listing.split('\n')) {
    const pid = /^(<[^>]+>)\s/.exec(line)?.[1];
    const name = /\{"connection_name","([^"]*)"\}/.exec(line)?.[1];
    if (pid !== undefined && name !== undefined && match(name)) pids.push(pid);
  }
  for (const pid of pids) await run('rabbitmqctl', ['-q', 'close_connection', pid, reason], 30_000);
  return pids.length;
}

// --------------------------------------------------------------------- Redis

const LOCAL_REDIS_PORT = 6379;
/** Exactly how infra/local/prepare.sh starts it: loopback only, no persistence. */
const REDIS_START_ARGS = [
  '--daemonize',
  'yes',
  '--bind',
  '127.0.0.1',
  '--port',
  String(LOCAL_REDIS_PORT),
  '--save',
  '',
  '--appendonly',
  'no',
];

/** Why Redis cannot be restarted here, or undefined when it can. */
export async function redisRestartUnavailable(): Promise<string | undefined> {
  if (!isLocal(serviceUrls().redisUrl, LOCAL_REDIS_PORT)) {
    return 'REDIS_URL is not the local Redis on 127.0.0.1:6379';
  }
  try {
    await run('redis-server', ['--version'], 10_000);
    const pong = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(LOCAL_REDIS_PORT), 'ping'], 10_000);
    if (!pong.includes('PONG')) return `redis-cli ping answered ${pong.trim()}`;
    return undefined;
  } catch (error) {
    return `redis-server or redis-cli unusable: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** Skips the running test (the `what` fault) unless `redisRestartUnavailable` says Redis can be restarted here. */
export async function skipUnlessRedisRestartable(context: TestContext, what: string): Promise<void> {
  skipIf(context, what, await redisRestartUnavailable());
}

/** `redis-cli shutdown nosave`: the dataset is gone; resolves once nothing answers. */
export async function stopRedis(): Promise<void> {
  // The connection drops as the server exits, so redis-cli may report an error: ignore it.
  await run('redis-cli', ['-h', '127.0.0.1', '-p', String(LOCAL_REDIS_PORT), 'shutdown', 'nosave'], 15_000).catch(
    () => undefined,
  );
  await waitForProbe(() => probeRedis(serviceUrls().redisUrl, 500), false, {
    timeoutMs: 15_000,
    intervalMs: 100,
    message: 'Redis to stop',
  });
}

/** Starts Redis as prepare.sh does and waits for PING. */
export async function startRedis(): Promise<void> {
  await run('redis-server', REDIS_START_ARGS, 15_000);
  await waitForProbe(() => probeRedis(serviceUrls().redisUrl, 1000), true, {
    timeoutMs: 15_000,
    intervalMs: 100,
    message: 'Redis to answer PING',
  });
}

/** For `finally`: starts Redis if it does not answer. Never throws. */
export async function ensureRedisRunning(): Promise<void> {
  await ensureRunning('Redis', () => probeRedis(serviceUrls().redisUrl, 2000), startRedis);
}
