/**
 * Bounds how far the worker's V8 old generation grows between full
 * collections. A worker promotes a steady trickle of short-lived per-task
 * objects; with V8's own heuristic the old generation then grows to several
 * times what survives before it is collected, so RSS saw-tooths by more than
 * 10 % on a long run. Collecting once it has grown WORKER_HEAP_GROWING_PERCENT
 * (default 30) past the survivors keeps RSS flat and lower, for more frequent
 * (mostly concurrent) full collections; the benchmark measures both settings.
 */
import { setFlagsFromString } from 'node:v8';

/** Applies `percent` to this process's heap; 0 keeps V8's heuristic. Call before the worker allocates. */
export function limitHeapGrowth(percent: number): void {
  // V8 reads the flag each time it sets the next collection's limit, so setting it at run time takes effect.
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
