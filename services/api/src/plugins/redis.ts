/**
 * The api's Redis client as a named plugin. It fails fast (no offline queue):
 * while Redis is away a request gets a 503 at once instead of waiting on a
 * queue that may never drain; /ready reports the outage meanwhile. A hung
 * Redis is cut short by a command timeout.
 */
import { createRedis, settleWithin } from '@conveyor/shared';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { STARTUP_WAIT_MS } from '../startup.js';

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis;
  }
}

/**
 * A command without a reply after this long fails (a 503) instead of holding
 * the request: a Redis that is connected but hung (paused, blocked by a slow
 * script) looks "ready" to ioredis and would otherwise hold every request
 * until the client gives up. Healthy commands answer in about a millisecond.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 2000;

export interface RedisPluginOptions {
  /** Shown by `CLIENT LIST`, so an operator can tell the api's connections apart. */
  connectionName: string;
}

async function redis(app: FastifyInstance, options: RedisPluginOptions): Promise<void> {
  const client = createRedis(app.config.redisUrl, {
    failFast: true,
    name: options.connectionName,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
  });
  // ioredis emits 'error' on every failed reconnect; one line per outage is enough.
  let up = true;
  client.on('error', (error: Error) => {
    if (!up) return;
    up = false;
    app.log.warn({ err: error }, 'redis unavailable; reconnecting');
  });
  client.on('ready', () => {
    if (!up) app.log.info('redis connected');
    up = true;
  });
  app.decorate('redis', client);
  app.addHook('onClose', async () => {
    // QUIT needs a live connection; without one there is nothing to flush.
    await client.quit().catch(() => client.disconnect());
  });
  await settleWithin(firstOutcome(client), STARTUP_WAIT_MS);
}

/** The first 'ready' or 'error': a refused connection will not come up within the start-up wait. */
function firstOutcome(client: Redis): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      client.off('ready', done);
      client.off('error', done);
      resolve();
    };
    client.on('ready', done);
    client.on('error', done);
  });
}

export const redisPlugin = fp(redis, { name: 'conveyor-redis', fastify: '5.x', decorators: { fastify: ['config'] } });
