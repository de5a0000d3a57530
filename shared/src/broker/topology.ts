/**
 * The RabbitMQ topology as data, asserted at start by every role from the
 * same object (so the api and the worker can never disagree on arguments).
 *
 *   {exchange}            direct, durable: one binding per task queue, routing key = queue name
 *   {prefix}.{queue}      durable task queue; rejected messages go to the dead-letter exchange
 *   {prefix}.dead         fanout dead-letter exchange -> {prefix}.dead-letter queue
 *   {prefix}.delay        headers exchange -> one TTL queue per delay tier; each tier queue
 *                         dead-letters back into {exchange} with the message's own routing key
 *
 * Delays (countdown, eta, retry backoff) hop through tiers of 100 ms · 2^i:
 * every message in a tier queue has the same TTL, so expiry at the head never
 * waits behind a longer delay (no head-of-line blocking), and any delay is at
 * most log2(delay / 100 ms) + 1 hops.
 *
 * The queues carry no storage arguments (`x-queue-version`, `x-queue-mode`):
 * their storage is the broker's default, which an operator changes with a
 * policy at any time, while an argument is fixed for the queue's life and
 * every client declaring the queue (a Celery app sharing it, too) would have
 * to repeat it. The default is also the safer choice on RabbitMQ 3.10-3.13:
 * a classic queue of version 1 fsyncs a persistent message before
 * confirming it, while version 2 there confirms once the message is written
 * to the page cache (no fsync), so a 202 could outlive the message in an
 * operating-system crash.
 */
import type { Channel, Options } from 'amqplib';

/** Header a delayed message carries to pick its tier queue in the headers exchange. */
export const DELAY_HEADER = 'conveyor-delay-ms';
const DELAY_BASE_MS = 100;
const DELAY_TIERS = 24; // 100 ms … ~9.7 days; longer delays take several passes through the top tier

export interface ExchangeSpec {
  name: string;
  type: 'direct' | 'fanout' | 'headers';
  options: Options.AssertExchange;
}
export interface QueueSpec {
  name: string;
  options: Options.AssertQueue;
}
export interface BindingSpec {
  queue: string;
  exchange: string;
  routingKey: string;
  args?: Record<string, unknown>;
}

export interface Topology {
  readonly taskExchange: string;
  readonly deadLetterExchange: string;
  readonly deadLetterQueue: string;
  readonly delayExchange: string;
  /** Delay tiers in ms, ascending. */
  readonly delayTiers: readonly number[];
  readonly exchanges: readonly ExchangeSpec[];
  readonly queues: readonly QueueSpec[];
  readonly bindings: readonly BindingSpec[];
  /** The AMQP queue (and routing key) of a logical queue name. */
  queueName(logical: string): string;
}

export interface TopologyOptions {
  prefix: string;
  exchange: string;
  queues: readonly string[];
}

export function buildTopology({ prefix, exchange, queues }: TopologyOptions): Topology {
  const queueName = (logical: string) => `${prefix}.${logical}`;
  const deadLetterExchange = `${prefix}.dead`;
  const deadLetterQueue = `${prefix}.dead-letter`;
  const delayExchange = `${prefix}.delay`;
  const delayTiers = Array.from({ length: DELAY_TIERS }, (_, i) => DELAY_BASE_MS * 2 ** i);

  const taskQueues: QueueSpec[] = queues.map((logical) => ({
    name: queueName(logical),
    options: { durable: true, arguments: { 'x-dead-letter-exchange': deadLetterExchange } },
  }));
  const tierQueues: QueueSpec[] = delayTiers.map((ms) => ({
    name: `${delayExchange}.${ms}`,
    options: {
      durable: true,
      arguments: { 'x-message-ttl': ms, 'x-dead-letter-exchange': exchange },
    },
  }));

  return Object.freeze({
    taskExchange: exchange,
    deadLetterExchange,
    deadLetterQueue,
    delayExchange,
    delayTiers,
    queueName,
    exchanges: [
      { name: exchange, type: 'direct', options: { durable: true } },
      { name: deadLetterExchange, type: 'fanout', options: { durable: true } },
      { name: delayExchange, type: 'headers', options: { durable: true } },
    ],
    queues: [...taskQueues, { name: deadLetterQueue, options: { durable: true } }, ...tierQueues],
    bindings: [
      ...taskQueues.map((q) => ({ queue: q.name, exchange, routingKey: q.name })),
      { queue: deadLetterQueue, exchange: deadLetterExchange, routingKey: '' },
      ...delayTiers.map((ms) => ({
        queue: `${delayExchange}.${ms}`,
        exchange: delayExchange,
        routingKey: '',
        args: { 'x-match': 'all', [DELAY_HEADER]: ms },
      })),
    ],
  } satisfies Topology);
}

/**
 * The tier for a message due in `remainingMs`: the longest tier that does not
 * overshoot, or the shortest one. A task therefore never starts before its
 * due time and at most one base step (100 ms) after it.
 */
export function delayTierFor(topology: Topology, remainingMs: number): number {
  const tiers = topology.delayTiers;
  let chosen = tiers[0]!;
  for (const tier of tiers) {
    if (tier > remainingMs) break;
    chosen = tier;
  }
  return chosen;
}

export async function assertTopology(channel: Channel, topology: Topology): Promise<void> {
  for (const e of topology.exchanges) await channel.assertExchange(e.name, e.type, e.options);
  for (const q of topology.queues) await channel.assertQueue(q.name, q.options);
  for (const b of topology.bindings) await channel.bindQueue(b.queue, b.exchange, b.routingKey, b.args);
}

/** Deletes everything `topology` declares (test teardown, uninstall). */
export async function deleteTopology(channel: Channel, topology: Topology): Promise<void> {
  for (const q of topology.queues) await channel.deleteQueue(q.name);
  for (const e of topology.exchanges) await channel.deleteExchange(e.name);
}
