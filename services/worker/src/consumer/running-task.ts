/**
 * One attempt of a task while this worker runs it, and the two ways it is
 * stopped from outside:
 *
 *   soft  the handler's signal aborts (soft time limit); a handler that
 *         stops gets the limit recorded, one that finishes keeps its result
 *   end   the attempt is over now (hard time limit, terminate): the signal
 *         aborts, a pool thread running it is terminated, and `ended`
 *         resolves, which the processor records without waiting for the
 *         handler. An in-process handler that ignores its signal is left to
 *         finish in the background; its result is ignored.
 */
import type { TaskState } from '@conveyor/shared';

export interface Ending {
  state: Extract<TaskState, 'FAILURE' | 'REVOKED'>;
  error: Error;
}

export class RunningTask {
  readonly id: string;
  /** Resolves when the attempt is ended from outside; never rejects. */
  readonly ended: Promise<Ending>;
  /** Made on first use: most handlers never look at their signal (an AbortController is not free). */
  #soft: AbortController | null = null;
  /** Made on first use: most tasks never run in the pool. */
  #kill: AbortController | null = null;
  #resolve: (ending: Ending) => void = () => undefined;
  #ending: Ending | null = null;

  constructor(id: string) {
    this.id = id;
    this.ended = new Promise((resolve) => (this.#resolve = resolve));
  }

  /** The handler's signal (TaskContext.signal). */
  get signal(): AbortSignal {
    this.#soft ??= new AbortController();
    return this.#soft.signal;
  }

  /** Whether the handler's signal has aborted (without creating it). */
  get aborted(): boolean {
    return this.#soft?.signal.aborted ?? false;
  }

  /** Aborted only when the attempt is ended: terminates its pool thread. */
  get killSignal(): AbortSignal {
    this.#kill ??= new AbortController();
    if (this.#ending !== null && !this.#kill.signal.aborted) this.#kill.abort(this.#ending.error);
    return this.#kill.signal;
  }

  get ending(): Ending | null {
    return this.#ending;
  }

  softLimit(error: Error): void {
    this.#soft ??= new AbortController();
    if (!this.#soft.signal.aborted) this.#soft.abort(error);
  }

  /** Ends the attempt; false if it was already ended. */
  end(state: Ending['state'], error: Error): boolean {
    if (this.#ending !== null) return false;
    this.#ending = { state, error };
    this.softLimit(error);
    this.#kill?.abort(error);
    this.#resolve(this.#ending);
    return true;
  }
}
