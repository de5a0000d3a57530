/**
 * The CPU-bound work the thread pool runs: pure functions of plain data, so
 * they run the same in a worker thread (pool-entry.ts) and in-process (unit
 * tests). A pool task is `{ kind, input }`; adding one means a case here and
 * an entry in PoolTasks.
 */
import { runCompute, type ComputeResult } from '../handlers/compute-math.js';
import type { ComputeOperation } from '@conveyor/shared';

export interface PoolTasks {
  /** `limit`: COMPUTE_LIMITS[operation], passed in so a thread never loads @conveyor/shared. */
  compute: { input: { operation: ComputeOperation; input: number; limit: number }; output: ComputeResult };
  /** Busy-loops for `seconds` without yielding (the `hang {cpu: true}` task); returns the loop count. */
  spin: { input: { seconds: number }; output: number };
}

export type PoolTaskKind = keyof PoolTasks;

export type PoolTask = { [K in PoolTaskKind]: { kind: K; input: PoolTasks[K]['input'] } }[PoolTaskKind];

export function runPoolTask(task: PoolTask): PoolTasks[PoolTaskKind]['output'] {
  switch (task.kind) {
    case 'compute':
      return runCompute(task.input.operation, task.input.input, task.input.limit);
    case 'spin':
      return spin(task.input.seconds);
    default: {
      const unknown: never = task;
      throw new RangeError(`Unknown pool task ${JSON.stringify(unknown)}`);
    }
  }
}

/**
 * Burns CPU for `seconds` of wall time without awaiting anything, so nothing
 * but terminating the thread can stop it early. Checks the clock every 2^16
 * iterations: often enough to end on time, rarely enough to stay CPU-bound.
 */
export function spin(seconds: number): number {
  if (!(Number.isFinite(seconds) && seconds >= 0)) throw new RangeError(`seconds must be >= 0, got ${seconds}`);
  const until = performance.now() + seconds * 1000;
  let loops = 0;
  let sink = 0;
  for (;;) {
    for (let i = 0; i < 65_536; i++) sink = (sink + i) % 1_000_003;
    loops++;
    if (performance.now() >= until) break;
  }
  // `sink` keeps the inner loop from being optimised away.
  return sink >= 0 ? loops : -loops;
}
