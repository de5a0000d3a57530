/**
 * A pool of worker threads for CPU-bound handlers (piscina). A task in a
 * thread never blocks the event loop, so heartbeats, acks, control messages
 * and the other tasks keep going; and it can be ended for real: aborting the
 * signal given to `run` terminates the thread running it (piscina replaces
 * the thread), which is how hard time limits and `terminate` stop a loop
 * that never looks at its signal.
 *
 * The pool starts on first use, so a worker that never runs CPU-bound work
 * never pays for threads. Threads load the compiled entry file from dist/:
 * worker threads cannot load TypeScript, so code running from sources (the
 * tests) uses the build too.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Logger } from '@conveyor/shared';
import type { PoolTaskKind, PoolTasks } from './cpu-tasks.js';

/** An idle thread beyond the first lives this long: a burst keeps its threads, a quiet worker gives them back. */
const IDLE_TIMEOUT_MS = 60_000;

export interface CpuPoolOptions {
  /** Most threads at once (WORKER_POOL_SIZE). */
  size: number;
  logger: Logger;
}

/** Path of the compiled thread entry: beside this module in dist/, or in dist/ when running from src/. */
export function poolEntryPath(): string {
  const beside = new URL('./pool-entry.js', import.meta.url);
  if (existsSync(beside)) return fileURLToPath(beside);
  const built = new URL('../../dist/pool/pool-entry.js', import.meta.url);
  if (existsSync(built)) return fileURLToPath(built);
  throw new Error(`Worker pool entry not found at ${fileURLToPath(beside)}: run \`pnpm build\` first`);
}

export class CpuPool {
  readonly #options: CpuPoolOptions;
  #piscina: Piscina | null = null;
  #closed = false;

  constructor(options: CpuPoolOptions) {
    this.#options = options;
  }

  /** Threads running or idle right now (0 until first use). */
  get threads(): number {
    return this.#piscina?.threads.length ?? 0;
  }

  /**
   * Runs a pool task in a thread. When `signal` aborts, a queued task is
   * dropped and a running one's thread is terminated; either way the promise
   * rejects with piscina's AbortError.
   */
  run<K extends PoolTaskKind>(
    kind: K,
    input: PoolTasks[K]['input'],
    signal: AbortSignal,
  ): Promise<PoolTasks[K]['output']> {
    if (this.#closed) return Promise.reject(new Error('worker pool is closed'));
    return this.#pool().run({ kind, input }, { signal }) as Promise<PoolTasks[K]['output']>;
  }

  /** Terminates every thread at once; running tasks reject. Call after the consumer has drained. */
  async destroy(): Promise<void> {
    this.#closed = true;
    const piscina = this.#piscina;
    this.#piscina = null;
    await piscina?.destroy();
  }

  #pool(): Piscina {
    if (this.#piscina === null) {
      const { size, logger } = this.#options;
      this.#piscina = new Piscina({
        filename: poolEntryPath(),
        minThreads: 1,
        maxThreads: size,
        idleTimeout: IDLE_TIMEOUT_MS,
      });
      this.#piscina.on('error', (error: unknown) => logger.error({ err: error }, 'worker pool error'));
      logger.info({ maxThreads: size }, 'worker thread pool started');
    }
    return this.#piscina;
  }
}
