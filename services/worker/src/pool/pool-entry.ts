/**
 * Entry file of the worker threads (piscina loads it by path from dist/):
 * runs one pool task per call. Kept tiny: it loads only the pure functions.
 */
import { runPoolTask, type PoolTask } from './cpu-tasks.js';

export default function run(task: PoolTask): unknown {
  return runPoolTask(task);
}
