/**
 * What the worker's integration tests need besides a worker process: publish
 * task messages straight onto the broker (so a test chooses every header:
 * timelimit, expires, x-conveyor-retry), read task records, attempt errors
 * and heartbeats from Redis, drain the dead-letter queue, and look at a
 * process's CPU time. Everything under the test file's prefix.
 */
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, GetMessage } from 'amqplib';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import {
  assertTopology,
  buildTopology,
  newTaskMessage,
  parseTaskRecord,
  readAttemptErrors,
  redisKeys,
  TaskPublisher,
  TaskStore,
  type AttemptError,
  type RedisKeys,
  type TaskMessage,
  type TaskRecord,
  type Topology,
} from '@conveyor/shared';
import { connectAmqp, connectRedis } from '../../../../test/support/services.js';
import { waitFor } from '../../../../test/support/wait.js';

export const TERMINAL = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

export class Harness {
  readonly prefix: string;
  readonly keys: RedisKeys;
  readonly topology: Topology;
  readonly redis: Redis;
  readonly store: TaskStore;
  readonly #amqp: ChannelModel;
  readonly #publisher: TaskPublisher;
  readonly #channel: Channel;

  private constructor(parts: {
    prefix: string;
    topology: Topology;
    redis: Redis;
    store: TaskStore;
    amqp: ChannelModel;
    publisher: TaskPublisher;
    channel: Channel;
  }) {
    this.prefix = parts.prefix;
    this.keys = redisKeys(parts.prefix);
    this.topology = parts.topology;
    this.redis = parts.redis;
    this.store = parts.store;
    this.#amqp = parts.amqp;
    this.#publisher = parts.publisher;
    this.#channel = parts.channel;
  }

  /** Declares the prefix's topology (as any role would) and opens Redis and a publisher. */
  static async open(prefix: string, queues: readonly string[] = ['default']): Promise<Harness> {
    const topology = buildTopology({ prefix, exchange: `${prefix}.tasks`, queues });
    const amqp = await connectAmqp();
    const publisher = new TaskPublisher(topology, pino({ level: 'silent' }));
    await publisher.attach(amqp);
    const channel = await amqp.createChannel();
    channel.on('error', () => undefined);
    await assertTopology(channel, topology);
    const redis = await connectRedis();
    // A second client for the store: TaskStore defines its scripts on the client it is given.
    const store = new TaskStore(await connectRedis(), { prefix, resultTtlSeconds: 3600 });
    return new Harness({ prefix, topology, redis, store, amqp, publisher, channel });
  }

  /** A task message with a fresh id; `fields` override anything (timelimit, expires, retryPolicy, …). */
  message(task: string, kwargs: Record<string, unknown>, fields: Partial<TaskMessage> = {}): TaskMessage {
    return newTaskMessage({ id: randomUUID(), task, kwargs, origin: 'worker-tests', ...fields });
  }

  /** Publishes (with confirm) and returns the task id. */
  async publish(message: TaskMessage, queue = 'default'): Promise<string> {
    await this.#publisher.publish(message, queue);
    return message.id;
  }

  async submit(task: string, kwargs: Record<string, unknown>, fields: Partial<TaskMessage> = {}): Promise<string> {
    return this.publish(this.message(task, kwargs, fields));
  }

  async task(id: string): Promise<TaskRecord | null> {
    return parseTaskRecord(id, await this.redis.hgetall(this.keys.task(id)));
  }

  attemptErrors(id: string): Promise<AttemptError[]> {
    return readAttemptErrors(this.redis, this.keys, id);
  }

  /** Polls until the task is in one of `states` (default: any terminal state). */
  async waitForState(
    id: string,
    states: ReadonlySet<string> | readonly string[] = TERMINAL,
    timeoutMs = 30_000,
  ): Promise<TaskRecord> {
    const wanted = new Set(states);
    let last: TaskRecord | null = null;
    return waitFor(
      async () => {
        last = await this.task(id);
        return last !== null && wanted.has(last.state) ? last : null;
      },
      {
        timeoutMs,
        intervalMs: 25,
        message: () => `task ${id} to reach ${[...wanted].join('|')} (last: ${JSON.stringify(last)})`,
      },
    );
  }

  /** The worker's heartbeat `lastSeen` (ms), or null when it has none. */
  async lastSeen(workerName: string): Promise<number | null> {
    const value = await this.redis.hget(this.keys.worker(workerName), 'lastSeen');
    return value === null ? null : Number(value);
  }

  /** Takes every message now in the dead-letter queue off it. */
  async drainDeadLetters(): Promise<GetMessage[]> {
    const taken: GetMessage[] = [];
    for (;;) {
      const message = await this.#channel.get(this.topology.deadLetterQueue, { noAck: true });
      if (message === false) return taken;
      taken.push(message);
    }
  }

  /** Polls the dead-letter queue until a message of task `id` arrives; returns it. */
  async waitForDeadLetter(id: string, timeoutMs = 15_000): Promise<GetMessage> {
    const seen: GetMessage[] = [];
    return waitFor(
      async () => {
        seen.push(...(await this.drainDeadLetters()));
        return seen.find((m) => m.properties.headers?.id === id) ?? null;
      },
      { timeoutMs, intervalMs: 100, message: `a dead letter of task ${id}` },
    );
  }

  /** Ready messages in a logical queue. */
  async queueDepth(queue = 'default'): Promise<number> {
    return (await this.#channel.checkQueue(this.topology.queueName(queue))).messageCount;
  }

  async publishControl(message: unknown): Promise<number> {
    return this.redis.publish(this.keys.control, JSON.stringify(message));
  }

  /**
   * Closes everything, each step bounded: a server that is being restarted
   * (the fault tests do that to the shared servers) must not hang the
   * teardown; a connection that does not close in time is dropped.
   */
  async close(): Promise<void> {
    await bounded(this.#publisher.close());
    await bounded(this.#channel.close());
    await bounded(this.#amqp.close());
    await bounded(this.store.close());
    if (!(await bounded(this.redis.quit()))) this.redis.disconnect();
  }
}

/**
 * The Harness of the current test file under `prefix`: opened in beforeAll,
 * closed in afterAll. Read it through the returned function, which throws
 * before beforeAll has run (as useApiApp's fields do in the api's tests).
 */
export function useHarness(prefix: string): () => Harness {
  let harness: Harness | undefined;
  beforeAll(async () => {
    harness = await Harness.open(prefix);
  });
  afterAll(async () => {
    await harness?.close();
  });
  return () => {
    if (harness === undefined) throw new Error('useHarness: the harness is there only from beforeAll on');
    return harness;
  };
}

/** CPU time (user + system) a process has used so far, in ms (Linux /proc). */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100; // USER_HZ, 100 on every Linux this runs on
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

/** Settles `promise` within `ms`: true if it resolved in time, false if it failed or took longer. */
async function bounded(promise: Promise<unknown>, ms = 5000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
