/** Handler for `flaky`: fails attempts 1..failures, then succeeds; for testing retries and backoff. */
import { Errors, flaky } from '@conveyor/shared';
import { defineHandler } from './handler.js';

export const flakyHandler = defineHandler(flaky, ({ failures }, context) => {
  if (context.attempt <= failures) {
    throw new Errors.SIMULATED_FAILURE(`flaky: attempt ${context.attempt} of ${failures} planned failures`);
  }
  return { attempts: context.attempt };
});
