/**
 * The tasks this worker is starting or running now, findable by task id.
 *
 * An array, not a Map: the worker adds and removes an entry for every task,
 * and a hash table (Map, Set, an object used as a dictionary) that churns
 * at that rate makes V8 keep what its entries point to. Deleted entries
 * fill the table until V8 copies it into a new one; the table left behind
 * still points to the old entries, and once such a table sits in the old
 * generation, those entries survive every scavenge until the next full
 * collection. Per task, that was the whole graph of a finished task:
 * its message, its promises, its handler's result. In a probe, a Map
 * holding a window of 200 short-lived values promoted 583 bytes per
 * insertion to the old generation, an array holding the same values 16.
 *
 * At most a prefetch window of tasks are here at once, so the linear
 * search of `find` and `remove` is a few hundred comparisons at worst.
 */
import type { RunningTask } from './running-task.js';

export class RunningTasks {
  readonly #tasks: RunningTask[] = [];

  get size(): number {
    return this.#tasks.length;
  }

  add(task: RunningTask): void {
    this.#tasks.push(task);
  }

  /** The task added last under `id` (a redelivered duplicate may run beside the first). */
  find(id: string): RunningTask | undefined {
    for (let i = this.#tasks.length - 1; i >= 0; i--) {
      if (this.#tasks[i]!.id === id) return this.#tasks[i];
    }
    return undefined;
  }

  remove(task: RunningTask): void {
    const tasks = this.#tasks;
    const index = tasks.lastIndexOf(task);
    if (index < 0) return;
    // Order does not matter here: move the last entry into the gap.
    const last = tasks.pop()!;
    if (index < tasks.length) tasks[index] = last;
  }
}
