/** Handler for `compute`: CPU-bound integer math; the math itself lives in compute-math.ts. */
import { compute } from '@conveyor/shared';
import { runCompute } from './compute-math.js';
import { defineHandler } from './handler.js';

export const computeHandler = defineHandler(compute, ({ operation, input }, context) => {
  // The loops are synchronous and cannot observe the signal midway, so at
  // least refuse to start work for a task that is already revoked. (A
  // worker-thread pool would make it interruptible by terminating the thread.)
  context.signal.throwIfAborted();
  return runCompute(operation, input);
});
