/**
 * What a task type is: declared once here in `shared`, implemented once in
 * the worker. The api validates submissions against `kwargs` before anything
 * is published; the worker validates again, because a message may come from
 * another producer (a Python Celery app, say).
 */
import type { Static, TSchema } from 'typebox';

/** Exponential backoff with full jitter: attempt n waits random(0, min(cap, base·2ⁿ)). */
export interface RetryPolicy {
  /** Retries after the first attempt; 0 = fail on the first error. */
  readonly maxRetries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** Seconds; null = no limit. Sent in the Celery `timelimit` header as [hard, soft]. */
export interface TimeLimit {
  readonly softSeconds: number | null;
  readonly hardSeconds: number | null;
}

export interface TaskType<S extends TSchema = TSchema> {
  readonly name: string;
  readonly description: string;
  /** JSON schema of the kwargs object; a REST payload is exactly this object. */
  readonly kwargs: S;
  /** Logical queue used when a submission does not name one. */
  readonly queue: string;
  readonly retry: RetryPolicy;
  readonly timeLimit: TimeLimit;
}

export type KwargsOf<T> = T extends TaskType<infer S> ? Static<S> : never;

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ maxRetries: 0, baseDelayMs: 1000, maxDelayMs: 60_000 });
export const NO_TIME_LIMIT: TimeLimit = Object.freeze({ softSeconds: null, hardSeconds: null });

export function defineTaskType<S extends TSchema>(
  definition: Pick<TaskType<S>, 'name' | 'description' | 'kwargs'> & Partial<TaskType<S>>,
): TaskType<S> {
  return Object.freeze({ queue: 'default', retry: DEFAULT_RETRY, timeLimit: NO_TIME_LIMIT, ...definition });
}
