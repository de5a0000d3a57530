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
 *
 * Beside it, the broker's own ceiling: the same queued messages taken by a
 * consumer that does nothing but ack them (one `multiple` ack per event-loop
 * turn, as Conveyor's worker acks), with RabbitMQ's CPU per message. No
 * system with this broker in its path can beat that rate on this machine.
 */
import { randomUUID } from 'node:crypto';
import { encodeTask, newTaskMessage } from '@conveyor/shared';
import type { Channel, ConsumeMessage } from 'amqplib';
import { Redis } from 'ioredis';
import { publishConfirmed, type AmqpHandle } from '../util/amqp.js';
import { CpuMeter, type CpuPerTask } from '../util/cpu.js';
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

/** What a consume phase reports back while it runs. */
interface Progress {
  done: number;
  first: number;
  last: number;
  failure: Error | null;
}

/**
 * Publishes `count` Conveyor task messages to a fresh durable queue (with
 * confirms, untimed), then runs `consume` on a channel with `prefetch` and
 * waits until it has counted `count` messages done. Resolves with the
 * messages per second from the first to the last done; deletes the queue.
 */
async function consumeQueued(
  amqp: AmqpHandle,
  prefix: string,
  count: number,
  prefetch: number,
  consume: (channel: Channel, progress: Progress) => (msg: ConsumeMessage | null) => void,
): Promise<number> {
  const queue = `${prefix}.raw`;
  const model = await amqp.get();
  const publisher = await model.createConfirmChannel();
  const consumer = await model.createChannel();
  try {
    await publisher.assertQueue(queue, { durable: true });
    const { content, options } = conveyorMessage();
    await publishConfirmed(publisher, queue, count, content, options);

    const progress: Progress = { done: 0, first: 0, last: 0, failure: null };
    await consumer.prefetch(prefetch);
    await consumer.consume(queue, consume(consumer, progress), { noAck: false });
    const deadline = Date.now() + 60_000 + count;
    while (progress.done < count) {
      if (progress.failure) throw progress.failure;
      if (Date.now() > deadline) throw new Error(`raw consumer finished ${progress.done}/${count} in time`);
      await sleep(10);
    }
    const windowS = Math.max(progress.last - progress.first, 1) / 1000;
    return (count - 1) / windowS;
  } finally {
    await consumer.close().catch(() => undefined);
    await publisher.deleteQueue(queue).catch(() => undefined);
    await publisher.close().catch(() => undefined);
  }
}

/** Counts one message done at `now`. */
function countDone(progress: Progress, now: number): void {
  if (progress.done === 0) progress.first = now;
  progress.last = now;
  progress.done++;
}

/** Tasks per second of the raw loop over its consume phase (first to last finish). */
export async function rawThroughput(
  amqp: AmqpHandle,
  redisUrl: string,
  count: number,
  prefetch: number,
): Promise<number> {
  const prefix = `bench-${hex()}`;
  const redis = new Redis(redisUrl, { enableAutoPipelining: true, connectionName: `${prefix}-raw` }) as RawRedis;
  redis.on('error', () => undefined); // an outage fails the commands, and with them the run
  redis.defineCommand('rawStart', { numberOfKeys: 2, lua: START_LUA });
  redis.defineCommand('rawFinish', { numberOfKeys: 3, lua: FINISH_LUA });
  const started = `${prefix}:state:STARTED`;
  const success = `${prefix}:state:SUCCESS`;
  try {
    return await consumeQueued(amqp, prefix, count, prefetch, (consumer, progress) => (msg) => {
      if (msg === null) return;
      const id = String(msg.properties.correlationId ?? randomUUID()) + String(msg.fields.deliveryTag);
      const key = `${prefix}:task:${id}`;
      redis
        .rawStart(key, started, id, Date.now(), 'raw')
        .then(() => redis.rawFinish(key, started, success, id, Date.now()))
        .then(() => {
          consumer.ack(msg);
          countDone(progress, Date.now());
        })
        .catch((error: unknown) => {
          progress.failure ??= error instanceof Error ? error : new Error(String(error));
        });
    });
  } finally {
    await deleteKeys(redis, `${prefix}:*`).catch(() => undefined);
    await redis.quit().catch(() => undefined);
  }
}

/** Messages per second over the consume phase, and CPU µs per message of the consumer ('worker') and RabbitMQ. */
export async function brokerThroughput(
  amqp: AmqpHandle,
  count: number,
  prefetch: number,
): Promise<{ rate: number; cpu: CpuPerTask | null }> {
  const meter = new CpuMeter([process.pid], count, ['RabbitMQ']);
  const rate = await consumeQueued(amqp, `bench-${hex()}`, count, prefetch, (consumer, progress) => {
    let latest: ConsumeMessage | null = null;
    let scheduled = false;
    return (msg) => {
      if (msg === null) return;
      latest = msg;
      countDone(progress, Date.now());
      meter.observe(progress.done);
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        consumer.ack(latest!, true);
      });
    };
  });
  return { rate, cpu: meter.perTask };
}
