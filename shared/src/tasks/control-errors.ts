/**
 * Control-flow outcomes a handler can ask for, as distinct error classes
 * (Celery's `self.retry()` and `Reject`): they are not failures of the code
 * that throws them, and the worker treats them by their `code`, not by
 * `instanceof`, so they keep working when a handler bundles its own copy of
 * this package.
 *
 *   throw new RetryTask({ countdownSeconds: 30, cause: error })   // next attempt in 30 s
 *   throw new RejectTask('recipient does not exist')              // FAILURE now, no retries
 *
 * A RetryTask counts against the task's `maxRetries` like any other failed
 * attempt; once they are used up the task fails with the cause (or with
 * CNV_RETRY_REQUESTED when none was given).
 */
import { Errors, hasCode } from '../errors.js';

export interface RetryTaskOptions {
  /** Seconds until the next attempt (exact, no jitter); omitted = the type's backoff. */
  countdownSeconds?: number;
  /** Why; defaults to the cause's message. */
  reason?: string;
  /** The error that made the handler retry: recorded as the attempt's error. */
  cause?: unknown;
}

export class RetryTask extends Errors.RETRY_REQUESTED {
  readonly countdownSeconds: number | null;

  constructor(options: RetryTaskOptions = {}) {
    const { countdownSeconds, cause } = options;
    if (countdownSeconds !== undefined && !(Number.isFinite(countdownSeconds) && countdownSeconds >= 0)) {
      throw new RangeError(`countdownSeconds must be a non-negative number, got ${countdownSeconds}`);
    }
    const reason = options.reason ?? (cause instanceof Error ? cause.message : 'Retry requested by the handler');
    if (cause === undefined) super(reason);
    else super(reason, { cause });
    this.name = 'RetryTask';
    this.countdownSeconds = countdownSeconds ?? null;
  }
}

/** A failure that retrying cannot fix: the task fails at once, whatever its retry policy. */
export class RejectTask extends Errors.PERMANENT_FAILURE {
  constructor(reason: string, options: { cause?: unknown } = {}) {
    if (options.cause === undefined) super(reason);
    else super(reason, { cause: options.cause });
    this.name = 'RejectTask';
  }
}

/** A retry request: a RetryTask, or anything else carrying its code. */
export function isRetryRequest(error: unknown): error is Error & { code: string; countdownSeconds?: number | null } {
  return hasCode(error, 'CNV_RETRY_REQUESTED');
}

export function isRejection(error: unknown): error is Error & { code: string } {
  return hasCode(error, 'CNV_PERMANENT_FAILURE');
}
