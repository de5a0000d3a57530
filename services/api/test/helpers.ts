/**
 * Small helpers for the api's integration tests: a config with a unique
 * prefix, a plain AMQP connection to look at queues, a teardown that
 * deletes exactly what the test's prefix created (topology and Redis keys),
 * and `useApiApp`, which wires all of it into a file's hooks.
 */
import { randomBytes } from 'node:crypto';
import { buildTopology, deleteTopology, loadConfig, redisKeys, type Config } from '@conveyor/shared';
import amqp, { type ChannelModel } from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { buildApp, type ApiApp } from '../src/app.js';

export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://localhost:6379/0';

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig('api', {
    AMQP_URL,
    REDIS_URL,
    CONVEYOR_PREFIX: `test-${randomBytes(6).toString('hex')}`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env,
  });
}

/** Probes of the real broker and Redis, independent of the app under test. */
export class Inspector {
  readonly config: Config;
  readonly redis: Redis;
  readonly #amqp: ChannelModel;

  private constructor(config: Config, model: ChannelModel, redis: Redis) {
    this.config = config;
    this.#amqp = model;
    this.redis = redis;
  }

  static async open(config: Config): Promise<Inspector> {
    const model = await amqp.connect(AMQP_URL);
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    return new Inspector(config, model, redis);
  }

  get topology() {
    return buildTopology({ prefix: this.config.prefix, exchange: this.config.exchange, queues: this.config.queues });
  }

  /** Ready messages in a logical queue (or an AMQP queue name given with `raw`). */
  async messageCount(queue: string, raw = false): Promise<number> {
    // A channel per check: checkQueue on a missing queue closes its channel.
    const channel = await this.#amqp.createChannel();
    try {
      return (await channel.checkQueue(raw ? queue : this.topology.queueName(queue))).messageCount;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Every Redis key under the test's prefix. */
  async keys(): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', redisKeys(this.config.prefix).all, 'COUNT', 500);
      found.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return found.sort();
  }

  /** Deletes the prefix's topology and Redis keys, then disconnects. */
  async cleanup(): Promise<void> {
    const channel = await this.#amqp.createChannel();
    await deleteTopology(channel, this.topology);
    await channel.close();
    const keys = await this.keys();
    if (keys.length > 0) await this.redis.del(...keys);
    await this.#amqp.close();
    this.redis.disconnect();
  }
}

/** Builds the app and waits until /ready says the broker and Redis are up. */
export async function readyApp(config: Config): Promise<ApiApp> {
  const app = buildApp({ config, hostname: 'test-host' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const response = await app.inject({ method: 'GET', url: '/ready' });
    if (response.statusCode === 200) return app;
    if (Date.now() > deadline) throw new Error(`api not ready: ${response.body}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What `useApiApp` sets up; `app` and `inspect` are there from `beforeAll` on. */
export interface ApiTestbed {
  readonly config: Config;
  readonly app: ApiApp;
  readonly inspect: Inspector;
}

/**
 * An app and an Inspector under a fresh test prefix (`env` as for
 * `testConfig`) for the current file or `describe`: opened in `beforeAll`
 * (the app by `start`, `readyApp` unless told otherwise), closed and cleaned
 * up in `afterAll`.
 */
export function useApiApp(
  env: Record<string, string> = {},
  start: (config: Config) => Promise<ApiApp> = readyApp,
): ApiTestbed {
  const config = testConfig(env);
  let app: ApiApp | undefined;
  let inspect: Inspector | undefined;

  beforeAll(async () => {
    inspect = await Inspector.open(config);
    app = await start(config);
  });

  afterAll(async () => {
    await app?.close();
    await inspect?.cleanup();
  });

  return {
    config,
    get app() {
      if (app === undefined) throw new Error('useApiApp: the app is there only from beforeAll on');
      return app;
    },
    get inspect() {
      if (inspect === undefined) throw new Error('useApiApp: the inspector is there only from beforeAll on');
      return inspect;
    },
  };
}
