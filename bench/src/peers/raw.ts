/**
 * The raw limit of this machine for one task: a bare amqplib loop with no
 * framework. Phase 1 publishes N Conveyor-sized task messages (the bytes and
 * headers Conveyor's producer sends, persistent, to a durable queue with no
 * storage arguments, like Conveyor's) with publisher confirms. Phase 2, the one
 * timed, is one consumer with prefetch = the workers' concurrency that, for
 * every delivery, does the Redis writes a Conveyor task needs in the worker
 * -- two script calls (EVALSHA): start (HSET state/started/worker + ZADD to
 * the STARTED index) and finish (HSET state/finished + ZREM STARTED + LPUSH
 * to the SUCCESS list) -- then acks that delivery on its own. ioredis
 * auto-pipelining lets concurrent deliveries share round trips, as
 * Conveyor's store does by batching its script calls itself.
 *
 * Conveyor does more per task (decoding and validating the message, the
 * time index, events stream, counters, the state machine checks) but also
 * batches what this loop does not (one script call per event-loop turn, one
 * multiple-ack per flush), so the ratio is a measure of overhead, not a bound.
 */
import { randomUUID } from 'node:crypto';
import { encodeTask, newTaskMessage } from '@conveyor/shared';
import type { ConsumeMessage } from 'amqplib';
import { Redis } from 'ioredis';
import { publishConfirmed, type AmqpHandle } from '../util/amqp.js';
import { deleteKeys } from '../util/redis.js';
import { hex, sleep } from '../util/time.js';

const START_LUA = `
redis.call('HSET', KEYS[1], 'state', 'STARTED', 'attempts', 1, 'started', ARGV[2], 'worker', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1`;
const FINISH_LUA = `
redis.call('HSET', KEYS[1], 'state', 'SUCCESS', 'finished', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[1])
return 1`;

interface RawRedis extends Redis {
  rawStart(key: string, started: string, id: string, at: number, worker: string): Promise<number>;
  rawFinish(key: string, started: string, success: string, id: string, at: number): Promise<number>;
}

/** A Conveyor task message as the producer would publish it (same content, headers, properties). */
export function conveyorMessage() {
  const id = randomUUID();
  return encodeTask(
    newTaskMessage({ id, task: 'noop', kwargs: {}, origin: 'producer@bench', timelimit: [null, null] }),
  );
}

export interface RawResult {
  /** Tasks per second over the consume phase (first to last finish). */
  rate: number;
  /** Messages per second of the (untimed) confirmed publish phase. */
  publishRate: number;
}

export async function rawThroughput(
  amqp: AmqpHandle,
  redisUrl: string,
  count: number,
  prefetch: number,
): Promise<RawResult> {
  const prefix = `bench-${hex()}`;
  const queue = `${prefix}.raw`;
  const redis = new Redis(redisUrl, { enableAutoPipelining: true, connectionName: `${prefix}-raw` }) as RawRedis;
  redis.on('error', () => undefined); // an outage fails the commands, and with them the run
  redis.defineCommand('rawStart', { numberOfKeys: 2, lua: START_LUA });
  redis.defineCommand('rawFinish', { numberOfKeys: 3, lua: FINISH_LUA });
  const model = await amqp.get();
  const publisher = await model.createConfirmChannel();
  const consumer = await model.createChannel();
  try {
    await publisher.assertQueue(queue, { durable: true });
    const { content, options } = conveyorMessage();
    const publishMs = await publishConfirmed(publisher, queue, count, content, options);

    const started = `${prefix}:state:STARTED`;
    const success = `${prefix}:state:SUCCESS`;
    let done = 0;
    let first = 0;
    let last = 0;
    const state: { failure: Error | null } = { failure: null };
    await consumer.prefetch(prefetch);
    const onMessage = (msg: ConsumeMessage | null) => {
      if (msg === null) return;
      const id = String(msg.properties.correlationId ?? randomUUID()) + String(msg.fields.deliveryTag);
      const key = `${prefix}:task:${id}`;
      redis
        .rawStart(key, started, id, Date.now(), 'raw')
        .then(() => redis.rawFinish(key, started, success, id, Date.now()))
        .then(() => {
          consumer.ack(msg);
          const now = Date.now();
          if (done === 0) first = now;
          last = now;
          done++;
        })
        .catch((error: unknown) => {
          state.failure ??= error instanceof Error ? error : new Error(String(error));
        });
    };
    await consumer.consume(queue, onMessage, { noAck: false });
    const deadline = Date.now() + 60_000 + count;
    while (done < count) {
      if (state.failure) throw state.failure;
      if (Date.now() > deadline) throw new Error(`raw consumer finished ${done}/${count} in time`);
      await sleep(10);
    }
    const windowS = Math.max(last - first, 1) / 1000;
    return { rate: (count - 1) / windowS, publishRate: count / (publishMs / 1000) };
  } finally {
    await consumer.close().catch(() => undefined);
    await publisher.deleteQueue(queue).catch(() => undefined);
    await publisher.close().catch(() => undefined);
    await deleteKeys(redis, `${prefix}:*`).catch(() => undefined);
    await redis.quit().catch(() => undefined);
  }
}
