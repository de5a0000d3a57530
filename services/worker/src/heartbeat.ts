/**
 * Worker heartbeats: a hash per worker that expires unless refreshed, and a
 * sorted set by last beat. A monitor declares a worker offline when its beat
 * is overdue (the hash is gone), like Celery's heartbeat expiry.
 */
import type { Config, Logger, RedisKeys } from '@conveyor/shared';
import type { Redis } from 'ioredis';
import { hostname } from 'node:os';

export const HEARTBEAT_INTERVAL_MS = 5000;
/** Three missed beats: one slow beat must not flap a worker offline. */
const HEARTBEAT_TTL_SECONDS = 15;

export interface HeartbeatSource {
  stats: { active: number; processed: number; failed: number };
}

export class Heartbeat {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #config: Config;
  readonly #source: HeartbeatSource;
  readonly #logger: Logger;
  readonly #startedAt = Date.now();
  #timer: NodeJS.Timeout | undefined;

  constructor(redis: Redis, keys: RedisKeys, config: Config, source: HeartbeatSource, logger: Logger) {
    this.#redis = redis;
    this.#keys = keys;
    this.#config = config;
    this.#source = source;
    this.#logger = logger;
  }

  start(): void {
    this.#beat();
    this.#timer = setInterval(() => this.#beat(), HEARTBEAT_INTERVAL_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    const name = this.#config.workerName;
    await this.#redis.multi().del(this.#keys.worker(name)).zrem(this.#keys.workers, name).exec();
  }

  #beat(): void {
    const { workerName, queues, workerConcurrency } = this.#config;
    const now = Date.now();
    const key = this.#keys.worker(workerName);
    this.#redis
      .multi()
      .hset(key, {
        name: workerName,
        hostname: hostname(),
        pid: process.pid,
        queues: queues.join(','),
        concurrency: workerConcurrency,
        ...this.#source.stats,
        startedAt: this.#startedAt,
        lastSeen: now,
      })
      .expire(key, HEARTBEAT_TTL_SECONDS)
      .zadd(this.#keys.workers, now, workerName)
      .exec()
      .catch((error: unknown) => this.#logger.warn({ err: error }, 'heartbeat failed'));
  }
}
