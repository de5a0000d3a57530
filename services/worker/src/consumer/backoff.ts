/** Retry delay: exponential backoff with full jitter (AWS architecture blog's "Full Jitter"). */
import type { RetryPolicy } from '@conveyor/shared';

/** Delay before retry number `retry` (0-based): random in [0, min(cap, base · 2^retry)]. */
export function retryDelayMs(policy: RetryPolicy, retry: number, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.round(random() * ceiling);
}
