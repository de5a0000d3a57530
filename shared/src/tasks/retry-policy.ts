/**
 * Per-submission retry overrides. A submission may override any part of its
 * type's retry policy; the override travels with the message in the AMQP
 * header `x-conveyor-retry` (protocol/celery-v2.ts), so every retry of the
 * task keeps it, and the worker merges it over the type's policy.
 */
import type { RetryPolicy } from './task-type.js';

/**
 * Bounds of an override in a message header (the same as a submission's,
 * RETRY_OVERRIDE_LIMITS in producer/submit-task.ts): 100 retries, delays up
 * to a day, so a typo cannot keep a task retrying for a year.
 */
export const RETRY_HEADER_LIMITS: Readonly<Record<keyof RetryPolicy, { min: number; max: number }>> = Object.freeze({
  maxRetries: { min: 0, max: 100 },
  baseDelayMs: { min: 0, max: 86_400_000 },
  maxDelayMs: { min: 0, max: 86_400_000 },
});

const FIELDS = Object.keys(RETRY_HEADER_LIMITS) as (keyof RetryPolicy)[];

/** The type's policy with the override's fields on top. */
export function resolveRetryPolicy(base: RetryPolicy, override?: Partial<RetryPolicy>): RetryPolicy {
  if (override === undefined) return base;
  return {
    maxRetries: override.maxRetries ?? base.maxRetries,
    baseDelayMs: override.baseDelayMs ?? base.baseDelayMs,
    maxDelayMs: override.maxDelayMs ?? base.maxDelayMs,
  };
}

/**
 * Checks an override (from a header or a request): an object whose known
 * fields are integers within RETRY_HEADER_LIMITS. Returns the override
 * with only those fields, or the reason it is invalid.
 */
export function parseRetryOverride(
  value: unknown,
): { ok: true; value: Partial<RetryPolicy> } | { ok: false; reason: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'must be an object {maxRetries?, baseDelayMs?, maxDelayMs?}' };
  }
  const input = value as Record<string, unknown>;
  const parsed: { -readonly [K in keyof RetryPolicy]?: number } = {};
  for (const field of FIELDS) {
    const v = input[field];
    if (v === undefined || v === null) continue;
    const { min, max } = RETRY_HEADER_LIMITS[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return { ok: false, reason: `${field} must be an integer between ${min} and ${max}` };
    }
    parsed[field] = v;
  }
  return { ok: true, value: parsed };
}

/**
 * A task whose retries are all used up is recorded as FAILURE and a copy of
 * its last message goes to the dead-letter queue with this reason, the last
 * error's code (`x-conveyor-error-code`) and its message in LAST_ERROR_HEADER.
 */
export const RETRIES_EXHAUSTED_REASON = 'retries exhausted';
export const LAST_ERROR_HEADER = 'x-conveyor-last-error';
