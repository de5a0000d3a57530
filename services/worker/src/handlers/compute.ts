/**
 * Handler for `compute`: CPU-bound integer math (compute-math.ts), run in
 * the worker-thread pool so a long input neither blocks the event loop nor
 * outlives its hard time limit.
 */
import { compute, COMPUTE_LIMITS } from '@conveyor/shared';
import { defineHandler } from './handler.js';

export const computeHandler = defineHandler(compute, ({ operation, input }, context) => {
  // A task revoked before it reached a thread never takes one.
  context.signal.throwIfAborted();
  return context.runInPool('compute', { operation, input, limit: COMPUTE_LIMITS[operation] });
});
