/**
 * What happens to one delivery, from decoding to the recorded outcome. The
 * consumer acks only after `process` resolves, and `process` resolves only
 * after the outcome is in Redis (or the message is safely elsewhere: the
 * dead-letter queue, its next delay tier, its retry): at-least-once delivery,
 * exactly-once terminal state.
 *
 * Per task that runs: one round trip to start it (RECEIVED and STARTED in one
 * transition, since prefetch = concurrency means a delivery never waits for a
 * slot) and one to finish it. Concurrent tasks share those round trips
 * through ioredis auto-pipelining.
 */
import {
  decodeTask,
  Errors,
  type Config,
  type FieldValues,
  type Logger,
  type TaskMessage,
  type TaskPublisher,
  type TaskRegistry,
  type TaskState,
  type TaskStore,
} from '@conveyor/shared';
import type { Message } from 'amqplib';
import type { TaskHandler } from '../handlers/handler.js';
import type { WorkerMetrics } from '../worker-metrics.js';
import { retryDelayMs } from './backoff.js';

export interface TaskProcessorDeps {
  config: Config;
  logger: Logger;
  store: TaskStore;
  publisher: TaskPublisher;
  registry: TaskRegistry;
  handlers: readonly TaskHandler[];
  metrics: WorkerMetrics;
}

interface Outcome {
  state: TaskState;
  fields: FieldValues;
}

export class TaskProcessor {
  readonly #deps: TaskProcessorDeps;
  readonly #handlers: ReadonlyMap<string, TaskHandler>;
  /** Abort controllers of the tasks running now, by task id. */
  readonly #running = new Map<string, AbortController>();
  #processed = 0;
  #failed = 0;

  constructor(deps: TaskProcessorDeps) {
    this.#deps = deps;
    this.#handlers = new Map(deps.handlers.map((h) => [h.type.name, h]));
    for (const type of deps.registry.list()) {
      if (!this.#handlers.has(type.name)) throw new Error(`Task type "${type.name}" has no handler`);
    }
  }

  get stats(): { active: number; processed: number; failed: number } {
    return { active: this.#running.size, processed: this.#processed, failed: this.#failed };
  }

  async process(delivery: Message, queue: string): Promise<void> {
    let message: TaskMessage;
    try {
      message = decodeTask(delivery.content, delivery.properties);
    } catch (error) {
      return this.#deadLetter(delivery, (error as Error).message, codeOf(error));
    }
    const handler = this.#handlers.get(message.task);
    if (!handler) {
      return this.#deadLetter(delivery, `unknown task type "${message.task}"`, 'CNV_UNKNOWN_TASK_TYPE');
    }

    const now = Date.now();
    if (message.eta !== null) {
      const remaining = Date.parse(message.eta) - now;
      // Not due yet: it came back from a delay tier and takes the next one.
      if (remaining > 0) return this.#deps.publisher.forwardDelayed(delivery, remaining);
    }
    const attempt = message.retries + 1;
    if (message.expires !== null && Date.parse(message.expires) <= now) {
      const error = new Errors.TASK_EXPIRED(message.expires);
      const revoked: Outcome = { state: 'REVOKED', fields: failureFields(error, now) };
      await this.#finish(message, attempt, revoked, identityOf(message, queue, now), now);
      return;
    }
    if (!(await this.#begin(message, queue, attempt, now))) return;

    const outcome = await this.#run(handler, message, attempt);
    if (outcome.state === 'FAILURE' && this.#shouldRetry(message)) {
      await this.#retry(message, queue, attempt, outcome);
      return;
    }
    await this.#finish(message, attempt, outcome);
  }

  /** Records RECEIVED+STARTED; false when the delivery is a duplicate that must not run. */
  async #begin(message: TaskMessage, queue: string, attempt: number, now: number): Promise<boolean> {
    const fields = { received: now, started: now, worker: this.#deps.config.workerName };
    let outcome = await this.#deps.store.transition(message.id, 'STARTED', attempt, fields, undefined, now);
    if (!outcome.applied && outcome.reason === 'unknown') {
      // First sight of a task no Conveyor api announced (a Celery producer, say).
      outcome = await this.#deps.store.transition(
        message.id,
        'STARTED',
        attempt,
        fields,
        identityOf(message, queue, now),
        now,
      );
    }
    if (outcome.applied) return true;
    this.#deps.metrics.duplicates.inc({ reason: outcome.reason });
    this.#deps.logger.info({ taskId: message.id, state: outcome.state }, 'duplicate delivery acked without running');
    return false;
  }

  async #run(handler: TaskHandler, message: TaskMessage, attempt: number): Promise<Outcome> {
    const { registry, config, logger, metrics } = this.#deps;
    const controller = new AbortController();
    this.#running.set(message.id, controller);
    metrics.active.inc();
    const startedAt = performance.now();
    try {
      registry.validateKwargs(message.task, message.kwargs);
      const value: unknown = await handler.run(message.kwargs, {
        id: message.id,
        attempt,
        signal: controller.signal,
        logger: logger.child({ taskId: message.id, type: message.task }),
        config,
      });
      const runtime = (performance.now() - startedAt) / 1000;
      return { state: 'SUCCESS', fields: { result: serialise(value), finished: Date.now(), runtime } };
    } catch (error) {
      const runtime = (performance.now() - startedAt) / 1000;
      return { state: 'FAILURE', fields: { ...failureFields(error, Date.now()), runtime } };
    } finally {
      this.#running.delete(message.id);
      metrics.active.dec();
      metrics.runtime.observe({ type: message.task }, (performance.now() - startedAt) / 1000);
    }
  }

  #shouldRetry(message: TaskMessage): boolean {
    const type = this.#deps.registry.get(message.task);
    return type !== undefined && message.retries < type.retry.maxRetries;
  }

  /**
   * Publishes the next attempt (same id, retries + 1, due after the backoff)
   * before recording RETRY: if the worker dies in between, the redelivered
   * original runs again rather than the task being stranded in RETRY.
   */
  async #retry(message: TaskMessage, queue: string, attempt: number, failure: Outcome): Promise<void> {
    const policy = this.#deps.registry.require(message.task).retry;
    const dueAt = Date.now() + retryDelayMs(policy, message.retries);
    const eta = new Date(dueAt).toISOString();
    await this.#deps.publisher.publish({ ...message, retries: message.retries + 1, eta }, queue);
    await this.#finish(message, attempt, { state: 'RETRY', fields: { ...failure.fields, eta } });
  }

  /** `identity` only where no start was recorded first (an expired task). */
  async #finish(message: TaskMessage, attempt: number, outcome: Outcome, identity?: FieldValues, now = Date.now()) {
    const { store, metrics, logger } = this.#deps;
    const result = await store.transition(message.id, outcome.state, attempt, outcome.fields, identity, now);
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

function failureFields(error: unknown, now: number): FieldValues {
  const e = error instanceof Error ? error : new Error(String(error));
  return { error: e.message, errorCode: codeOf(e), traceback: e.stack ?? e.message, finished: now };
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
