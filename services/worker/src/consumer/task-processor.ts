/**
 * What happens to one delivery, from decoding to the recorded outcome. The
 * consumer acks only after `process` resolves, and `process` resolves only
 * after the outcome is in Redis (or the message is safely elsewhere: the
 * dead-letter queue, its next delay tier, its retry): at-least-once delivery,
 * exactly-once terminal state.
 *
 * Per task that runs: one round trip to start it and one to finish it. The
 * start is one transition to STARTED whose `received` field says when the
 * delivery arrived: a delivery waiting for a slot is not written RECEIVED
 * first, which would cost every task a third round trip (its record stays
 * PENDING until it starts). Concurrent tasks share those round trips
 * (the store group-commits their transitions). Everything else is off that path: the
 * poison count only for redeliveries, attempt errors only for failures.
 *
 * Reliability rules (the reasoning lives beside each step below):
 *  - a failed attempt is retried per the type's retry policy, merged with the
 *    message's `x-conveyor-retry` override: the next attempt is published
 *    with an eta (the broker's delay tiers hold it, never an unacked
 *    delivery), then RETRY is recorded; once retries are used up the task
 *    is FAILURE and a copy goes to the dead-letter queue;
 *  - each failed attempt is appended to the task's attempt errors;
 *  - time limits come from the `timelimit` header, else the type: the soft
 *    one aborts the handler's signal, the hard one ends the attempt for real
 *    (terminating its pool thread) and records CNV_HARD_TIME_LIMIT;
 *  - `terminate` (control channel) ends a running attempt as REVOKED;
 *  - a message redelivered more than MAX_REDELIVERIES times is poison: it is
 *    dead-lettered and the task recorded FAILURE, without running it again.
 */
import {
  decodeTask,
  Errors,
  isRejection,
  isRetryRequest,
  isTerminal,
  LAST_ERROR_HEADER,
  recordAttemptError,
  resolveRetryPolicy,
  RETRIES_EXHAUSTED_REASON,
  type AttemptError,
  type FieldValues,
  type TaskMessage,
  type TaskPublisher,
  type TaskRegistry,
  type TaskState,
  type TransitionOutcome,
} from '@conveyor/shared';
import type { Message } from 'amqplib';
import pLimit, { type LimitFunction } from 'p-limit';
import type { TaskHandler } from '../handlers/handler.js';
import type { WorkerMetrics } from '../worker-metrics.js';
import { decideOnFailure, timeLimitsOf } from './attempt-policy.js';
import { HandlerContext, type HandlerContextDeps } from './handler-context.js';
import { RunningTask, type Ending } from './running-task.js';
import { RunningTasks } from './running-tasks.js';

/**
 * The redelivery counter outlives any sane redelivery storm (a crash loop
 * redelivers within seconds or minutes) and then cleans itself up.
 */
const REDELIVERY_COUNT_TTL_SECONDS = 86_400;
/** Longest time limit a timer can hold (2^31 - 1 ms, about 24.8 days); beyond it a limit is not enforced. */
const MAX_TIMER_MS = 2_147_483_647;
/** The last error carried in a dead-lettered message's header is cut to this length. */
const MAX_HEADER_ERROR_CHARS = 1000;

/** What the processor needs beyond what it hands on to each task's HandlerContext. */
export interface TaskProcessorDeps extends HandlerContextDeps {
  publisher: TaskPublisher;
  registry: TaskRegistry;
  handlers: readonly TaskHandler[];
  metrics: WorkerMetrics;
}

interface Outcome {
  state: TaskState;
  fields: FieldValues;
  /** The error of a FAILURE or REVOKED outcome. */
  error?: unknown;
}

export class TaskProcessor {
  readonly #deps: TaskProcessorDeps;
  readonly #handlers: ReadonlyMap<string, TaskHandler>;
  /** The tasks being started or run now. */
  readonly #running = new RunningTasks();
  /** Runs at most WORKER_CONCURRENCY start-and-run sections at once; the rest wait in order. */
  readonly #slots: LimitFunction;
  #processed = 0;
  #failed = 0;
  #closing = false;
  /** False once the worker stops: deliveries still waiting for a slot are handed back instead. */
  #starting = true;

  constructor(deps: TaskProcessorDeps) {
    this.#deps = deps;
    this.#handlers = new Map(deps.handlers.map((h) => [h.type.name, h]));
    this.#slots = pLimit(deps.config.workerConcurrency);
    for (const type of deps.registry.list()) {
      if (!this.#handlers.has(type.name)) throw new Error(`Task type "${type.name}" has no handler`);
    }
  }

  get stats(): { active: number; processed: number; failed: number } {
    return { active: this.#running.size, processed: this.#processed, failed: this.#failed };
  }

  /**
   * Ends task `id` if it is being started or run here: its signal aborts, its
   * pool thread (if any) is terminated and REVOKED is recorded (error
   * "terminated", CNV_TASK_REVOKED). False when it does not run here.
   */
  terminate(id: string): boolean {
    const task = this.#running.find(id);
    if (task === undefined) return false;
    task.end('REVOKED', new Errors.TASK_REVOKED('terminated'));
    return true;
  }

  /** From now on, deliveries that wait for a slot are not started (`process` resolves false). */
  stopStarting(): void {
    this.#starting = false;
  }

  /**
   * Call once the consumer has drained (its channel is closed, so whatever
   * still runs has been requeued): terminates the pool threads, and from now
   * on a failure is not recorded, since it is the shutdown's doing and the
   * requeued message will run the task again.
   */
  async shutdown(): Promise<void> {
    this.#closing = true;
    await this.#deps.pool.destroy();
  }

  /**
   * Handles one delivery; resolves true once it may be acked, false when it
   * was not started because the worker is stopping (the caller requeues it).
   */
  async process(delivery: Message, queue: string): Promise<boolean> {
    let message: TaskMessage;
    try {
      message = decodeTask(delivery.content, delivery.properties);
    } catch (error) {
      await this.#deadLetter(delivery, (error as Error).message, codeOf(error));
      return true;
    }
    const handler = this.#handlers.get(message.task);
    if (!handler) {
      await this.#deadLetter(delivery, `unknown task type "${message.task}"`, 'CNV_UNKNOWN_TASK_TYPE');
      return true;
    }

    const receivedAt = Date.now();
    if (message.eta !== null) {
      const remaining = Date.parse(message.eta) - receivedAt;
      // Not due yet: it came back from a delay tier and takes the next one.
      if (remaining > 0) {
        await this.#deps.publisher.forwardDelayed(delivery, remaining);
        return true;
      }
    }
    const attempt = message.retries + 1;
    // Only a redelivery can be poison, so first deliveries skip the count.
    if (delivery.fields.redelivered && (await this.#isPoison(delivery, message, queue, attempt))) return true;
    if (message.expires !== null && Date.parse(message.expires) <= receivedAt) {
      const error = new Errors.TASK_EXPIRED(message.expires);
      const revoked: Outcome = { state: 'REVOKED', fields: failureFields(error, receivedAt) };
      await this.#finish(message, queue, attempt, revoked, receivedAt);
      return true;
    }

    // Tracked from before it has a slot: a terminate that arrives while it
    // waits, or while STARTED is on its way to Redis, must still find it.
    const task = new RunningTask(message.id);
    this.#running.add(task);
    try {
      // The slot is held from the start record to the handler's end; the
      // outcome's write and the ack happen outside it.
      const outcome = await this.#slots(async (): Promise<Outcome | 'not started' | 'duplicate'> => {
        if (!this.#starting) return 'not started';
        if (!(await this.#begin(message, queue, attempt, receivedAt))) return 'duplicate';
        return task.ending ? endedOutcome(task.ending, 0) : this.#run(handler, message, attempt, task);
      });
      if (outcome === 'not started') return false;
      if (outcome !== 'duplicate') await this.#conclude(delivery, message, queue, attempt, handler, outcome);
      return true;
    } finally {
      this.#running.remove(task);
    }
  }

  /** Records STARTED (and when it was received); false when the delivery is a duplicate that must not run. */
  async #begin(message: TaskMessage, queue: string, attempt: number, receivedAt: number): Promise<boolean> {
    const now = Date.now();
    const fields = { received: receivedAt, started: now, worker: this.#deps.config.workerName };
    const outcome = await this.#record(message, queue, 'STARTED', attempt, fields, now);
    if (outcome.applied) return true;
    this.#deps.metrics.duplicates.inc({ reason: outcome.reason });
    this.#deps.logger.info({ taskId: message.id, state: outcome.state }, 'duplicate delivery acked without running');
    return false;
  }

  /**
   * Runs the handler under the attempt's time limits. Resolves with the
   * handler's outcome, or as soon as the attempt is ended from outside (hard
   * limit, terminate) with that ending, whether or not the handler stopped.
   */
  async #run(handler: TaskHandler, message: TaskMessage, attempt: number, task: RunningTask): Promise<Outcome> {
    const { logger, metrics } = this.#deps;
    const limits = timeLimitsOf(message, handler.type.timeLimit);
    const { softSeconds, hardSeconds } = limits;
    const soft = timer(softSeconds, () => task.softLimit(new Errors.SOFT_TIME_LIMIT(softSeconds)));
    const hard = timer(hardSeconds, () => task.end('FAILURE', new Errors.HARD_TIME_LIMIT(hardSeconds)));
    metrics.active.inc();
    const startedAt = performance.now();
    try {
      const ran = this.#invoke(handler, message, attempt, task, startedAt);
      const outcome = await Promise.race([
        ran,
        task.ended.then((ending) => endedOutcome(ending, secondsSince(startedAt))),
      ]);
      if (task.ending !== null) {
        logger.warn(
          { taskId: message.id, type: message.task, code: codeOf(task.ending.error), limits },
          'task ended from outside; a handler that ignores its signal keeps running until it returns, its result ignored',
        );
      }
      return outcome;
    } finally {
      clearTimeout(soft);
      clearTimeout(hard);
      metrics.active.dec();
      metrics.runtime.observe({ type: message.task }, secondsSince(startedAt));
    }
  }

  /** The handler's own outcome; never rejects. */
  async #invoke(
    handler: TaskHandler,
    message: TaskMessage,
    attempt: number,
    task: RunningTask,
    startedAt: number,
  ): Promise<Outcome> {
    try {
      this.#deps.registry.validateKwargs(message.task, message.kwargs);
      const value: unknown = await handler.run(message.kwargs, new HandlerContext(this.#deps, message, attempt, task));
      const runtime = secondsSince(startedAt);
      return { state: 'SUCCESS', fields: { result: serialise(value), finished: Date.now(), runtime } };
    } catch (thrown) {
      const runtime = secondsSince(startedAt);
      // A handler that stopped because its signal aborted failed for the
      // signal's reason (soft limit, revocation), whatever it threw on the
      // way out, unless it asked for a retry or a rejection itself.
      const error =
        task.aborted && !isRetryRequest(thrown) && !isRejection(thrown) ? (task.signal.reason as unknown) : thrown;
      return { state: 'FAILURE', fields: { ...failureFields(error, Date.now()), runtime }, error };
    }
  }

  /** Records the outcome of an attempt that ran, retrying or dead-lettering a failure as its policy says. */
  async #conclude(
    delivery: Message,
    message: TaskMessage,
    queue: string,
    attempt: number,
    handler: TaskHandler,
    outcome: Outcome,
  ): Promise<void> {
    if (outcome.state !== 'FAILURE') return this.#finish(message, queue, attempt, outcome);
    if (this.#closing) {
      this.#deps.logger.info({ taskId: message.id }, 'failure during shutdown not recorded; the message was requeued');
      return;
    }
    const policy = resolveRetryPolicy(handler.type.retry, message.retryPolicy);
    const decision = decideOnFailure(outcome.error, policy, message.retries);
    if (decision.retry) return this.#retry(message, queue, attempt, outcome, decision.delayMs);

    let failure = outcome;
    if (decision.error !== outcome.error) {
      // A RetryTask past the last retry fails with its cause.
      failure = {
        state: 'FAILURE',
        fields: { ...failureFields(decision.error, Date.now()), runtime: outcome.fields.runtime ?? 0 },
        error: decision.error,
      };
    }
    if (decision.exhausted) {
      // Dead-lettered before FAILURE is recorded: if the worker dies in
      // between, the redelivery repeats both (a duplicate in the dead-letter
      // queue beats a task that is failed but missing from it).
      await this.#deadLetter(
        withHeader(delivery, LAST_ERROR_HEADER, String(failure.fields.error).slice(0, MAX_HEADER_ERROR_CHARS)),
        RETRIES_EXHAUSTED_REASON,
        String(failure.fields.errorCode),
      );
    }
    await this.#recordAttemptError(message.id, attempt, failure.fields);
    await this.#finish(message, queue, attempt, failure);
  }

  /**
   * Publishes the next attempt (same id, retries + 1, due after the delay)
   * before recording RETRY: if the worker dies in between, the redelivered
   * original runs again rather than the task being stranded in RETRY. The
   * delay is the broker's (delay tiers), so no delivery is held unacked.
   */
  async #retry(message: TaskMessage, queue: string, attempt: number, failure: Outcome, delayMs: number) {
    // Counted from the failure the attempt error records as `at`, so `retryAt - at` is the policy's delay.
    const eta = new Date(failedAt(failure.fields) + delayMs).toISOString();
    await this.#deps.publisher.publish({ ...message, retries: message.retries + 1, eta }, queue);
    await this.#recordAttemptError(message.id, attempt, failure.fields, eta);
    await this.#finish(message, queue, attempt, { state: 'RETRY', fields: { ...failure.fields, eta } });
  }

  /**
   * Counts a redelivery; true when it is one too many and the message was
   * dead-lettered and the task recorded FAILURE instead of running it again.
   * A task that is already terminal is left to #begin (acked as a duplicate).
   */
  async #isPoison(delivery: Message, message: TaskMessage, queue: string, attempt: number): Promise<boolean> {
    const { redis, store, config } = this.#deps;
    const key = store.keys.redeliveries(message.id);
    const replies = await redis
      .multi()
      .incr(key)
      .expire(key, REDELIVERY_COUNT_TTL_SECONDS)
      .hget(store.keys.task(message.id), 'state')
      .exec();
    const [countReply, , stateReply] = replies ?? [];
    if (countReply?.[0]) throw countReply[0];
    const count = Number(countReply?.[1]);
    const state = stateReply?.[1] as TaskState | null | undefined;
    if (!(count > config.maxRedeliveries) || (state != null && isTerminal(state))) {
      return false;
    }
    const error = new Errors.POISON_MESSAGE(count, config.maxRedeliveries);
    await this.#deadLetter(delivery, error.message, error.code);
    const now = Date.now();
    const failure: Outcome = { state: 'FAILURE', fields: failureFields(error, now), error };
    await this.#recordAttemptError(message.id, attempt, failure.fields);
    await this.#finish(message, queue, attempt, failure, now);
    return true;
  }

  #recordAttemptError(id: string, attempt: number, fields: FieldValues, retryAt?: string): Promise<void> {
    const { redis, store, config } = this.#deps;
    const entry: AttemptError = {
      attempt,
      error: String(fields.error ?? ''),
      errorCode: String(fields.errorCode ?? ''),
      at: new Date(failedAt(fields)).toISOString(),
    };
    if (retryAt !== undefined) entry.retryAt = retryAt;
    return recordAttemptError(redis, store.keys, id, entry, config.resultTtlSeconds);
  }

  /** Records an outcome of an attempt (or of a task refused before it ran). */
  async #finish(message: TaskMessage, queue: string, attempt: number, outcome: Outcome, now = Date.now()) {
    const { metrics, logger } = this.#deps;
    const result = await this.#record(message, queue, outcome.state, attempt, outcome.fields, now);
    if (!result.applied) {
      metrics.duplicates.inc({ reason: result.reason });
      logger.info(
        { taskId: message.id, state: result.state },
        `${outcome.state} not recorded: task is ${result.state}`,
      );
      return;
    }
    metrics.finished.inc({ type: message.task, state: outcome.state });
    if (outcome.state === 'SUCCESS') this.#processed++;
    else if (outcome.state !== 'RETRY') this.#failed++;
    logger.debug({ taskId: message.id, type: message.task, state: outcome.state, attempt }, 'task finished');
  }

  /**
   * One transition. Without a record to move (a task no Conveyor api
   * announced, a Celery producer's say, or one Redis lost in a restart) it is
   * written again with the task's identity from the message, so neither a
   * start nor an outcome is dropped for want of a record. The identity is
   * sent only then: it carries the kwargs, and the common case needs none.
   */
  async #record(
    message: TaskMessage,
    queue: string,
    state: TaskState,
    attempt: number,
    fields: FieldValues,
    now: number,
  ): Promise<TransitionOutcome> {
    const { store } = this.#deps;
    const outcome = await store.transition(message.id, state, attempt, fields, undefined, now);
    if (outcome.applied || outcome.reason !== 'unknown') return outcome;
    return store.transition(message.id, state, attempt, fields, identityOf(message, queue, now), now);
  }

  async #deadLetter(delivery: Message, reason: string, code: string): Promise<void> {
    await this.#deps.publisher.deadLetter(delivery, reason, code);
    this.#deps.metrics.deadLettered.inc({ code });
    this.#deps.logger.warn({ reason, code, routingKey: delivery.fields.routingKey }, 'message dead-lettered');
  }
}

/** Fields that identify a task, written only if the store has no record of it. */
function identityOf(message: TaskMessage, queue: string, now: number): FieldValues {
  const identity: FieldValues = {
    type: message.task,
    queue,
    kwargs: JSON.stringify(message.kwargs),
    args: JSON.stringify(message.args),
    created: now,
  };
  if (message.eta !== null) identity.eta = message.eta;
  if (message.expires !== null) identity.expires = message.expires;
  return identity;
}

function endedOutcome(ending: Ending, runtime: number): Outcome {
  return { state: ending.state, fields: { ...failureFields(ending.error, Date.now()), runtime }, error: ending.error };
}

/**
 * Seconds elapsed since `startedAt` (a performance.now() reading), to the
 * microsecond: finer digits are noise, and each one is a byte in every record.
 */
function secondsSince(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 1000) / 1e6;
}

/** A timer for a limit in seconds; none when there is no limit (or one no timer can hold). */
function timer(seconds: number | null, fire: () => void): NodeJS.Timeout | undefined {
  if (seconds === null) return undefined;
  const ms = seconds * 1000;
  return ms > MAX_TIMER_MS ? undefined : setTimeout(fire, ms);
}

/** `delivery` with one more header, for a dead-lettered copy. */
function withHeader(delivery: Message, name: string, value: string): Message {
  const headers = { ...delivery.properties.headers, [name]: value };
  return { ...delivery, properties: { ...delivery.properties, headers } };
}

function failureFields(error: unknown, now: number): FieldValues {
  const e = error instanceof Error ? error : new Error(String(error));
  return { error: e.message, errorCode: codeOf(e), traceback: e.stack ?? e.message, finished: now };
}

/** When an attempt failed (ms): its outcome's `finished`, which failureFields always sets. */
function failedAt(fields: FieldValues): number {
  return Number(fields.finished ?? Date.now());
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'Error';
}

function serialise(value: unknown): string {
  try {
    return JSON.stringify(value ?? null);
  } catch (error) {
    throw new Errors.RESULT_NOT_SERIALIZABLE((error as Error).message);
  }
}
