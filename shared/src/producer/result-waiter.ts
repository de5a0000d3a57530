/**
 * Waiting for a task to finish without polling: transition.lua publishes
 * every terminal transition on the `finished` channel while anyone listens,
 * with the finished record unless it is large, so a woken waiter usually
 * returns without reading it (a Redis round trip off every result). One subscriber connection per process serves every
 * waiter. It subscribes with the first waiter and unsubscribes once no one
 * has waited for SUBSCRIPTION_LINGER_MS, so a process that waits for nothing
 * costs Redis nothing, and one that waits often (a client submitting and
 * waiting in a loop) does not pay a subscribe round trip per task.
 */
import type { Redis } from 'ioredis';
import { isTerminal } from '../states.js';
import { parseTaskRecord, type TaskRecord } from '../store/task-record.js';
import type { TaskStore } from '../store/task-store.js';
import { storeUnavailable } from './store-errors.js';

/** How long the subscription outlives its last waiter. */
const SUBSCRIPTION_LINGER_MS = 5000;

/** Wakes one waiter, with the finished record when the announcement carried it. */
type Wake = (record: TaskRecord | undefined) => void;

export class ResultWaiter {
  readonly #store: TaskStore;
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #waiters = new Map<string, Set<Wake>>();
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
      const waiters = this.#waiters.get(id);
      if (!waiters) return;
      const record = announcedRecord(id, message);
      for (const wake of waiters) wake(record);
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
    let wake!: Wake;
    const woken = new Promise<TaskRecord | undefined>((resolve) => (wake = resolve));
    const stop = () => wake(undefined);
    this.#add(id, wake);
    const timer = setTimeout(stop, timeoutMs);
    signal?.addEventListener('abort', stop, { once: true });
    try {
      // Read only once the subscription is active: a task finishing before
      // the read is seen by it, one finishing after it wakes this waiter.
      await this.#subscribe();
      const record = await this.#read(id);
      if (record === null || isTerminal(record.state)) return record;
      return (await woken) ?? (await this.#read(id));
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
      this.#remove(id, wake);
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.#unsubscribeTimer);
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
  }

  #add(id: string, wake: Wake): void {
    let set = this.#waiters.get(id);
    if (!set) this.#waiters.set(id, (set = new Set()));
    set.add(wake);
  }

  #remove(id: string, wake: Wake): void {
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

/** The record an announcement "<id> <state> <record>" carries; undefined for "<id> <state>". */
function announcedRecord(id: string, message: string): TaskRecord | undefined {
  const start = message.indexOf(' ', id.length + 1) + 1;
  if (start === 0) return undefined;
  const flat = JSON.parse(message.slice(start)) as string[];
  const hash: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
  return parseTaskRecord(id, hash) ?? undefined;
}
