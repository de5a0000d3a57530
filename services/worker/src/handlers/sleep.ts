/** Handler for `sleep`: waits `duration` seconds, the stand-in for slow I/O-bound work. */
import { setTimeout as delay } from 'node:timers/promises';
import { sleep } from '@conveyor/shared';
import { defineHandler } from './handler.js';

/** Sleeps of at least this many seconds report progress once a second. */
const PROGRESS_FROM_SECONDS = 2;
const TIMER_SLACK_MS = 5;

export const sleepHandler = defineHandler(sleep, async ({ duration }, context) => {
  // The signal ends the wait at once when the task is revoked or hits its soft limit.
  const totalMs = duration * 1000;
  if (duration < PROGRESS_FROM_SECONDS) {
    await delay(totalMs, undefined, { signal: context.signal });
  } else {
    const start = performance.now();
    // Timers may fire a millisecond or two early: a remainder that small is not another step.
    for (let elapsed = 0; totalMs - elapsed > TIMER_SLACK_MS; elapsed = performance.now() - start) {
      await delay(Math.min(1000, totalMs - elapsed), undefined, { signal: context.signal });
      const now = performance.now() - start;
      const done = totalMs - now <= TIMER_SLACK_MS ? totalMs : now;
      // Not awaited: a slow store must not stretch the sleep (progress never rejects).
      void context.progress((done / totalMs) * 100, `${Math.round(done / 1000)} of ${duration} seconds`);
    }
  }
  return `Processed for ${duration} seconds.`;
});
