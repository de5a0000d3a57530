/**
 * Accepting a task, free of HTTP: validate against the task type, record it
 * PENDING, publish it, and return only once the broker has confirmed it.
 *
 * The record is written before the publish so that a worker which receives
 * the message at once always finds it; if the publish then fails, the record
 * is removed again and the client gets a 503, so a refused submission leaves
 * nothing behind.
 */
import { randomUUID } from 'node:crypto';
import type { TaskPublisher } from '../broker/task-publisher.js';
import type { Config } from '../config.js';
import { Errors, withField } from '../errors.js';
import type { Logger } from '../logger.js';
import { newTaskMessage } from '../protocol/celery-v2.js';
import type { FieldValues, TaskStore } from '../store/task-store.js';
import type { TaskRegistry } from '../tasks/registry.js';
import { storeUnavailable } from './store-errors.js';

/** The longest countdown, eta or relative expiry accepted: one year. */
export const MAX_DELAY_SECONDS = 31_536_000;

/**
 * How long a request waits for the broker's confirm. A healthy broker answers
 * in milliseconds; one that withholds confirms (memory or disk alarm) would
 * otherwise hold every request open, so after this the client gets a 503.
 */
export const CONFIRM_TIMEOUT_MS = 10_000;

export interface Submission {
  type: string;
  kwargs?: Record<string, unknown>;
  queue?: string;
  /** Seconds to wait before the task may start. */
  countdown?: number;
  /** ISO-8601 date-time before which the task must not start. */
  eta?: string;
  /** Seconds from now, or an ISO-8601 date-time, after which the task is revoked instead of run. */
  expires?: number | string;
  priority?: number;
}

export interface Accepted {
  id: string;
  type: string;
  queue: string;
  state: 'PENDING';
  eta: string | null;
  expires: string | null;
}

export interface SubmitContext {
  config: Pick<Config, 'queues'>;
  registry: TaskRegistry;
  store: TaskStore;
  publisher: TaskPublisher;
  /** The Celery `origin` header: `api@<hostname>`. */
  origin: string;
  logger: Pick<Logger, 'warn' | 'error'>;
}

export async function submitTask(context: SubmitContext, submission: Submission, now = Date.now()): Promise<Accepted> {
  const { registry, store, publisher } = context;
  const type = registry.require(submission.type);
  const kwargs = submission.kwargs ?? {};
  registry.validateKwargs(type.name, kwargs);
  const queue = submission.queue ?? type.queue;
  if (!context.config.queues.includes(queue)) throw withField(new Errors.UNKNOWN_QUEUE(queue), 'queue');
  const eta = etaOf(submission, now);
  const expires = expiresOf(submission, eta, now);

  const id = randomUUID();
  const identity: FieldValues = { type: type.name, queue, kwargs: JSON.stringify(kwargs), args: '[]', created: now };
  if (eta !== null) identity.eta = eta;
  if (expires !== null) identity.expires = expires;
  let outcome;
  try {
    outcome = await store.transition(id, 'PENDING', 0, {}, identity, now);
  } catch (error) {
    throw storeUnavailable(error);
  }
  // A fresh random UUID never exists already; if it does, something is badly wrong (a 500, not a 409).
  if (!outcome.applied) throw new Error(`new task ${id} already in the store (${outcome.reason})`);

  const message = newTaskMessage({
    id,
    task: type.name,
    kwargs,
    origin: context.origin,
    eta,
    expires,
    timelimit: [type.timeLimit.hardSeconds, type.timeLimit.softSeconds],
    ...(submission.priority === undefined ? {} : { priority: submission.priority }),
  });
  try {
    await withTimeout(publisher.publish(message, queue), CONFIRM_TIMEOUT_MS);
  } catch (error) {
    context.logger.warn({ err: error, taskId: id }, 'publish failed; discarding the pending record');
    await store.discardPending(id).catch((discardError: unknown) => {
      // Redis is gone too: the orphan PENDING record only shows in listings; the client was told 503.
      context.logger.error({ err: discardError, taskId: id }, 'could not discard the pending record');
    });
    throw brokerUnavailable(error);
  }
  return { id, type: type.name, queue, state: 'PENDING', eta, expires };
}

function etaOf(submission: Submission, now: number): string | null {
  if (submission.countdown !== undefined && submission.eta !== undefined) {
    throw withField(new Errors.INVALID_SUBMISSION('countdown and eta are mutually exclusive'), 'countdown');
  }
  if (submission.countdown !== undefined) return new Date(now + submission.countdown * 1000).toISOString();
  if (submission.eta === undefined) return null;
  const at = Date.parse(submission.eta);
  if (Number.isNaN(at)) throw withField(new Errors.INVALID_SUBMISSION('eta must be an ISO-8601 date-time'), 'eta');
  if (at - now > MAX_DELAY_SECONDS * 1000) {
    throw withField(new Errors.INVALID_SUBMISSION('eta must be within one year'), 'eta');
  }
  return new Date(at).toISOString();
}

function expiresOf(submission: Submission, eta: string | null, now: number): string | null {
  const { expires } = submission;
  if (expires === undefined) return null;
  const at = typeof expires === 'number' ? now + expires * 1000 : Date.parse(expires);
  if (Number.isNaN(at)) {
    throw withField(new Errors.INVALID_SUBMISSION('expires must be seconds or an ISO-8601 date-time'), 'expires');
  }
  // A task that expires before it may start would only ever be revoked: refuse it up front.
  const earliest = eta === null ? now : Math.max(now, Date.parse(eta));
  if (at <= earliest) {
    throw withField(
      new Errors.INVALID_SUBMISSION(`expires must be later than ${eta === null ? 'now' : 'eta'}`),
      'expires',
    );
  }
  return new Date(at).toISOString();
}

function brokerUnavailable(cause: unknown): Error {
  const reason =
    (cause as { code?: unknown }).code === 'CNV_BROKER_UNAVAILABLE' ? (cause as Error).message : 'publish failed';
  return new Errors.BROKER_UNAVAILABLE(reason.replace(/^The message broker is unavailable: /, ''), { cause });
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no confirm within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
