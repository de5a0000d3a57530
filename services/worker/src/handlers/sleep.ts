/** Handler for `sleep`: waits `duration` seconds, the stand-in for slow I/O-bound work. */
import { setTimeout as delay } from 'node:timers/promises';
import { sleep } from '@conveyor/shared';
import { defineHandler } from './handler.js';

export const sleepHandler = defineHandler(sleep, async ({ duration }, context) => {
  // The signal ends the wait at once when the task is revoked or hits its soft limit.
  await delay(duration * 1000, undefined, { signal: context.signal });
  return `Processed for ${duration} seconds.`;
});
