/**
 * Operations on the dead-letter queue (`{prefix}.dead-letter`) for operators
 * and the dashboard: look at what is there and why, send a message back to
 * the queue it came from, or throw it away.
 *
 * Peeking without losing anything: AMQP has no "browse", so a listing takes
 * up to `limit` messages with basic.get and manual acks, reads them, and
 * nacks each with requeue. RabbitMQ puts a requeued message of a classic
 * queue back at its original position, so the order is unchanged (the test
 * checks it); if the process dies while holding them, the broker requeues
 * them when the channel closes. While held they are invisible to others: a
 * concurrent listing sees fewer messages, never a lost or duplicated one.
 * Nothing consumes the dead-letter queue, so no consumer sees them out of order.
 *
 * Finding one message (requeue or discard by key) takes messages until the
 * queue is empty or the match turns up, holds the ones that do not match and
 * requeues them the same way. It stops at the queue's length at the start
 * plus MAX_DEAD_LETTER_LISTING, so a steady inflow cannot keep it going; the
 * slack covers messages another operation just put back, which RabbitMQ's
 * length (answered with priority by the queue process) may not count yet.
 *
 * Requeueing publishes to the task exchange with the original queue's routing
 * key and waits for the broker's confirm before it acks the dead-letter copy:
 * a crash in between leaves a duplicate, never a loss. A message with a task
 * id is requeued under a NEW task id (its retries reset to 0, its old id in
 * `x-conveyor-requeued-from`, root_id kept): the old task's record is
 * terminal (FAILURE) and terminal states never change, so the same id would
 * be acked without running. The new run gets a record of its own.
 *
 * Give each operation its own channel, or run them one after another: delivery
 * tags are per channel and a failed basic.get closes the channel.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Channel, ConfirmChannel, GetMessage, Message, Options } from 'amqplib';
import { Errors } from '../errors.js';
import { TASK_ID_PATTERN, type TaskProperties } from '../protocol/celery-v2.js';
import { LAST_ERROR_HEADER } from '../tasks/retry-policy.js';
import { DeadLetterHeaders, publishConfirmed } from './task-publisher.js';
import { DELAY_HEADER, type Topology } from './topology.js';

/** The old task id of a message requeued from the dead-letter queue under a new one. */
export const REQUEUED_FROM_HEADER = 'x-conveyor-requeued-from';
/** The most a listing returns: each listed message is held unacked until the listing ends. */
export const MAX_DEAD_LETTER_LISTING = 1000;

export interface DeadLetter {
  /** Names the message for requeue and discard: its task id, or `sha256:<hex>` of its body when it has none. */
  key: string;
  /** The `id` header (or correlation id) when it is a UUID. */
  taskId: string | null;
  /** The `task` header: the task type. */
  task: string | null;
  /** Why it is here (`x-conveyor-reason`), e.g. "retries exhausted", "body is not valid JSON". */
  reason: string | null;
  /** `x-conveyor-error-code`, e.g. CNV_INVALID_MESSAGE. */
  errorCode: string | null;
  /** The last attempt's error message, for tasks whose retries ran out (`x-conveyor-last-error`). */
  lastError: string | null;
  /** The AMQP queue it was taken from (`x-conveyor-original-queue`). */
  originalQueue: string | null;
  /** ISO-8601 (`x-conveyor-dead-lettered-at`). */
  deadLetteredAt: string | null;
  /** The Celery `retries` header: retries made before it was dead-lettered. */
  retries: number | null;
  /** Every header as received (Buffers as UTF-8 strings). */
  headers: Record<string, unknown>;
  contentType: string | null;
  /** The body as UTF-8 text. */
  body: string;
}

export interface RequeuedDeadLetter {
  key: string;
  /** The task id it runs under now (null for a message without one). */
  taskId: string | null;
  previousTaskId: string | null;
  /** The AMQP queue it went back to. */
  queue: string;
}

export interface RequeueAllResult {
  requeued: RequeuedDeadLetter[];
  /** Messages left in the dead-letter queue, with why (no or unknown original queue). */
  skipped: { key: string; reason: string }[];
}

/** Up to `limit` dead letters, oldest first, left in place and in order. */
export async function listDeadLetters(channel: Channel, topology: Topology, limit = 100): Promise<DeadLetter[]> {
  const bound = Math.max(0, Math.min(limit, MAX_DEAD_LETTER_LISTING));
  const held: GetMessage[] = [];
  try {
    while (held.length < bound) {
      const message = await channel.get(topology.deadLetterQueue, { noAck: false });
      if (message === false) break;
      held.push(message);
    }
    return held.map(describeDeadLetter);
  } finally {
    release(channel, held);
  }
}

/** Moves the dead letter named `key` back to its original queue (see the module header). */
export async function requeueDeadLetter(
  channel: ConfirmChannel,
  topology: Topology,
  key: string,
): Promise<RequeuedDeadLetter> {
  let result: RequeuedDeadLetter | undefined;
  const found = await settleOne(channel, topology, key, async (message) => {
    const plan = requeuePlan(message, topology);
    if ('reason' in plan) throw new Errors.DEAD_LETTER_NOT_REQUEUEABLE(key, plan.reason);
    await publishConfirmed(channel, topology.taskExchange, plan.queue, message.content, plan.options);
    result = { key, taskId: plan.taskId, previousTaskId: plan.previousTaskId, queue: plan.queue };
  });
  if (!found || !result) throw new Errors.DEAD_LETTER_NOT_FOUND(key);
  return result;
}

/**
 * Moves every dead letter (up to the scan bound) back to its original queue,
 * one at a time (each confirmed before its copy is acked). Those that cannot
 * go back stay where they are and are reported in `skipped`.
 */
export async function requeueAllDeadLetters(channel: ConfirmChannel, topology: Topology): Promise<RequeueAllResult> {
  const bound = await scanBound(channel, topology);
  const result: RequeueAllResult = { requeued: [], skipped: [] };
  const held: Message[] = [];
  try {
    for (let i = 0; i < bound; i++) {
      const message = await channel.get(topology.deadLetterQueue, { noAck: false });
      if (message === false) break;
      const key = keyOf(message);
      const plan = requeuePlan(message, topology);
      if ('reason' in plan) {
        held.push(message);
        result.skipped.push({ key, reason: plan.reason });
        continue;
      }
      try {
        await publishConfirmed(channel, topology.taskExchange, plan.queue, message.content, plan.options);
      } catch (error) {
        held.push(message);
        throw error;
      }
      channel.ack(message);
      result.requeued.push({ key, taskId: plan.taskId, previousTaskId: plan.previousTaskId, queue: plan.queue });
    }
    return result;
  } finally {
    release(channel, held);
  }
}

/** Removes the dead letter named `key`; resolves with what it was. */
export async function discardDeadLetter(channel: Channel, topology: Topology, key: string): Promise<DeadLetter> {
  let discarded: DeadLetter | undefined;
  const found = await settleOne(channel, topology, key, async (message) => {
    discarded = describeDeadLetter(message);
  });
  if (!found || !discarded) throw new Errors.DEAD_LETTER_NOT_FOUND(key);
  return discarded;
}

/**
 * Removes every dead letter (queue.purge); resolves with how many. Messages
 * a concurrent listing holds unacked at that moment are not ready, so the
 * purge leaves them; they reappear when the listing releases them.
 */
export async function discardAllDeadLetters(channel: Channel, topology: Topology): Promise<number> {
  const { messageCount } = await channel.purgeQueue(topology.deadLetterQueue);
  return messageCount;
}

/** What a dead letter says about itself. */
export function describeDeadLetter(message: Message): DeadLetter {
  const properties = message.properties as TaskProperties;
  const headers = plainHeaders(properties.headers ?? {});
  const text = (name: string) => {
    const value = headers[name];
    return typeof value === 'string' ? value : null;
  };
  const retries = headers.retries;
  return {
    key: keyOf(message),
    taskId: taskIdOf(message),
    task: text('task'),
    reason: text(DeadLetterHeaders.reason),
    errorCode: text(DeadLetterHeaders.errorCode),
    lastError: text(LAST_ERROR_HEADER),
    originalQueue: text(DeadLetterHeaders.queue) ?? brokerDeadLetterQueue(headers),
    deadLetteredAt: text(DeadLetterHeaders.at),
    retries: typeof retries === 'number' ? retries : null,
    headers,
    contentType: properties.contentType ?? null,
    body: message.content.toString('utf8'),
  };
}

/**
 * Takes messages until the one named `key` (at most the queue's length at
 * the start), runs `settle` on it and acks it; every other message taken is
 * put back. If `settle` throws, the match is put back too.
 */
async function settleOne(
  channel: Channel,
  topology: Topology,
  key: string,
  settle: (message: Message) => Promise<void>,
): Promise<boolean> {
  const bound = await scanBound(channel, topology);
  const held: Message[] = [];
  try {
    for (let i = 0; i < bound; i++) {
      const message = await channel.get(topology.deadLetterQueue, { noAck: false });
      if (message === false) return false;
      if (keyOf(message) !== key) {
        held.push(message);
        continue;
      }
      try {
        await settle(message);
      } catch (error) {
        held.push(message);
        throw error;
      }
      channel.ack(message);
      return true;
    }
    return false;
  } finally {
    release(channel, held);
  }
}

/** How many messages a scan may take (see the module header). */
async function scanBound(channel: Channel, topology: Topology): Promise<number> {
  const { messageCount } = await channel.checkQueue(topology.deadLetterQueue);
  return messageCount + MAX_DEAD_LETTER_LISTING;
}

/** Puts held messages back at their positions; on a closed channel the broker has already done so. */
function release(channel: Channel, held: readonly Message[]): void {
  for (const message of held) {
    try {
      channel.nack(message, false, true);
    } catch {
      // channel closed: unacked messages return to the queue by themselves
    }
  }
}

type RequeuePlan =
  | { queue: string; taskId: string | null; previousTaskId: string | null; options: Options.Publish }
  | { reason: string };

function requeuePlan(message: Message, topology: Topology): RequeuePlan {
  const properties = message.properties as TaskProperties;
  const headers: Record<string, unknown> = { ...(properties.headers ?? {}) };
  const queue =
    (typeof headers[DeadLetterHeaders.queue] === 'string' ? (headers[DeadLetterHeaders.queue] as string) : null) ??
    brokerDeadLetterQueue(headers);
  if (queue === null) return { reason: 'it has no original queue' };
  if (!taskQueuesOf(topology).has(queue)) return { reason: `its original queue ${queue} is not a task queue` };

  // Forget why it was dead-lettered and where it has been; it starts over.
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-conveyor-') && name !== 'x-conveyor-retry') delete headers[name];
    if (name === 'x-death' || name.startsWith('x-first-death-') || name.startsWith('x-last-death-')) {
      delete headers[name];
    }
  }
  delete headers[DELAY_HEADER];
  if ('retries' in headers) headers.retries = 0;
  // Due now: an eta left over from a retry's backoff has passed anyway.
  if ('eta' in headers) headers.eta = null;

  const previousTaskId = taskIdOf(message);
  let taskId: string | null = null;
  if (previousTaskId !== null) {
    taskId = randomUUID();
    headers.id = taskId;
    headers[REQUEUED_FROM_HEADER] = previousTaskId;
    headers.root_id ??= previousTaskId;
  }
  const options: Options.Publish = { deliveryMode: 2, headers };
  if (properties.contentType !== undefined) options.contentType = properties.contentType;
  if (properties.contentEncoding !== undefined) options.contentEncoding = properties.contentEncoding;
  if (taskId !== null) options.correlationId = taskId;
  else if (properties.correlationId !== undefined) options.correlationId = properties.correlationId;
  if (properties.priority !== undefined) options.priority = properties.priority;
  return { queue, taskId, previousTaskId, options };
}

function taskQueuesOf(topology: Topology): Set<string> {
  return new Set(topology.bindings.filter((b) => b.exchange === topology.taskExchange).map((b) => b.queue));
}

function taskIdOf(message: Message): string | null {
  const properties = message.properties as TaskProperties;
  const id = properties.headers?.id ?? properties.correlationId;
  return typeof id === 'string' && TASK_ID_PATTERN.test(id) ? id : null;
}

function keyOf(message: Message): string {
  return taskIdOf(message) ?? `sha256:${createHash('sha256').update(message.content).digest('hex').slice(0, 32)}`;
}

/** The queue RabbitMQ itself dead-lettered from (a rejected message): `x-first-death-queue`. */
function brokerDeadLetterQueue(headers: Record<string, unknown>): string | null {
  const queue = headers['x-first-death-queue'];
  if (typeof queue === 'string') return queue;
  return queue instanceof Buffer ? queue.toString('utf8') : null;
}

/** AMQP table values as JSON-friendly ones (byte arrays as text). */
function plainHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const plain = (value: unknown): unknown => {
    if (Buffer.isBuffer(value)) return value.toString('utf8');
    if (Array.isArray(value)) return value.map(plain);
    if (value instanceof Date) return value.toISOString();
    if (typeof value === 'bigint') return Number(value);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, plain(v)]));
    }
    return value;
  };
  return plain(headers) as Record<string, unknown>;
}
