/**
 * The handler contract: one function per task type, declared next to the
 * type it implements. A handler returns the task's result (JSON-serialisable)
 * or throws; the worker records either outcome.
 */
import type { Config, KwargsOf, Logger, TaskType } from '@conveyor/shared';

export interface TaskContext {
  readonly id: string;
  /** 1 on the first run, n+1 after n retries. */
  readonly attempt: number;
  /** Aborted when the task is revoked or its soft time limit passes. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly config: Config;
}

export interface TaskHandler<T extends TaskType = TaskType> {
  readonly type: T;
  run(kwargs: KwargsOf<T>, context: TaskContext): unknown;
}

export function defineHandler<T extends TaskType>(type: T, run: TaskHandler<T>['run']): TaskHandler<T> {
  return Object.freeze({ type, run });
}
