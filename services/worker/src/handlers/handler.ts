/**
 * The handler contract: one function per task type, declared next to the
 * type it implements. A handler returns the task's result (JSON-serialisable)
 * or throws; the worker records either outcome. Throwing RetryTask or
 * RejectTask (from @conveyor/shared) asks for a retry or a failure without
 * retries.
 */
import type { Config, KwargsOf, Logger, TaskType } from '@conveyor/shared';
import type { OnceOptions } from '../effects/once.js';
import type { PoolTaskKind, PoolTasks } from '../pool/cpu-tasks.js';

export interface TaskContext {
  readonly id: string;
  /** 1 on the first run, n+1 after n retries. */
  readonly attempt: number;
  /**
   * Aborted when the task's soft time limit passes or it is terminated. A
   * handler that stops at once gets the limit (or the revocation) recorded
   * as its outcome; one that finishes anyway keeps its result.
   */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly config: Config;
  /**
   * Reports progress: percent (clamped to 0–100) and an optional message,
   * shown in the task record while it runs. Best effort: never rejects, and
   * a report after the task finished is dropped. Each run starts with none:
   * a retry or a redelivery does not show the previous run's.
   */
  progress(percent: number, message?: string): Promise<void>;
  /**
   * Runs `fn` at most once for this task, across retries and redeliveries:
   * a later call with the same key returns the first call's (JSON) result
   * without running `fn` (effects/once.ts has the details and the crash
   * window).
   */
  once<T>(effectKey: string, fn: () => T | Promise<T>, options?: OnceOptions): Promise<T>;
  /**
   * Runs CPU-bound work in the worker-thread pool. The thread is terminated
   * at the hard time limit or when the task is terminated, so a loop that
   * never yields still ends.
   */
  runInPool<K extends PoolTaskKind>(kind: K, input: PoolTasks[K]['input']): Promise<PoolTasks[K]['output']>;
}

export interface TaskHandler<T extends TaskType = TaskType> {
  readonly type: T;
  run(kwargs: KwargsOf<T>, context: TaskContext): unknown;
}

export function defineHandler<T extends TaskType>(type: T, run: TaskHandler<T>['run']): TaskHandler<T> {
  return Object.freeze({ type, run });
}
