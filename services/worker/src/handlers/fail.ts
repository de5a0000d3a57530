/** Handler for `fail`: always throws, so retries, failure records and alerts can be exercised on demand. */
import { Errors, fail } from '@conveyor/shared';
import { defineHandler } from './handler.js';

export const failHandler = defineHandler(fail, ({ message }) => {
  // `||`, not `??`: an empty message would leave the failure record blank.
  throw new Errors.SIMULATED_FAILURE(message || 'Simulated task failure');
});
