/**
 * Accepting a task, free of HTTP: validate against the task type, record it
 * PENDING, publish it, and return only once the broker has confirmed it.
 *
 * The record is written before the publish so that a worker which receives
 * the message at once always finds it; if the publish then fails, the record
 * is removed again and the client gets a 503, so a refused submission leaves
 * nothing behind.
 *
 * Two steps, so callers can put work between them: `prepareSubmission`
 * validates (every 400 comes from here, before any I/O) and `submitPrepared`
 * writes and publishes under a given id. `submitTask` does both; the
 * idempotency-key path (idempotency.ts) claims its key in between.
 */
import { randomUUID } from 'node:crypto';
import type { TaskPublisher } from '../broker/task-publisher.js';
import type { Config } from '../config.js';
import { Errors, withField } from '../errors.js';
import type { Logger } from '../logger.js';
import { newTaskMessage } from '../protocol/celery-v2.js';
import type { FieldValues, TaskStore } from '../store/task-store.js';
import type { TaskRegistry } from '../tasks/registry.js';
import type { TaskType } from '../tasks/task-type.js';
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
  /** Overrides of the type's retry policy for this submission only (the `x-conveyor-retry` header). */
  retry?: RetryOverride;
}

/** The part of a RetryPolicy a submission may override. */
export interface RetryOverride {
  maxRetries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** Bounds of a per-submission retry override: 100 retries, delays up to a day. */
export const RETRY_OVERRIDE_LIMITS = { maxRetries: 100, maxDelayMs: 86_400_000 } as const;

/** A validated submission: everything `submitPrepared` needs, nothing written yet. */
export interface PreparedSubmission {
  readonly type: TaskType;
  readonly kwargs: Record<string, unknown>;
  readonly queue: string;
  readonly eta: string | null;
  readonly expires: string | null;
  readonly priority: number | undefined;
  readonly retry: RetryOverride | undefined;
  /** When the submission was validated (ms); the `created` of its record. */
  readonly now: number;
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
  return submitPrepared(context, prepareSubmission(context, submission, now));
}

/**
 * Validates `submission` and resolves its times against `now`. Throws the
 * submission's 400 (with the field at fault); touches neither Redis nor the broker.
 */
export function prepareSubmission(
  context: Pick<SubmitContext, 'config' | 'registry'>,
  submission: Submission,
  now = Date.now(),
): PreparedSubmission {
  const type = context.registry.require(submission.type);
  const kwargs = submission.kwargs ?? {};
  context.registry.validateKwargs(type.name, kwargs);
  const queue = submission.queue ?? type.queue;
  if (!context.config.queues.includes(queue)) throw withField(new Errors.UNKNOWN_QUEUE(queue), 'queue');
  const eta = etaOf(submission, now);
  const expires = expiresOf(submission, eta, now);
  const retry = retryOf(submission.retry);
  return { type, kwargs, queue, eta, expires, priority: submission.priority, retry, now };
}

/**
 * Records `prepared` PENDING under `id` (a fresh UUID unless given), publishes
 * it and resolves once the broker confirmed. A given id must be new: the
 * caller owns it (an idempotency key claimed it). `onRecorded` runs once the
 * record exists and before the publish, for a caller that starts waiting for
 * the result while the confirm is on its way.
 */
export async function submitPrepared(
  context: SubmitContext,
  prepared: PreparedSubmission,
  id: string = randomUUID(),
  onRecorded?: (id: string) => void,
): Promise<Accepted> {
  const { store, publisher } = context;
  const { type, kwargs, queue, eta, expires, now } = prepared;
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
  onRecorded?.(id);

  const message = newTaskMessage({
    id,
    task: type.name,
    kwargs,
    origin: context.origin,
    eta,
    expires,
    timelimit: [type.timeLimit.hardSeconds, type.timeLimit.softSeconds],
  });
  if (prepared.priority !== undefined) message.priority = prepared.priority;
  if (prepared.retry !== undefined) message.retryPolicy = prepared.retry;
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

/** The override with its bounds checked (the api's schema checks them too; the producer has no schema). */
function retryOf(retry: RetryOverride | undefined): RetryOverride | undefined {
  if (retry === undefined) return undefined;
  const checked: RetryOverride = {};
  const bound = (name: keyof RetryOverride, max: number) => {
    const value = retry[name];
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
      throw withField(
        new Errors.INVALID_SUBMISSION(`retry.${name} must be an integer from 0 to ${max}`),
        `retry.${name}`,
      );
    }
    checked[name] = value;
  };
  bound('maxRetries', RETRY_OVERRIDE_LIMITS.maxRetries);
  bound('baseDelayMs', RETRY_OVERRIDE_LIMITS.maxDelayMs);
  bound('maxDelayMs', RETRY_OVERRIDE_LIMITS.maxDelayMs);
  for (const name of Object.keys(retry)) {
    if (!(name in checked) && retry[name as keyof RetryOverride] !== undefined) {
      throw withField(new Errors.INVALID_SUBMISSION(`retry.${name} is not allowed`), `retry.${name}`);
    }
  }
  return Object.keys(checked).length === 0 ? undefined : checked;
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

/** No race() and no extra async frame: this runs on every submit. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no confirm within ${ms} ms`)), ms);
    promise.finally(() => clearTimeout(timer)).then(resolve, reject);
  });
}
