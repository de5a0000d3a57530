/**
 * Handler for `hang`: runs `seconds` and deliberately ignores its abort
 * signal, so only the worker's own means can end it early: the hard time
 * limit or a terminate (abandoning the in-process wait, or terminating the
 * pool thread of `cpu: true`).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { hang } from '@conveyor/shared';
import { defineHandler } from './handler.js';

export const hangHandler = defineHandler(hang, async ({ seconds, cpu }, context) => {
  if (cpu === true) {
    await context.runInPool('spin', { seconds });
  } else {
    // Unref'd: an abandoned hang must not keep a stopping worker alive.
    await delay(seconds * 1000, undefined, { ref: false });
  }
  return `Hung for ${seconds} seconds.`;
});
