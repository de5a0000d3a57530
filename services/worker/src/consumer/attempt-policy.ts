/**
 * Pure decisions about one attempt: its time limits, and what a failed
 * attempt leads to (another attempt after a delay, or the end).
 */
import { isRejection, isRetryRequest, type RetryPolicy, type TaskMessage, type TimeLimit } from '@conveyor/shared';
import { retryDelayMs } from './backoff.js';

/**
 * Failures another attempt cannot fix, never retried whatever the policy: a
 * rejection, bad kwargs or an unserialisable result fail the same way again;
 * a task that hit a time limit most likely hits it again (and a retry of a
 * runaway loop costs as much as the loop); an uncertain side effect must
 * not be repeated; a revoked task is not failed at all.
 */
const FINAL_CODES: ReadonlySet<string> = new Set([
  'CNV_PERMANENT_FAILURE',
  'CNV_INVALID_KWARGS',
  'CNV_RESULT_NOT_SERIALIZABLE',
  'CNV_SOFT_TIME_LIMIT',
  'CNV_HARD_TIME_LIMIT',
  'CNV_EFFECT_UNCERTAIN',
  'CNV_TASK_REVOKED',
  'CNV_POISON_MESSAGE',
]);

/** The message's `timelimit` header ([hard, soft] seconds), each null falling back to the type's. */
export function timeLimitsOf(message: TaskMessage, typeLimit: TimeLimit): TimeLimit {
  const [hard, soft] = message.timelimit;
  return { hardSeconds: hard ?? typeLimit.hardSeconds, softSeconds: soft ?? typeLimit.softSeconds };
}

export type FailureDecision =
  /** Publish attempt `retries + 2` due in `delayMs`. */
  | { retry: true; delayMs: number }
  /**
   * Record FAILURE with `error`. `exhausted`: the policy allowed retries and
   * all were used, so a copy of the message goes to the dead-letter queue.
   */
  | { retry: false; exhausted: boolean; error: unknown };

/**
 * What follows a failed attempt. `retries` is the number of retries made
 * before it (0 on the first attempt). A RetryTask's countdown replaces the
 * backoff; once retries are used up it fails with its cause.
 */
export function decideOnFailure(
  error: unknown,
  policy: RetryPolicy,
  retries: number,
  random: () => number = Math.random,
): FailureDecision {
  const code = (error as { code?: unknown } | null)?.code;
  if (isRejection(error) || (typeof code === 'string' && FINAL_CODES.has(code))) {
    return { retry: false, exhausted: false, error };
  }
  if (retries < policy.maxRetries) {
    const countdown = isRetryRequest(error) ? error.countdownSeconds : null;
    const delayMs =
      typeof countdown === 'number' ? Math.round(countdown * 1000) : retryDelayMs(policy, retries, random);
    return { retry: true, delayMs };
  }
  const final = isRetryRequest(error) && error.cause !== undefined ? error.cause : error;
  return { retry: false, exhausted: policy.maxRetries > 0, error: final };
}
