/** Sleeping and bounded waiting: every wait in the suite has a deadline. */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';

export const sleep = (ms: number): Promise<void> => delay(ms);

/**
 * Calls `probe` every `intervalMs` until it returns a non-undefined value,
 * or throws after `timeoutMs` naming `what` (and the last value seen).
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs, intervalMs = 50 }: { timeoutMs: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Polls `count` until it reaches `target`, handing every reading to `onCount` (progress, CPU sampling). */
export async function waitForCount(
  what: string,
  count: () => Promise<number>,
  target: number,
  timeoutMs: number,
  onCount?: (count: number) => void,
): Promise<void> {
  await waitFor(
    what,
    async () => {
      const n = await count();
      onCount?.(n);
      return n >= target ? true : undefined;
    },
    { timeoutMs, intervalMs: 25 },
  );
}

/** A short random hex string for unique names (`bench-<hex>`). */
export function hex(bytes = 4): string {
  return randomBytes(bytes).toString('hex');
}
