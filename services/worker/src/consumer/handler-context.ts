/**
 * The context a handler gets for one attempt of a task (TaskContext).
 *
 * A class for the sake of its two getters, `signal` and `logger`, which
 * make their object only when a handler asks (on a short task their cost
 * is a noticeable share of the whole). As getters of an object literal,
 * made anew per task, they cost more than that: with them, the worker
 * promoted 2.2 KB per task to V8's old generation at concurrency 1, and
 * 0.85 KB with the same context as plain fields, measured in a probe on
 * 2026-12-07. On the prototype of a class they are made once.
 *
 * `progress`, `once` and `runInPool` stay functions of each context, bound
 * to it, so a handler may destructure them like the getters.
 */
import { writeTaskProgress, type Config, type Logger, type TaskMessage, type TaskStore } from '@conveyor/shared';
import type { Redis } from 'ioredis';
import { runOnce } from '../effects/once.js';
import type { TaskContext } from '../handlers/handler.js';
import type { CpuPool } from '../pool/cpu-pool.js';
import type { RunningTask } from './running-task.js';

export interface HandlerContextDeps {
  config: Config;
  logger: Logger;
  store: TaskStore;
  /** The worker's Redis client: poison counts, attempt errors, progress, side effects. */
  redis: Redis;
  /** Thread pool of the CPU-bound handlers (TaskContext.runInPool). */
  pool: CpuPool;
}

export class HandlerContext implements TaskContext {
  readonly id: string;
  readonly attempt: number;
  readonly config: Config;
  readonly progress: TaskContext['progress'];
  readonly once: TaskContext['once'];
  readonly runInPool: TaskContext['runInPool'];
  readonly #task: RunningTask;
  readonly #type: string;
  readonly #workerLogger: Logger;
  #logger: Logger | undefined;

  constructor(deps: HandlerContextDeps, message: TaskMessage, attempt: number, task: RunningTask) {
    const { config, redis, store, pool } = deps;
    const id = message.id;
    this.id = id;
    this.attempt = attempt;
    this.config = config;
    this.#task = task;
    this.#type = message.task;
    this.#workerLogger = deps.logger;
    this.progress = (percent, text) =>
      writeTaskProgress(redis, store.keys, id, percent, text).then(
        () => undefined,
        (error: unknown) => this.logger.warn({ err: error }, 'progress not recorded'),
      );
    this.once = (effectKey, fn, options) => {
      // An attempt that was ended (and may already be recorded as failed)
      // must not start side effects from a handler still running in the background.
      if (task.ending !== null) return Promise.reject(task.ending.error);
      const scope = {
        redis,
        keys: store.keys,
        taskId: id,
        owner: `${config.workerName} attempt ${attempt}`,
        ttlSeconds: config.resultTtlSeconds,
      };
      return runOnce(scope, effectKey, fn, options);
    };
    this.runInPool = (kind, input) => pool.run(kind, input, task.killSignal);
  }

  get signal(): AbortSignal {
    return this.#task.signal;
  }

  get logger(): Logger {
    return (this.#logger ??= this.#workerLogger.child({ taskId: this.id, type: this.#type }));
  }
}
