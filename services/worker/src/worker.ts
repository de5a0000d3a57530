/**
 * The worker role assembled: one Redis client (plus a subscriber connection
 * for control messages), one broker connection with a publisher channel
 * (retries, delays, dead letters) and a consumer channel, the processor, the
 * thread pool of CPU-bound handlers, heartbeats. `start` never waits for the
 * broker: the connection recovers by itself and `ready` says when work is
 * flowing.
 */
import {
  BrokerConnection,
  buildTopology,
  createRedis,
  TaskPublisher,
  TaskRegistry,
  TaskStore,
  type Config,
  type Logger,
} from '@conveyor/shared';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { ControlListener } from './control/control-listener.js';
import { TaskConsumer } from './consumer/task-consumer.js';
import { TaskProcessor } from './consumer/task-processor.js';
import { builtinHandlers } from './handlers/index.js';
import type { TaskHandler } from './handlers/handler.js';
import { Heartbeat } from './heartbeat.js';
import { CpuPool } from './pool/cpu-pool.js';
import { createWorkerMetrics } from './worker-metrics.js';

export interface WorkerOptions {
  config: Config;
  logger: Logger;
  metrics: Registry;
  registry?: TaskRegistry;
  handlers?: readonly TaskHandler[];
}

export class Worker {
  readonly #config: Config;
  readonly #redis: Redis;
  readonly #broker: BrokerConnection;
  readonly #publisher: TaskPublisher;
  readonly #consumer: TaskConsumer;
  readonly #processor: TaskProcessor;
  readonly #control: ControlListener;
  readonly #heartbeat: Heartbeat;

  private constructor(parts: {
    config: Config;
    redis: Redis;
    broker: BrokerConnection;
    publisher: TaskPublisher;
    consumer: TaskConsumer;
    processor: TaskProcessor;
    control: ControlListener;
    heartbeat: Heartbeat;
  }) {
    this.#config = parts.config;
    this.#redis = parts.redis;
    this.#broker = parts.broker;
    this.#publisher = parts.publisher;
    this.#consumer = parts.consumer;
    this.#processor = parts.processor;
    this.#control = parts.control;
    this.#heartbeat = parts.heartbeat;
  }

  static async start(options: WorkerOptions): Promise<Worker> {
    const { config, logger } = options;
    const redis = createRedis(config.redisUrl, { failFast: false, name: config.workerName });
    redis.on('error', (error: Error) => logger.warn({ err: error }, 'redis error'));
    const store = new TaskStore(redis, config);
    const topology = buildTopology(config);
    const publisher = new TaskPublisher(topology, logger);
    const processor = new TaskProcessor({
      config,
      logger,
      store,
      publisher,
      registry: options.registry ?? new TaskRegistry(),
      handlers: options.handlers ?? builtinHandlers,
      metrics: createWorkerMetrics(options.metrics),
      redis,
      pool: new CpuPool({ size: config.workerPoolSize, logger }),
    });
    const consumer = new TaskConsumer({
      queues: config.queues,
      prefetch: config.workerPrefetch,
      topology,
      processor,
      logger,
    });
    const broker = await BrokerConnection.open({
      url: config.amqpUrl,
      name: config.workerName,
      logger,
      // The publisher asserts the topology before the consumer subscribes to it.
      setup: async (model) => {
        await publisher.attach(model);
        await consumer.attach(model);
      },
    });
    const control = ControlListener.start(redis, store.keys, processor, logger);
    const heartbeat = new Heartbeat(redis, store.keys, config, processor, logger);
    heartbeat.start();
    return new Worker({ config, redis, broker, publisher, consumer, processor, control, heartbeat });
  }

  get ready(): boolean {
    return this.#broker.connected && this.#consumer.consuming && this.#redis.status === 'ready';
  }

  /**
   * Graceful stop: no new deliveries, running tasks get SHUTDOWN_GRACE_MS, the
   * rest is requeued. Only then do the pool threads go (a task still in one
   * runs again from its requeued message) and the control channel.
   */
  async stop(): Promise<void> {
    await this.#consumer.stop(this.#config.shutdownGraceMs);
    await this.#processor.shutdown();
    await this.#control.close();
    await this.#heartbeat.stop().catch(() => undefined);
    await this.#publisher.close();
    await this.#broker.close();
    await this.#redis.quit().catch(() => undefined);
  }
}
