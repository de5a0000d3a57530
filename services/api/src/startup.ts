/**
 * The bounded wait each infrastructure plugin allows its client at start-up.
 * Waiting a little means the first requests after a normal start do not get a
 * 503 while connections are still being made; bounding it means an outage
 * does not stop the api from starting and reporting it on /ready.
 */
import { setTimeout as delay } from 'node:timers/promises';

export const STARTUP_WAIT_MS = 2000;

/** Resolves when `promise` settles or `ms` pass, whichever is first; never rejects. */
export async function settleWithin(promise: Promise<unknown>, ms = STARTUP_WAIT_MS): Promise<void> {
  const timeout = new AbortController();
  await Promise.race([
    promise.catch(() => undefined),
    delay(ms, undefined, { signal: timeout.signal }).catch(() => undefined),
  ]);
  timeout.abort();
}
