/**
 * Waiting for a task to finish without polling: transition.lua publishes
 * "<id> <state>" on the `finished` channel for every terminal transition
 * while anyone listens. One subscriber connection per process serves every
 * waiter. It subscribes with the first waiter and unsubscribes once no one
 * has waited for SUBSCRIPTION_LINGER_MS, so a process that waits for nothing
 * costs Redis nothing, and one that waits often (a client submitting and
 * waiting in a loop) does not pay a subscribe round trip per task.
 */
import type { Redis } from 'ioredis';
import { isTerminal } from '../states.js';
import type { TaskRecord } from '../store/task-record.js';
import type { TaskStore } from '../store/task-store.js';
import { storeUnavailable } from './store-errors.js';

/** How long the subscription outlives its last waiter. */
const SUBSCRIPTION_LINGER_MS = 5000;

export class ResultWaiter {
  readonly #store: TaskStore;
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #waiters = new Map<string, Set<() => void>>();
  #subscribed: Promise<unknown> | null = null;
  #unsubscribeTimer: NodeJS.Timeout | undefined;

  /** `subscriber` is a connection of its own (pub/sub takes it over); the waiter closes it. */
  constructor(store: TaskStore, subscriber: Redis) {
    this.#store = store;
    this.#subscriber = subscriber;
    this.#channel = store.keys.finished;
    // Outages surface through the commands' own rejections; without a listener they would crash the process.
    subscriber.on('error', () => undefined);
    subscriber.on('message', (_channel: string, message: string) => {
      const id = message.slice(0, message.indexOf(' '));
      for (const wake of this.#waiters.get(id) ?? []) wake();
    });
  }

  /**
   * The record of task `id` once terminal, or as it is when `timeoutMs` ran
   * out or `signal` aborted; null when there is no such task.
   */
  async wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskRecord | null> {
    if (timeoutMs <= 0 || this.#subscribed === null) {
      // Not listening yet: a task that is already finished needs no subscription.
      const record = await this.#read(id);
      if (timeoutMs <= 0 || record === null || isTerminal(record.state)) return record;
    }
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    this.#add(id, wake);
    const timer = setTimeout(wake, timeoutMs);
    signal?.addEventListener('abort', wake, { once: true });
    try {
      // Read only once the subscription is active: a task finishing before
      // the read is seen by it, one finishing after it wakes this waiter.
      await this.#subscribe();
      const record = await this.#read(id);
      if (record === null || isTerminal(record.state)) return record;
      await woken;
      return await this.#read(id);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', wake);
      this.#remove(id, wake);
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.#unsubscribeTimer);
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
  }

  #add(id: string, wake: () => void): void {
    let set = this.#waiters.get(id);
    if (!set) this.#waiters.set(id, (set = new Set()));
    set.add(wake);
  }

  #remove(id: string, wake: () => void): void {
    const set = this.#waiters.get(id);
    set?.delete(wake);
    if (set?.size === 0) this.#waiters.delete(id);
    if (this.#waiters.size === 0 && this.#subscribed) {
      clearTimeout(this.#unsubscribeTimer);
      this.#unsubscribeTimer = setTimeout(() => this.#unsubscribe(), SUBSCRIPTION_LINGER_MS).unref();
    }
  }

  #unsubscribe(): void {
    if (this.#waiters.size > 0 || !this.#subscribed) return;
    this.#subscribed = null;
    void this.#subscriber.unsubscribe(this.#channel).catch(() => undefined);
  }

  #subscribe(): Promise<unknown> {
    clearTimeout(this.#unsubscribeTimer);
    this.#subscribed ??= this.#subscriber.subscribe(this.#channel);
    return this.#subscribed.catch((error: unknown) => {
      this.#subscribed = null;
      throw storeUnavailable(error);
    });
  }

  async #read(id: string): Promise<TaskRecord | null> {
    try {
      return await this.#store.get(id);
    } catch (error) {
      throw storeUnavailable(error);
    }
  }
}
